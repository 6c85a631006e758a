import dataclasses
import math

import pytest

from tests.data.beam_helpers import docs, run_transform
from tfllm.data.filters import (RULE_GROUPS, RULE_NAMES, FilterConfig, QualityFilter,
                                apply_rules, filter_config_from_overrides, first_failed_rule,
                                load_bad_words)
from tfllm.data.line_rules import LINE_RULE_NAMES, remove_lines
from tfllm.errors import ConfigError

GOOD = ("The committee met on Tuesday to review the budget and to discuss plans that have "
        "been waiting for approval with the board. Members agreed that the library should "
        "extend its opening hours, and the proposal to renovate the reading room was sent "
        "back for a revised estimate of the costs involved in the work this year. The "
        "next meeting is in May.")
# The published thresholds, except that a handful of words make a document and the
# C4 line and FineWeb families are off: every Gopher rule can then be shown on a
# sentence or two. Each family's own cases turn it back on.
SHORT = FilterConfig(min_words=5, disabled=tuple(RULE_GROUPS))
LONG_LINE = ("the quiet river carves its valley slowly while farmers harvest golden wheat "
             "near villages where children gather berries beside the ancient stone bridges")
PHRASE = "seven silver swans swam across misty northern lakes"
FILLER = ("Rivers carve deep valleys slowly while farmers harvest golden wheat near quiet "
          "villages where children gather berries beside ancient stone bridges and old "
          "shepherds watch their flocks graze on the hills until the evening bells ring "
          "across the meadows")

# rule: (a text that fails only this rule, a close text that passes every rule)
CASES = {
    "word_count": ("the story of towns", "the story of the town"),
    "mean_word_length": ("it is to be so and the", "the cat sat on the mat with the dog"),
    "symbol_word_ratio": ("the #one #two and #three", "the #one thing to know is that the "
                          "sea is deep"),
    "bullet_lines": ("- fresh apples from the old orchard\n- warm bread baked by a local baker"
                     "\n- strong cheese with a glass of wine",
                     "Shopping list for the weekend:\n- fresh apples from the old orchard\n"
                     "- warm bread baked by a local baker"),
    "ellipsis_lines": ("the story of the town goes on and on...\nthe river runs past the old "
                       "mill...\nthe mill is quiet now\nthe miller has gone away\nthe children "
                       "play by the water",
                       "the story of the town goes on and on...\nthe river runs past the old "
                       "mill.\nthe mill is quiet now\nthe miller has gone away\nthe children "
                       "play by the water"),
    "alpha_words": ("the 1234 5678 and 9012 3456", "the 1234 cats and dogs of the town"),
    "stop_words": ("quick brown foxes jump over lazy dogs",
                   "the quick brown fox jumps over the lazy dog"),
    "lorem_ipsum": ("Lorem ipsum dolor sit amet, and the rest",
                    "the lorem and the ipsum are apart"),
    "curly_brace": ("the function returns {the value} of the map",
                    "the function returns (the value) of the map"),
    "bad_words": ("the cat and the shit on the mat", "the cat and the shirt on the mat"),
    "duplicate_lines": (f"Amen.\nAmen.\n{LONG_LINE}", f"Amen.\nSo be it.\n{LONG_LINE}"),
    "duplicate_paragraphs": (
        f"Yes.\nNo.\nMaybe.\n\n{LONG_LINE}\nand more\nand further\nand the end\n\n"
        "Yes.\nNo.\nMaybe.",
        f"Yes.\nNo.\nMaybe.\n\n{LONG_LINE}\nand more\nand further\nand the end\n\n"
        "Yes.\nNo.\nPerhaps."),
    "top_ngrams": ("the cat sat, the cat ran, the cat ate, the cat slept",
                   "the cat sat, a dog ran to the barn, one bird ate, some fish slept"),
    "duplicate_ngrams": (f"{PHRASE} tonight. {FILLER}. {PHRASE} today.",
                         f"{PHRASE} tonight. {FILLER}. Seven golden geese flew over "
                         "sunny southern hills today."),
    "c4_min_sentences": ("The committee met on Tuesday to review the budget. Members agreed "
                         "on the plan.",
                         "The committee met on Tuesday to review the budget. Members agreed "
                         "on the plan. The proposal was sent back for review."),
    "fineweb_line_punctuation": (
        "the river runs past the old mill\nthe mill is quiet now and the miller\n"
        "has gone away to the town for the day\nthe children play by the water all day",
        "the river runs past the old mill\nthe mill is quiet now and the miller\n"
        "has gone away to the town for the day\nthe children play by the water all day."),
    "fineweb_short_lines": (
        "The cat sat on the mat.\nThe dog lay by the door.\nThe bird sang in a tree.\n"
        "The children played by the river until the evening bells rang.",
        "The cat sat on the mat and the dog lay by the door.\nThe bird sang in a tree.\n"
        "The children played by the river until the evening bells rang."),
    "fineweb_duplicate_line_chars": (
        f"Amen to that.\n{LONG_LINE}.\nAmen to that.\nThe children play by the water.",
        f"Amen to that.\n{LONG_LINE}.\nSo be it.\nThe children play by the water."),
    # Only empty lines count as short here, so that the list rule is the one to fail.
    "fineweb_list_like": ("Apples\nPears\nPlums\nFigs\nThe dates and the figs.",
                          "Apples and pears\nPlums and figs\nThe dates and the figs."),
}
CASE_FIELDS = {"fineweb_list_like": {"short_line_chars": 0}}


