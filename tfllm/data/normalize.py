"""Stage 2: Unicode and whitespace normalisation; undecodable documents handled.

Later stages (quality rules, dedup hashes, MinHash shingles, the tokenizer) compare
text, so two renderings of the same text must become the same string here.
"""

import dataclasses
import re
import unicodedata

import apache_beam as beam

from tfllm.data.documents import counter
from tfllm.errors import ConfigError

UNICODE_FORMS = ("NFC", "NFKC", "none")
UNDECODABLE_POLICIES = ("replace", "drop")

# Everything str.splitlines() treats as a line boundary, so that no stage sees a
# line break that another stage does not.
_LINE_BREAKS = re.compile("\r\n|[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
# Zero-width characters and bidi controls: invisible, yet they split words and
# defeat deduplication (and bidi overrides can disguise text).
_INVISIBLE = re.compile("[\u200b-\u200d\ufeff\u2060\u202a-\u202e\u2066-\u2069]")
# C0/C1 control characters except tab and newline (backspace overstrikes in
# fortunes, terminal escapes, NULs from binary files); line breaks are gone by then.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Lone surrogates come from JSON escapes such as "\ud800"; they cannot be encoded
# as UTF-8, so left in they would crash the writers.
_SURROGATE = re.compile("[\ud800-\udfff]")
_SPACES = re.compile(r"[^\S\n]+")
_TRAILING_SPACE = re.compile(r" \n")
_BLANK_RUNS = re.compile(r"\n{3,}")


@dataclasses.dataclass(frozen=True)
class NormalizeConfig:
    """How text is normalised and which documents are given up on."""

    unicode_form: str = "NFKC"  # NFKC folds ligatures, full-width forms and odd spaces
    on_undecodable: str = "replace"  # keep the U+FFFD replacements, or "drop" the document
    max_chars: int = 1_000_000  # longer documents are dropped (e.g. a 50 MB single line)

    def __post_init__(self):
        if self.unicode_form not in UNICODE_FORMS:
            raise ConfigError(f"--unicode_form must be one of {', '.join(UNICODE_FORMS)}; "
                              f"got {self.unicode_form!r}.")
        if self.on_undecodable not in UNDECODABLE_POLICIES:
            raise ConfigError("--on_undecodable must be replace (keep the document with "
                              "U+FFFD in place of the bad bytes) or drop; got "
                              f"{self.on_undecodable!r}.")
        if (not isinstance(self.max_chars, int) or isinstance(self.max_chars, bool)
                or self.max_chars < 1):
            raise ConfigError("--max_chars must be a positive integer; got "
                              f"{self.max_chars!r}.")


def replace_surrogates(text):
    """Returns (text with lone surrogates replaced by U+FFFD, how many there were)."""
    return _SURROGATE.subn("\ufffd", text)


def normalize_text(text, unicode_form="NFKC"):
    """Returns (normalised text, number of zero-width and bidi characters removed)."""
    text = _LINE_BREAKS.sub("\n", text)
    text, invisible = _INVISIBLE.subn("", text)
    text = _CONTROL.sub("", text)
    if unicode_form != "none":
        text = unicodedata.normalize(unicode_form, text)
    text = _SPACES.sub(" ", text)
    text = _TRAILING_SPACE.sub("\n", text)
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip(), invisible


class _Normalize(beam.DoFn):
    def __init__(self, config):
        self._config = config
        self._undecodable_documents = counter("undecodable_documents")
        self._undecodable_bytes = counter("undecodable_bytes")
        self._undecodable_surrogates = counter("undecodable_surrogates")
        self._dropped_undecodable = counter("dropped_undecodable")
        self._dropped_too_long = counter("dropped_too_long")
        self._dropped_empty = counter("dropped_empty")
        self._invisible = counter("zero_width_or_bidi_removed")

    def process(self, document):
        config = self._config
        # Checked first, so that no work is spent on a document that will be dropped.
        if len(document.text) > config.max_chars:
            self._dropped_too_long.inc()
            return
        text, surrogates = replace_surrogates(document.text)
        if document.undecodable_bytes or surrogates:
            self._undecodable_documents.inc()
            self._undecodable_bytes.inc(document.undecodable_bytes)
            self._undecodable_surrogates.inc(surrogates)
            if config.on_undecodable == "drop":
                self._dropped_undecodable.inc()
                return
        text, invisible = normalize_text(text, config.unicode_form)
        if invisible:
            self._invisible.inc(invisible)
        if not text:
            self._dropped_empty.inc()
            return
        if len(text) > config.max_chars:  # NFKC can expand some characters
            self._dropped_too_long.inc()
            return
        if document.text_pair:
            text_pair, invisible = normalize_text(replace_surrogates(document.text_pair)[0],
                                                  config.unicode_form)
            if not text_pair:
                self._dropped_empty.inc()
                return
            document = document._replace(text_pair=text_pair)
        yield document._replace(text=text)


class NormalizeText(beam.PTransform):
    """PCollection[Document] -> the same documents normalised; the unusable ones dropped."""

    def __init__(self, config=NormalizeConfig()):
        super().__init__()
        self._config = config

    def expand(self, documents):
        return documents | "Normalize" >> beam.ParDo(_Normalize(self._config))
