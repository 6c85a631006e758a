"""Stage 3: document quality filters with the published C4 and Gopher defaults.

Gopher: Rae et al. 2021, "Scaling Language Models", appendix A (MassiveText
quality and repetition filters, as implemented by datatrove's GopherQualityFilter
and GopherRepetitionFilter). C4: Raffel et al. 2020 and TFDS `c4_utils.py`
(lorem ipsum, curly braces, the bad-words list). Every threshold is a field that
flags can override, and every rule can be disabled by name.
"""

import collections
import dataclasses
import importlib.resources
import re

import apache_beam as beam

from tfllm.data.documents import counter
from tfllm.errors import ConfigError

GOPHER_STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
_BULLETS = ("•", "●", "○", "■", "□", "▪", "▫", "‣", "⁃", "-", "*", "·")
_PUNCTUATION = re.compile(r"[^\w\s]")

RULE_NAMES = ("word_count", "mean_word_length", "symbol_word_ratio", "bullet_lines",
              "ellipsis_lines", "alpha_words", "stop_words", "lorem_ipsum", "curly_brace",
              "bad_words", "duplicate_lines", "duplicate_paragraphs", "top_ngrams",
              "duplicate_ngrams")


@dataclasses.dataclass(frozen=True)
class FilterConfig:
    # Gopher quality filter.
    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1  # '#' and ellipses per word
    max_bullet_lines_ratio: float = 0.9
    max_ellipsis_lines_ratio: float = 0.3
    min_alpha_words_ratio: float = 0.8
    min_stop_words: int = 2
    # Gopher repetition filter.
    max_duplicate_line_fraction: float = 0.3
    max_duplicate_paragraph_fraction: float = 0.3
    max_duplicate_line_char_fraction: float = 0.2
    max_duplicate_paragraph_char_fraction: float = 0.2
    max_top_2gram_char_fraction: float = 0.20
    max_top_3gram_char_fraction: float = 0.18
    max_top_4gram_char_fraction: float = 0.16
    max_duplicate_5gram_char_fraction: float = 0.15
    max_duplicate_6gram_char_fraction: float = 0.14
    max_duplicate_7gram_char_fraction: float = 0.13
    max_duplicate_8gram_char_fraction: float = 0.12
    max_duplicate_9gram_char_fraction: float = 0.11
    max_duplicate_10gram_char_fraction: float = 0.10
    # C4 rules; the curly-brace rule is off by default because code is not noise here.
    bad_words_file: str = ""  # one word per line; empty: the shipped English list
    disabled: tuple = ("curly_brace",)

    def __post_init__(self):
        unknown = sorted(set(self.disabled) - set(RULE_NAMES))
        if unknown:
            raise ConfigError(f"Unknown quality rule(s) {', '.join(unknown)} in "
                              f"--disable_filters; rules are {', '.join(RULE_NAMES)}.")


def load_bad_words(path=""):
    if path:
        try:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        except OSError as error:
            raise ConfigError(f"Cannot read bad_words_file {path}: {error.strerror}.") from None
    else:
        text = (importlib.resources.files("tfllm.data") / "resources" /
                "bad_words_en.txt").read_text(encoding="utf-8")
    return frozenset(w.strip().lower() for w in text.splitlines()
                     if w.strip() and not w.startswith("#"))


def _duplicate_fractions(items):
    """(fraction of items that repeat an earlier one, fraction of their characters)."""
    seen, duplicates, duplicate_chars = set(), 0, 0
    for item in items:
        if item in seen:
            duplicates += 1
            duplicate_chars += len(item)
        seen.add(item)
    total_chars = sum(len(item) for item in items) or 1
    return duplicates / max(len(items), 1), duplicate_chars / total_chars


def _top_ngram_char_fraction(words, n):
    ngrams = collections.Counter(tuple(words[i:i + n]) for i in range(len(words) - n + 1))
    if not ngrams:
        return 0.0
    top, count = ngrams.most_common(1)[0]
    if count < 2:
        return 0.0
    return sum(len(w) for w in top) * count / max(sum(len(w) for w in words), 1)


def _duplicate_ngram_char_fraction(words, n):
    """Characters in words covered by n-grams that occur more than once (Gopher)."""
    seen, covered = set(), [False] * len(words)
    for i in range(len(words) - n + 1):
        ngram = tuple(words[i:i + n])
        if ngram in seen:
            for j in range(i, i + n):
                covered[j] = True
        seen.add(ngram)
    total = sum(len(w) for w in words) or 1
    return sum(len(w) for w, c in zip(words, covered) if c) / total


