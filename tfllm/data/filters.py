"""Stage 3: line and document quality rules with the published Gopher, C4 and FineWeb
defaults.

Gopher: Rae et al. 2021, "Scaling Language Models: Methods, Analysis & Insights
from Training Gopher", appendix A.1.1 and table A1 (the MassiveText quality and
repetition filters), as implemented by datatrove's GopherQualityFilter and
GopherRepetitionFilter. C4: Raffel et al. 2020, as implemented by TFDS
`tensorflow_datasets/text/c4_utils.py` (lorem ipsum, curly braces, bad words, at
least 3 sentences; its line rules live in `line_rules` and run first). FineWeb:
Penedo et al. 2024, as implemented by datatrove's FineWebQualityFilter.

Words are whitespace-separated tokens rather than a tokenizer's: the rules run on
every document, and a rule stops the evaluation as soon as it fails. C4 counts
sentences and FineWeb words with NLTK's punkt, which is a download; here a
sentence ends at ".", "!" or "?" before a space or the line's end, and a FineWeb
word is a run of word characters or one punctuation mark, as NLTK splits them.
"""

import collections
import dataclasses
import functools
import importlib.resources
import itertools
import re

import apache_beam as beam

from tfllm.data.documents import counter
from tfllm.data.line_rules import LINE_RULE_NAMES, remove_lines
from tfllm.errors import ConfigError

FINEWEB_RULE_NAMES = ("fineweb_line_punctuation", "fineweb_short_lines",
                      "fineweb_duplicate_line_chars", "fineweb_list_like")
RULE_NAMES = ("word_count", "mean_word_length", "symbol_word_ratio", "bullet_lines",
              "ellipsis_lines", "alpha_words", "stop_words", "lorem_ipsum", "curly_brace",
              "bad_words", "duplicate_lines", "duplicate_paragraphs", "top_ngrams",
              "duplicate_ngrams", "c4_min_sentences") + FINEWEB_RULE_NAMES
# --disable_filters also takes these names for a whole family of rules.
RULE_GROUPS = {"c4_lines": LINE_RULE_NAMES + ("c4_min_sentences",),
               "fineweb": FINEWEB_RULE_NAMES}
ALL_RULES = "all"  # --disable_filters=all: labelled task data is kept as given

# Gopher's stop words: real prose uses at least a couple of them.
GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
_STOP_WORD = re.compile(r"\b(?:%s)\b" % "|".join(GOPHER_STOP_WORDS), re.IGNORECASE)
_BULLETS = ("•", "●", "○", "◦", "■", "□", "▪", "▫", "‣", "⁃", "-", "*")
_ELLIPSES = ("...", "…")
_LETTER = re.compile(r"[^\W\d_]")
_WORD = re.compile(r"\w+")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
_TOP_NGRAM_SIZES = (2, 3, 4)
_DUPLICATE_NGRAM_SIZES = (5, 6, 7, 8, 9, 10)
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]]*(?:\s+|$)")
_LETTER_OR_DIGIT = re.compile(r"[^\W_]")
_NLTK_WORD = re.compile(r"\w+|[^\w\s]")
_FINEWEB_STOP_CHARS = (".", "'", '"', "!", "?")
_COUNTS = ("min_words", "max_words", "min_stop_words", "max_word_length",
           "min_words_per_line", "min_sentences", "short_line_chars")
_UNBOUNDED = ("min_mean_word_length", "max_mean_word_length", "max_symbol_word_ratio",
              "max_newlines_per_word")


