"""Stage 2: Unicode and whitespace normalisation; undecodable documents handled."""

import dataclasses
import re
import unicodedata

import apache_beam as beam

from tfllm.data.documents import counter
from tfllm.errors import ConfigError

UNICODE_FORMS = ("NFC", "NFKC", "none")
_INVISIBLE = re.compile("[\u200b\u200c\u200d\ufeff\u2060\u202a-\u202e\u2066-\u2069]")
# C0/C1 control characters except tab and newline (backspace overstrikes in
# fortunes, terminal escapes, NULs from binary files).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_SPACES = re.compile(r"[ \t\u00a0\u3000]+")
_TRAILING = re.compile(r" +\n")
_BLANK_RUNS = re.compile(r"\n{3,}")


@dataclasses.dataclass(frozen=True)
class NormalizeConfig:
    unicode_form: str = "NFKC"
    on_undecodable: str = "replace"  # keep U+FFFD replacements, or "drop" the document
    max_chars: int = 1_000_000  # longer documents are dropped (e.g. a 50 MB line)

    def __post_init__(self):
        if self.unicode_form not in UNICODE_FORMS:
            raise ConfigError(f"--unicode_form must be one of {', '.join(UNICODE_FORMS)}; "
                              f"got {self.unicode_form!r}.")
        if self.on_undecodable not in ("replace", "drop"):
            raise ConfigError("--on_undecodable must be replace or drop; got "
                              f"{self.on_undecodable!r}.")
        if self.max_chars < 1:
            raise ConfigError(f"--max_chars must be positive; got {self.max_chars}.")


def normalize_text(text, unicode_form="NFKC"):
    """Returns (normalised text, number of invisible/bidi characters removed)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text, invisible = _INVISIBLE.subn("", text)
    text = _CONTROL.sub("", text)
    if unicode_form != "none":
        text = unicodedata.normalize(unicode_form, text)
    text = _SPACES.sub(" ", text)
    text = _TRAILING.sub("\n", text)
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip(), invisible


class _Normalize(beam.DoFn):
    def __init__(self, config):
        self._config = config
        self._undecodable_documents = counter("undecodable_documents")
        self._undecodable_bytes = counter("undecodable_bytes")
        self._dropped_undecodable = counter("dropped_undecodable")
        self._dropped_too_long = counter("dropped_too_long")
        self._dropped_empty = counter("dropped_empty")
        self._invisible = counter("zero_width_or_bidi_removed")

    def process(self, document):
        if document.undecodable_bytes:
            self._undecodable_documents.inc()
            self._undecodable_bytes.inc(document.undecodable_bytes)
            if self._config.on_undecodable == "drop":
                self._dropped_undecodable.inc()
                return
        if len(document.text) > self._config.max_chars:
            self._dropped_too_long.inc()
            return
        text, invisible = normalize_text(document.text, self._config.unicode_form)
        self._invisible.inc(invisible)
        if not text:
            self._dropped_empty.inc()
            return
        yield document._replace(text=text)


class NormalizeText(beam.PTransform):
    def __init__(self, config=NormalizeConfig()):
        super().__init__()
        self._config = config

    def expand(self, documents):
        return documents | "Normalize" >> beam.ParDo(_Normalize(self._config))