def _config(rule, disabled=(), **fields):
    """SHORT with the rule's own family on (and `disabled` off)."""
    families = tuple(group for group, rules in RULE_GROUPS.items() if rule not in rules)
    return dataclasses.replace(SHORT, drop_curly_brace=rule == "curly_brace",
                               disabled=families + tuple(disabled),
                               **CASE_FIELDS.get(rule, {}), **fields)


def test_every_rule_has_a_case():
    assert tuple(CASES) == RULE_NAMES


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_each_rule_drops_what_it_should_and_keeps_the_rest(rule):
    failing, passing = CASES[rule]
    bad_words = load_bad_words()
    assert apply_rules(failing, _config(rule), bad_words)[1] == rule
    assert apply_rules(passing, _config(rule), bad_words) == (passing, None, {})
    # Disabling the rule lets the document through.
    assert apply_rules(failing, _config(rule, disabled=(rule,)), bad_words)[1] is None


LINE_CASES = {  # rule: (a line it removes or edits, what is left of it)
    "c4_long_word_lines": ("The sequence " + "ACGT" * 251 + " was read in full.", None),
    "c4_citations": ("The river is the longest in the region.[3][citation needed]",
                     "The river is the longest in the region."),
    "c4_no_end_mark_lines": ("Home | About us | Contact the team", None),
    "c4_short_lines": ("Read more below.", None),
    "c4_javascript_lines": ("Please enable JavaScript to view the comments.", None),
    "c4_policy_lines": ("This site uses cookies to improve your experience.", None),
}
PROSE = ("The committee met on Tuesday to review the budget.\n"
         "Members agreed that the library should extend its hours.\n"
         "The proposal was sent back for a revised estimate.")


def test_every_line_rule_has_a_case():
    assert tuple(LINE_CASES) == LINE_RULE_NAMES


@pytest.mark.parametrize("rule", LINE_RULE_NAMES)
def test_each_line_rule_removes_its_line_and_keeps_the_prose(rule):
    line, left = LINE_CASES[rule]
    text = f"{PROSE}\n  {line}\n\nThe next meeting is in May, after the holidays."
    kept = PROSE + (f"\n{left}" if left else "") + \
        "\nThe next meeting is in May, after the holidays."
    assert remove_lines(text, FilterConfig()) == (kept, {rule: 1})
    assert rule not in remove_lines(text, FilterConfig(disabled=(rule,)))[1]
    assert apply_rules(text, FilterConfig(min_words=5)) == (kept, None, {rule: 1})


def test_untouched_documents_keep_their_layout():
    text = f"  {PROSE}\n\n\n{PROSE}  "
    assert remove_lines(text, FilterConfig()) == (text, {})


