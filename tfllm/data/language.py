"""Stage 2b: language identification, as C4 (langdetect, score >= 0.99) and datatrove
(LanguageFilter, fastText) keep only the languages asked for.

py3langid (langid.py's model, bundled in its wheel: nothing is downloaded) scores
each document; the language and its score are kept with the document and written
to the clean corpus. Documents of other languages, or scored below the threshold,
are dropped and counted by their detected language.
"""

import dataclasses

import apache_beam as beam

from tfllm.data.documents import counter
from tfllm.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class LanguageConfig:
    languages: tuple = ()  # ISO 639-1 codes to keep; empty: no identification
    min_score: float = 0.5  # the identifier's normalised probability of that language

    def __post_init__(self):
        if not 0.0 <= self.min_score <= 1.0:
            raise ConfigError(f"--min_language_score must be in [0, 1]; got {self.min_score}.")
        unknown = sorted(set(self.languages) - set(known_languages()))
        if unknown:
            raise ConfigError(f"--languages names unknown language code(s) {', '.join(unknown)}; "
                              f"the identifier knows {', '.join(sorted(known_languages()))}.")


def known_languages():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE).nb_classes


class IdentifyLanguage(beam.DoFn):
    """Document -> the document with `language` and `language_score`, when it is in
    one of the configured languages with at least the minimum score."""

    def __init__(self, config):
        self._config = config
        self._kept = counter("kept_by_language")
        self._low_score = counter("dropped_language_score")

    def setup(self):
        from py3langid.langid import MODEL_FILE, LanguageIdentifier

        self._identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
        self._languages = set(self._config.languages)

    def process(self, document):
        language, score = self._identifier.classify(" ".join(document.text.split()))
        if language not in self._languages:
            counter(f"dropped_language_{language}").inc()
            return
        if score < self._config.min_score:
            self._low_score.inc()
            return
        self._kept.inc()
        yield document._replace(language=language, language_score=round(float(score), 4))