@dataclasses.dataclass(frozen=True)
class FilterConfig:
    """Thresholds of the quality rules; a document failing any enabled rule is dropped."""

    # Gopher quality filter (Rae et al. 2021, A.1.1; datatrove GopherQualityFilter).
    min_words: int = 50
    max_words: int = 100_000
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1  # '#' per word, and '...' or '…' per word
    max_bullet_lines_ratio: float = 0.9  # lines starting with a bullet point
    max_ellipsis_lines_ratio: float = 0.3  # lines ending with an ellipsis
    min_alpha_words_ratio: float = 0.8  # words with at least one letter
    min_stop_words: int = 2  # occurrences of GOPHER_STOP_WORDS
    # Gopher repetition filter (Rae et al. 2021, table A1; datatrove
    # GopherRepetitionFilter). Character fractions are of the whole document.
    dup_line_frac: float = 0.3  # lines repeating an earlier line
    dup_para_frac: float = 0.3  # paragraphs repeating an earlier paragraph
    dup_line_char_frac: float = 0.2  # characters in those lines
    dup_para_char_frac: float = 0.2  # characters in those paragraphs
    top_2gram_char_frac: float = 0.20  # characters in the most frequent n-gram, if repeated
    top_3gram_char_frac: float = 0.18
    top_4gram_char_frac: float = 0.16
    dup_5gram_char_frac: float = 0.15  # characters in n-grams repeating an earlier one
    dup_6gram_char_frac: float = 0.14
    dup_7gram_char_frac: float = 0.13
    dup_8gram_char_frac: float = 0.12
    dup_9gram_char_frac: float = 0.11
    dup_10gram_char_frac: float = 0.10
    # C4 (TFDS c4_utils.py) drops pages with "lorem ipsum", with a "{" (off by
    # default here: code in text is not noise for us) and with a word of the
    # LDNOOBW list (here a short English list, or one word or phrase a line).
    drop_curly_brace: bool = False
    bad_words_file: str = ""  # empty: tfllm/data/resources/bad_words_en.txt
    # C4 line rules (line_rules.py) and C4's page rule on sentences.
    max_word_length: int = 1000  # a line with a longer word is removed
    min_words_per_line: int = 5  # shorter lines are removed
    min_sentences: int = 3  # after the line rules, fewer sentences drop the page
    # FineWeb (datatrove FineWebQualityFilter); lines are split on "\n".
    min_punctuated_lines_ratio: float = 0.12  # lines ending in . ' " ! ?; at or below drops
    max_short_lines_ratio: float = 0.67  # lines of at most short_line_chars; at or above drops
    short_line_chars: int = 30
    max_duplicate_line_chars_ratio: float = 0.01  # chars in repeated lines; at or above drops
    max_newlines_per_word: float = 0.3  # list-like pages; above drops
    disabled: tuple = ()  # names from RULE_NAMES and LINE_RULE_NAMES, or RULE_GROUPS

    def __post_init__(self):
        known = RULE_NAMES + LINE_RULE_NAMES
        groups = {**RULE_GROUPS, ALL_RULES: known}
        unknown = [name for name in self.disabled if name not in known + tuple(groups)]
        if unknown:
            raise ConfigError(f"Unknown quality rule(s) {', '.join(unknown)} in "
                              f"--disable_filters; rules are {', '.join(known)}, and "
                              f"{', '.join(RULE_GROUPS)} name their families ({ALL_RULES}: "
                              "every rule).")
        disabled = dict.fromkeys(
            rule for name in self.disabled for rule in groups.get(name, (name,)))
        object.__setattr__(self, "disabled", tuple(disabled))
        for field in dataclasses.fields(self):
            if field.type in (int, float):
                _check_threshold(field.name, getattr(self, field.name))
        if self.min_words > self.max_words:
            raise ConfigError(f"Quality-filter setting min_words={self.min_words} is above "
                              f"max_words={self.max_words}; no document could pass.")
        if self.min_mean_word_length > self.max_mean_word_length:
            raise ConfigError("Quality-filter setting min_mean_word_length="
                              f"{self.min_mean_word_length} is above max_mean_word_length="
                              f"{self.max_mean_word_length}; no document could pass.")


def _check_threshold(name, value):
    """Counts are non-negative integers, fractions lie in [0, 1] (NaN fails both)."""
    if name in _COUNTS:
        expected = "a non-negative integer"
        valid = isinstance(value, int) and value >= 0
    elif name in _UNBOUNDED:
        expected = "a non-negative number"
        valid = isinstance(value, (int, float)) and value >= 0
    else:
        expected = "a number in [0, 1]"
        valid = isinstance(value, (int, float)) and 0 <= value <= 1
    if not valid or isinstance(value, bool):
        raise ConfigError(f"Quality-filter setting {name} must be {expected}; got {value!r}.")


def load_bad_words(path=""):
    """The bad words (and phrases) of `path`, or of the shipped English list."""
    try:
        if path:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        else:
            text = (importlib.resources.files("tfllm.data") / "resources" /
                    "bad_words_en.txt").read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"Cannot read bad_words_file {path}: {error.strerror}.") from None
    except UnicodeDecodeError:
        raise ConfigError(f"bad_words_file {path} is not UTF-8 text.") from None
    entries = (" ".join(_WORD.findall(line.lower())) for line in text.splitlines()
               if not line.lstrip().startswith("#"))
    return frozenset(entry for entry in entries if entry)


@functools.lru_cache(maxsize=4)
def _words_and_phrases(bad_words):
    return (frozenset(w for w in bad_words if " " not in w),
            tuple(f" {w} " for w in bad_words if " " in w))


class _Text:
    """One document's views, each computed once and only if a rule needs it."""

    def __init__(self, text):
        self.text = text

    @functools.cached_property
    def words(self):
        return self.text.split()

    @functools.cached_property
    def lines(self):
        return [line for line in self.text.splitlines() if line.strip()]

    @functools.cached_property
    def lower(self):
        return self.text.lower()


def _fraction(count, total):
    return count / total if total else 0.0