def test_documents_are_checked_again_after_their_lines_go():
    # Two sentences survive the line rules: C4's page rule then drops the document.
    text = ("The committee met on Tuesday to review the budget.\nMenu.\nShare this page\n"
            "Members agreed that the library should extend its hours.")
    cleaned, rule, touched = apply_rules(text, FilterConfig(min_words=5))
    assert rule == "c4_min_sentences"
    assert touched == {"c4_short_lines": 1, "c4_no_end_mark_lines": 1}
    assert cleaned.count("\n") == 1


def test_the_published_defaults():
    config = FilterConfig()
    assert (config.min_words, config.max_words) == (50, 100_000)
    assert (config.min_mean_word_length, config.max_mean_word_length) == (3, 10)
    assert (config.max_symbol_word_ratio, config.max_bullet_lines_ratio,
            config.max_ellipsis_lines_ratio, config.min_alpha_words_ratio,
            config.min_stop_words) == (0.1, 0.9, 0.3, 0.8, 2)
    assert (config.dup_line_frac, config.dup_para_frac, config.dup_line_char_frac,
            config.dup_para_char_frac) == (0.3, 0.3, 0.2, 0.2)
    assert [getattr(config, f"top_{n}gram_char_frac") for n in (2, 3, 4)] == [0.20, 0.18, 0.16]
    assert [getattr(config, f"dup_{n}gram_char_frac") for n in range(5, 11)] == [
        0.15, 0.14, 0.13, 0.12, 0.11, 0.10]
    assert (config.max_word_length, config.min_words_per_line, config.min_sentences) == \
        (1000, 5, 3)
    assert (config.min_punctuated_lines_ratio, config.max_short_lines_ratio,
            config.short_line_chars, config.max_duplicate_line_chars_ratio,
            config.max_newlines_per_word) == (0.12, 0.67, 30, 0.01, 0.3)
    assert not config.drop_curly_brace and config.disabled == ()
    assert len(GOOD.split()) >= 50
    assert first_failed_rule(GOOD, config, load_bad_words()) is None
    assert first_failed_rule(GOOD + " {Braces}.", config, load_bad_words()) is None


def test_word_count_and_mean_word_length_bounds_from_above():
    assert first_failed_rule(GOOD, FilterConfig(min_words=5, max_words=20)) == "word_count"
    assert first_failed_rule("the incomprehensibilities of internationalization and "
                             "extraordinarily", SHORT) == "mean_word_length"
    assert first_failed_rule("wait... and... the... end... now...", SHORT) == \
        "symbol_word_ratio"


def test_duplicate_line_characters_count_on_their_own():
    long_repeat = f"{LONG_LINE}\n{LONG_LINE}\nthe end"
    assert first_failed_rule(long_repeat, SHORT) == "duplicate_lines"
    assert first_failed_rule(long_repeat, FilterConfig(min_words=5, dup_line_frac=0.5)) == \
        "duplicate_lines"  # by dup_line_char_frac


def test_bad_words_match_whole_words_case_and_punctuation_aside(tmp_path):
    bad_words = load_bad_words()
    assert len(bad_words) >= 24 and "shit" in bad_words
    assert first_failed_rule("the cat and the Shit! on the mat", SHORT, bad_words) == \
        "bad_words"
    assert first_failed_rule("the cat and the shitake on the mat", SHORT, bad_words) is None
    path = tmp_path / "words.txt"
    path.write_text("# mine\nbanana\nBlue  Waffle\n")
    mine = load_bad_words(str(path))
    assert mine == {"banana", "blue waffle"}
    assert first_failed_rule("the blue, waffle of the day", SHORT, mine) == "bad_words"
    assert first_failed_rule("the blue and the waffle", SHORT, mine) is None
    with pytest.raises(ConfigError, match="Cannot read bad_words_file"):
        load_bad_words(str(tmp_path / "missing.txt"))


