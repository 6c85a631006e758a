import pytest

from tests.data.beam_helpers import docs, run_transform
from tfllm.data.filters import (RULE_NAMES, FilterConfig, QualityFilter,
                                filter_config_from_overrides, first_failed_rule, load_bad_words)
from tfllm.errors import ConfigError

GOOD = ("The committee met on Tuesday to review the budget and to discuss plans that have "
        "been waiting for approval with the board. Members agreed that the library should "
        "extend its opening hours, and the proposal to renovate the reading room was sent "
        "back for a revised estimate of the costs involved in the work this year.")
SHORT = FilterConfig(min_words=3, min_stop_words=0)


def test_a_clean_paragraph_passes_every_rule():
    assert len(GOOD.split()) >= 50
    assert first_failed_rule(GOOD, FilterConfig(disabled=()), load_bad_words()) is None


@pytest.mark.parametrize("text, rule", [
    ("Too short.", "word_count"),
    ("a b c d e f g h i j k l m", "mean_word_length"),
    ("extraordinarily incomprehensible characteristically", "mean_word_length"),
    ("#hashtag #another #words and more text here and there", "symbol_word_ratio"),
    ("- first item here\n- second item here\n- third item here", "bullet_lines"),
    ("and then it went on and on for quite some time...\nand so on...\nthe end is near "
     "now truly near friends\nmore words in this line to dilute", "ellipsis_lines"),
    ("1234 5678 91011 words here 1213 1415", "alpha_words"),
    ("lorem ipsum dolor sit amet consectetur", "lorem_ipsum"),
    ("this text contains shit somewhere", "bad_words"),
    ("same line repeated here\nsame line repeated here\nanother line at the end",
     "duplicate_lines"),
    ("one two three four five six seven eight nine ten one two three four five six "
     "seven eight nine ten", "duplicate_ngrams"),
])
def test_each_rule_drops_what_it_should(text, rule):
    config = FilterConfig(min_words=3, min_stop_words=0, max_words=1000,
                          max_top_2gram_char_fraction=1, max_top_3gram_char_fraction=1,
                          max_top_4gram_char_fraction=1)
    assert first_failed_rule(text, config, load_bad_words()) == rule
    disabled = FilterConfig(**{**config.__dict__, "disabled": (rule, "curly_brace")})
    assert first_failed_rule(text, disabled, load_bad_words()) != rule


def test_stop_words_top_ngrams_and_curly_braces():
    assert first_failed_rule("quick brown foxes jump over lazy dogs", FilterConfig(
        min_words=3), frozenset()) == "stop_words"
    repeated = "the cat sat on the mat and the cat sat there with the cat and the dog"
    assert first_failed_rule(repeated, SHORT, frozenset()) == "top_ngrams"
    assert first_failed_rule("int main() { return 0; } is the code", FilterConfig(
        min_words=3, min_stop_words=0, min_alpha_words_ratio=0, disabled=()),
        frozenset()) == "curly_brace"


def test_overrides_from_flags():
    config = filter_config_from_overrides({"min_words": "5", "max_symbol_word_ratio": "0.5"},
                                          ["stop_words"])
    assert (config.min_words, config.max_symbol_word_ratio) == (5, 0.5)
    assert config.disabled == ("stop_words",)
    with pytest.raises(ConfigError, match="Unknown quality-filter setting\\(s\\) min_wordz"):
        filter_config_from_overrides({"min_wordz": "5"}, [])
    with pytest.raises(ConfigError, match="min_words='five': expected an integer"):
        filter_config_from_overrides({"min_words": "five"}, [])
    with pytest.raises(ConfigError, match="Unknown quality rule\\(s\\) typo"):
        filter_config_from_overrides({}, ["typo"])
    assert set(RULE_NAMES) >= {"bad_words", "lorem_ipsum", "duplicate_ngrams"}


def test_bad_words_file(tmp_path):
    path = tmp_path / "words.txt"
    path.write_text("# mine\nbanana\n")
    assert load_bad_words(str(path)) == {"banana"}
    with pytest.raises(ConfigError, match="Cannot read bad_words_file"):
        load_bad_words(str(tmp_path / "missing.txt"))


def test_transform_counts_the_failed_rule():
    documents = docs(GOOD, "Too short.", "lorem ipsum " + GOOD)
    counters = run_transform(QualityFilter(), documents, [GOOD])
    assert counters["dropped_word_count"] == 1
    assert counters["dropped_lorem_ipsum"] == 1
    assert counters["kept_by_quality_filter"] == 1