def _duplicates(items):
    """(items equal to an earlier item, characters in them), as Gopher counts them."""
    seen, duplicates, chars = set(), 0, 0
    for item in items:
        if item in seen:
            duplicates += 1
            chars += len(item)
        else:
            seen.add(item)
    return duplicates, chars


def _ngrams(words, n):
    return zip(*(words[i:] for i in range(n)))


def _ngram_chars(ngram):
    return sum(map(len, ngram)) + len(ngram) - 1  # joined by single spaces


def _top_ngram_chars(words, n):
    """Characters in all occurrences of the most frequent n-gram, if it repeats."""
    counts = collections.Counter(_ngrams(words, n))
    if not counts:
        return 0
    ngram, count = counts.most_common(1)[0]
    return _ngram_chars(ngram) * count if count > 1 else 0


def _duplicate_ngram_chars(words, n):
    """Characters in n-grams repeating an earlier one; a repeat's words count once."""
    ngrams = list(_ngrams(words, n))
    seen, chars, i = set(), 0, 0
    while i < len(ngrams):
        if ngrams[i] in seen:
            chars += _ngram_chars(ngrams[i])
            i += n
        else:
            seen.add(ngrams[i])
            i += 1
    return chars


def _word_count(doc, config, bad_words):
    return not config.min_words <= len(doc.words) <= config.max_words


def _mean_word_length(doc, config, bad_words):
    words = doc.words
    return bool(words) and not (config.min_mean_word_length
                                <= sum(map(len, words)) / len(words)
                                <= config.max_mean_word_length)


def _symbol_word_ratio(doc, config, bad_words):
    symbols = max(doc.text.count("#"), sum(map(doc.text.count, _ELLIPSES)))
    return _fraction(symbols, len(doc.words)) > config.max_symbol_word_ratio


def _bullet_lines(doc, config, bad_words):
    bullets = sum(line.lstrip().startswith(_BULLETS) for line in doc.lines)
    return _fraction(bullets, len(doc.lines)) > config.max_bullet_lines_ratio


def _ellipsis_lines(doc, config, bad_words):
    ellipses = sum(line.rstrip().endswith(_ELLIPSES) for line in doc.lines)
    return _fraction(ellipses, len(doc.lines)) > config.max_ellipsis_lines_ratio


def _alpha_words(doc, config, bad_words):
    alpha = sum(1 for word in doc.words if _LETTER.search(word))
    return bool(doc.words) and alpha / len(doc.words) < config.min_alpha_words_ratio


def _stop_words(doc, config, bad_words):
    needed = config.min_stop_words
    return len(list(itertools.islice(_STOP_WORD.finditer(doc.text), needed))) < needed


def _lorem_ipsum(doc, config, bad_words):
    return "lorem ipsum" in doc.lower


def _curly_brace(doc, config, bad_words):
    return config.drop_curly_brace and "{" in doc.text


def _bad_words(doc, config, bad_words):
    words, phrases = _words_and_phrases(frozenset(bad_words))
    tokens = _WORD.findall(doc.lower)
    if not words.isdisjoint(tokens):
        return True
    joined = f" {' '.join(tokens)} " if phrases else ""
    return any(phrase in joined for phrase in phrases)


def _duplicate_lines(doc, config, bad_words):
    duplicates, chars = _duplicates(doc.lines)
    return (_fraction(duplicates, len(doc.lines)) > config.dup_line_frac
            or _fraction(chars, len(doc.text)) > config.dup_line_char_frac)


def _duplicate_paragraphs(doc, config, bad_words):
    paragraphs = [p for p in _PARAGRAPH_BREAK.split(doc.text.strip()) if p]
    duplicates, chars = _duplicates(paragraphs)
    return (_fraction(duplicates, len(paragraphs)) > config.dup_para_frac
            or _fraction(chars, len(doc.text)) > config.dup_para_char_frac)


def _top_ngrams(doc, config, bad_words):
    return any(
        _fraction(_top_ngram_chars(doc.words, n), len(doc.text))
        > getattr(config, f"top_{n}gram_char_frac") for n in _TOP_NGRAM_SIZES)


def _duplicate_ngrams(doc, config, bad_words):
    for n in _DUPLICATE_NGRAM_SIZES:
        chars = _duplicate_ngram_chars(doc.words, n)
        if not chars:
            return False  # no repeated n-gram, so no longer one repeats either
        if chars / len(doc.text) > getattr(config, f"dup_{n}gram_char_frac"):
            return True
    return False


def _sentences(text):
    return sum(1 for line in text.splitlines() for piece in _SENTENCE_END.split(line)
               if _LETTER_OR_DIGIT.search(piece))


def _c4_min_sentences(doc, config, bad_words):
    return _sentences(doc.text) < config.min_sentences


def _fineweb_line_punctuation(doc, config, bad_words):
    lines = doc.text.split("\n")
    punctuated = sum(line.endswith(_FINEWEB_STOP_CHARS) for line in lines)
    return punctuated / len(lines) <= config.min_punctuated_lines_ratio