def test_overrides_from_flags():
    config = filter_config_from_overrides(
        {"min_words": "5", "max_symbol_word_ratio": "0.5", "drop_curly_brace": "true",
         "bad_words_file": "/tmp/words.txt"}, ["stop_words"])
    assert (config.min_words, config.max_symbol_word_ratio) == (5, 0.5)
    assert config.drop_curly_brace and config.bad_words_file == "/tmp/words.txt"
    assert config.disabled == ("stop_words",)
    assert filter_config_from_overrides({}, []) == FilterConfig()
    grouped = filter_config_from_overrides({}, ["fineweb", "c4_short_lines", "c4_lines"])
    assert grouped.disabled == ("fineweb_line_punctuation", "fineweb_short_lines",
                                "fineweb_duplicate_line_chars", "fineweb_list_like",
                                "c4_short_lines", "c4_long_word_lines", "c4_citations",
                                "c4_no_end_mark_lines", "c4_javascript_lines",
                                "c4_policy_lines", "c4_min_sentences")


@pytest.mark.parametrize("overrides, disabled, message", [
    ({"min_wordz": "5"}, [], r"Unknown quality-filter setting\(s\) min_wordz"),
    ({"min_words": "five"}, [], "min_words='five': expected an integer"),
    ({"dup_line_frac": "high"}, [], "dup_line_frac='high': expected a number"),
    ({"drop_curly_brace": "maybe"}, [], "drop_curly_brace='maybe': expected true or false"),
    ({"dup_line_frac": "1.5"}, [], r"dup_line_frac must be a number in \[0, 1\]"),
    ({"top_2gram_char_frac": "nan"}, [], "top_2gram_char_frac must be"),
    ({"min_words": "-1"}, [], "min_words must be a non-negative integer"),
    ({"min_words": "200", "max_words": "100"}, [], "min_words=200 is above max_words=100"),
    ({"min_words_per_line": "2.5"}, [], "min_words_per_line='2.5': expected an integer"),
    ({"max_short_lines_ratio": "2"}, [], r"max_short_lines_ratio must be a number in \[0, 1\]"),
    ({"max_newlines_per_word": "-1"}, [], "max_newlines_per_word must be a non-negative"),
    ({}, ["c4"], r"Unknown quality rule\(s\) c4 in --disable_filters.*c4_lines, fineweb "
                 "name their families"),
    ({}, ["typo", "stop_words"], r"Unknown quality rule\(s\) typo in --disable_filters; "
                                 "rules are word_count"),
])
def test_bad_overrides_name_the_field(overrides, disabled, message):
    with pytest.raises(ConfigError, match=message):
        filter_config_from_overrides(overrides, disabled)


def test_nan_is_never_a_threshold():
    with pytest.raises(ConfigError):
        FilterConfig(min_alpha_words_ratio=math.nan)


def test_a_bad_words_file_is_read_when_the_pipeline_is_built(tmp_path):
    with pytest.raises(ConfigError, match="missing.txt"):
        QualityFilter(FilterConfig(bad_words_file=str(tmp_path / "missing.txt")))
    QualityFilter(FilterConfig(bad_words_file=str(tmp_path / "missing.txt"),
                               disabled=("bad_words",)))


def test_transform_keeps_good_documents_and_counts_the_first_failed_rule():
    friday = GOOD.replace("Tuesday", "Friday")
    menu = f"Home | News | Contact\n{GOOD}\nShare this"
    documents = docs(GOOD, "Too short.", "Lorem ipsum " + GOOD, GOOD + " Bullshit.", friday,
                     menu)
    counters = run_transform(QualityFilter(), documents, [GOOD, friday, GOOD])
    assert counters["kept_by_quality_filter"] == 3
    assert counters["dropped_word_count"] == 1
    assert counters["dropped_lorem_ipsum"] == 1
    assert counters["dropped_bad_words"] == 1
    assert counters["lines_c4_no_end_mark_lines"] == 2
    assert counters["documents_edited_by_line_rules"] == 1
    assert not {name for name, value in counters.items()
                if value and name.startswith("dropped_")} - {
        "dropped_word_count", "dropped_lorem_ipsum", "dropped_bad_words"}
