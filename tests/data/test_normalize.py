import pytest

from tests.data.beam_helpers import docs, run_transform
from tfllm.data.normalize import (NormalizeConfig, NormalizeText, normalize_text,
                                  replace_surrogates)
from tfllm.errors import ConfigError


@pytest.mark.parametrize("raw, expected", [
    ("ﬁne ｆｕｌｌ\u00a0width", "fine full width"),  # NFKC folds compatibility forms
    ("one\r\ntwo\rthree\u2028four\x0cfive", "one\ntwo\nthree\nfour\nfive"),
    ("a  \t\t b\t c", "a b c"),
    ("trailing   \nspace\t\n", "trailing\nspace"),
    ("one\n\n\n\n\ntwo\n \n \n \nthree", "one\n\ntwo\n\nthree"),
    ("\n\n  padded  \n\n", "padded"),
    ("bell\x07 nul\x00 esc\x1b[0m del\x7f c1\x9b", "bell nul esc[0m del c1"),
    ("keeps\ttabs\nand newlines", "keeps tabs\nand newlines"),
    # fortune files underline by overstriking: the backspaces go, the letters stay
    ("_\bb_\bo_\bl_\bd", "_b_o_l_d"),
])
def test_normalize_text(raw, expected):
    assert normalize_text(raw, "NFKC") == (expected, 0)


def test_zero_width_and_bidi_characters_are_removed_and_counted():
    raw = "zero\u200bwidth\u200c\u200d \ufeffbom \u2060join \u202eevil\u202c \u2066iso\u2069"
    assert normalize_text(raw) == ("zerowidth bom join evil iso", 9)


def test_unicode_forms():
    assert normalize_text("ﬁ e\u0301", "NFC")[0] == "ﬁ é"  # NFC keeps compatibility forms
    assert normalize_text("ﬁ e\u0301", "NFKC")[0] == "fi é"
    assert normalize_text("ﬁ e\u0301", "none")[0] == "ﬁ e\u0301"


def test_lone_surrogates_become_replacement_characters():
    assert replace_surrogates("json \ud83d escape") == ("json \ufffd escape", 1)
    assert replace_surrogates("fine 😀") == ("fine 😀", 0)


def test_transform_drops_and_counts():
    documents = docs("  keep  me \u200b ", "\u200b \x00 \n\n", "x" * 41, "the end\r\n")
    documents.append(documents[0]._replace(doc_id="bad", text="caf\ufffd", undecodable_bytes=2))
    documents.append(documents[0]._replace(doc_id="json", text="emoji \ud83d"))
    counters = run_transform(NormalizeText(NormalizeConfig(max_chars=40)), documents,
                             ["keep me", "the end", "caf\ufffd", "emoji \ufffd"])
    assert counters["dropped_empty"] == 1
    assert counters["dropped_too_long"] == 1
    assert counters["zero_width_or_bidi_removed"] == 2
    assert counters["undecodable_documents"] == 2
    assert counters["undecodable_bytes"] == 2
    assert counters["undecodable_surrogates"] == 1
    assert counters.get("dropped_undecodable", 0) == 0


def test_undecodable_documents_can_be_dropped():
    documents = docs("fine", "caf\ufffd", "emoji \ud83d")
    documents[1] = documents[1]._replace(undecodable_bytes=1)
    counters = run_transform(NormalizeText(NormalizeConfig(on_undecodable="drop")), documents,
                             ["fine"])
    assert counters["dropped_undecodable"] == 2
    assert counters["undecodable_documents"] == 2


def test_defaults():
    assert NormalizeConfig() == NormalizeConfig("NFKC", "replace", 1_000_000)


@pytest.mark.parametrize("kwargs, message", [
    ({"unicode_form": "NFD"}, "--unicode_form must be one of NFC, NFKC, none; got 'NFD'"),
    ({"on_undecodable": "skip"}, "--on_undecodable must be replace"),
    ({"max_chars": 0}, "--max_chars must be a positive integer; got 0"),
    ({"max_chars": "10"}, "--max_chars must be a positive integer"),
])
def test_bad_config(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        NormalizeConfig(**kwargs)