def _fineweb_short_lines(doc, config, bad_words):
    lines = doc.text.split("\n")
    short = sum(len(line) <= config.short_line_chars for line in lines)
    return short / len(lines) >= config.max_short_lines_ratio


def _fineweb_duplicate_line_chars(doc, config, bad_words):
    _, chars = _duplicates([line for line in doc.text.split("\n") if line.strip()])
    return _fraction(chars, len(doc.text.replace("\n", ""))) >= \
        config.max_duplicate_line_chars_ratio


def _fineweb_list_like(doc, config, bad_words):
    words = len(_NLTK_WORD.findall(doc.text))
    return _fraction(doc.text.count("\n"), words) > config.max_newlines_per_word


_RULES = {"word_count": _word_count, "mean_word_length": _mean_word_length,
          "symbol_word_ratio": _symbol_word_ratio, "bullet_lines": _bullet_lines,
          "ellipsis_lines": _ellipsis_lines, "alpha_words": _alpha_words,
          "stop_words": _stop_words, "lorem_ipsum": _lorem_ipsum,
          "curly_brace": _curly_brace, "bad_words": _bad_words,
          "duplicate_lines": _duplicate_lines, "duplicate_paragraphs": _duplicate_paragraphs,
          "top_ngrams": _top_ngrams, "duplicate_ngrams": _duplicate_ngrams,
          "c4_min_sentences": _c4_min_sentences,
          "fineweb_line_punctuation": _fineweb_line_punctuation,
          "fineweb_short_lines": _fineweb_short_lines,
          "fineweb_duplicate_line_chars": _fineweb_duplicate_line_chars,
          "fineweb_list_like": _fineweb_list_like}


def first_failed_rule(text, config, bad_words=frozenset()):
    """The first rule of RULE_NAMES that `text` fails and `config` enables, or None."""
    doc = _Text(text)
    for name in RULE_NAMES:
        if name not in config.disabled and _RULES[name](doc, config, bad_words):
            return name
    return None


def apply_rules(text, config, bad_words=frozenset()):
    """(text after the line rules, the first document rule it then fails or None,
    {line rule: lines it removed or edited})."""
    text, touched = remove_lines(text, config)
    return text, first_failed_rule(text, config, bad_words), touched


_BOOLEANS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _coerce(field, value):
    """Converts a flag string to the type of a FilterConfig field."""
    try:
        if field.type is bool:
            return _BOOLEANS[str(value).strip().lower()]
        return field.type(value)
    except (KeyError, ValueError):
        expected = {bool: "true or false", int: "an integer", float: "a number"}[field.type]
        raise ConfigError(f"--filter_overrides {field.name}={value!r}: expected "
                          f"{expected}.") from None


def filter_config_from_overrides(overrides, disabled):
    """A FilterConfig from flag strings: ({"min_words": "5"}, ["stop_words"])."""
    fields = {f.name: f for f in dataclasses.fields(FilterConfig) if f.name != "disabled"}
    unknown = sorted(set(overrides) - set(fields))
    if unknown:
        raise ConfigError(f"Unknown quality-filter setting(s) {', '.join(unknown)} in "
                          f"--filter_overrides; settings are {', '.join(fields)}.")
    values = {name: _coerce(fields[name], value) for name, value in overrides.items()}
    return FilterConfig(**values, disabled=tuple(disabled))


class _Filter(beam.DoFn):
    def __init__(self, config, bad_words):
        self._config = config
        self._bad_words = bad_words
        self._kept = counter("kept_by_quality_filter")
        self._dropped = {rule: counter(f"dropped_{rule}") for rule in RULE_NAMES}
        self._lines = {rule: counter(f"lines_{rule}") for rule in LINE_RULE_NAMES}
        self._edited = counter("documents_edited_by_line_rules")

    def process(self, document):
        text, rule, touched = apply_rules(document.text, self._config, self._bad_words)
        for line_rule, lines in touched.items():
            self._lines[line_rule].inc(lines)
        if rule:
            self._dropped[rule].inc()
            return
        self._kept.inc()
        if touched:
            self._edited.inc()
            document = document._replace(text=text)
        yield document


class QualityFilter(beam.PTransform):
    """PCollection[Document] -> the documents passing every enabled rule, with the
    lines the enabled line rules remove taken out."""

    def __init__(self, config=FilterConfig()):
        super().__init__()
        self._config = config
        # Read while the pipeline is built: a bad path fails before any work, and
        # remote workers need not see the file.
        self._bad_words = (frozenset() if "bad_words" in config.disabled
                           else load_bad_words(config.bad_words_file))

    def expand(self, documents):
        return documents | "Filter" >> beam.ParDo(_Filter(self._config, self._bad_words))