def first_failed_rule(text, config, bad_words=frozenset()):
    """The name of the first rule `text` fails, or None if it passes them all."""
    enabled = set(RULE_NAMES) - set(config.disabled)
    words = text.split()
    lower_words = [_PUNCTUATION.sub("", w.lower()) for w in words]
    lines = [line for line in text.split("\n") if line.strip()]
    n = len(words)
    if "word_count" in enabled and not config.min_words <= n <= config.max_words:
        return "word_count"
    if n == 0:
        return "word_count"
    mean_length = sum(len(w) for w in words) / n
    if "mean_word_length" in enabled and not (
            config.min_mean_word_length <= mean_length <= config.max_mean_word_length):
        return "mean_word_length"
    symbols = text.count("#") + text.count("...") + text.count("…")
    if "symbol_word_ratio" in enabled and symbols / n > config.max_symbol_word_ratio:
        return "symbol_word_ratio"
    if lines and "bullet_lines" in enabled and sum(
            line.lstrip().startswith(_BULLETS) for line in lines) / len(lines) > \
            config.max_bullet_lines_ratio:
        return "bullet_lines"
    if lines and "ellipsis_lines" in enabled and sum(
            line.rstrip().endswith(("...", "…")) for line in lines) / len(lines) > \
            config.max_ellipsis_lines_ratio:
        return "ellipsis_lines"
    if "alpha_words" in enabled and sum(
            any(c.isalpha() for c in w) for w in words) / n < config.min_alpha_words_ratio:
        return "alpha_words"
    if "stop_words" in enabled and sum(
            w in GOPHER_STOP_WORDS for w in lower_words) < config.min_stop_words:
        return "stop_words"
    if "lorem_ipsum" in enabled and "lorem ipsum" in text.lower():
        return "lorem_ipsum"
    if "curly_brace" in enabled and "{" in text:
        return "curly_brace"
    if "bad_words" in enabled and bad_words and not bad_words.isdisjoint(lower_words):
        return "bad_words"
    if "duplicate_lines" in enabled:
        fraction, chars = _duplicate_fractions(lines)
        if (fraction > config.max_duplicate_line_fraction
                or chars > config.max_duplicate_line_char_fraction):
            return "duplicate_lines"
    if "duplicate_paragraphs" in enabled:
        paragraphs = [p.strip() for p in text.split("\n\n") if p.strip()]
        fraction, chars = _duplicate_fractions(paragraphs)
        if (fraction > config.max_duplicate_paragraph_fraction
                or chars > config.max_duplicate_paragraph_char_fraction):
            return "duplicate_paragraphs"
    if "top_ngrams" in enabled:
        for size in (2, 3, 4):
            limit = getattr(config, f"max_top_{size}gram_char_fraction")
            if _top_ngram_char_fraction(lower_words, size) > limit:
                return "top_ngrams"
    if "duplicate_ngrams" in enabled:
        for size in range(5, 11):
            limit = getattr(config, f"max_duplicate_{size}gram_char_fraction")
            if _duplicate_ngram_char_fraction(lower_words, size) > limit:
                return "duplicate_ngrams"
    return None


def filter_config_from_overrides(overrides, disabled):
    """A FilterConfig from flag strings: {"min_words": "5"} and ["stop_words"]."""
    fields = {f.name: f for f in dataclasses.fields(FilterConfig) if f.name != "disabled"}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ConfigError(f"Unknown quality-filter setting(s) {', '.join(unknown)} in "
                          f"--filter_overrides; settings are {', '.join(fields)}.")
    values = {}
    for name, value in overrides.items():
        kind = fields[name].type
        try:
            values[name] = kind(value)
        except ValueError:
            raise ConfigError(f"--filter_overrides {name}={value!r}: expected "
                              f"{'an integer' if kind is int else 'a number'}.") from None
    if disabled:
        values["disabled"] = tuple(disabled)
    return FilterConfig(**values)


class _Filter(beam.DoFn):
    def __init__(self, config):
        self._config = config
        self._kept = counter("kept_by_quality_filter")
        self._dropped = {rule: counter(f"dropped_{rule}") for rule in RULE_NAMES}

    def setup(self):
        self._bad_words = load_bad_words(self._config.bad_words_file)

    def process(self, document):
        rule = first_failed_rule(document.text, self._config, self._bad_words)
        if rule:
            self._dropped[rule].inc()
            return
        self._kept.inc()
        yield document


class QualityFilter(beam.PTransform):
    def __init__(self, config=FilterConfig()):
        super().__init__()
        self._config = config

    def expand(self, documents):
        return documents | "Filter" >> beam.ParDo(_Filter(self._config))
