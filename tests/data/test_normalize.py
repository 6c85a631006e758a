import pytest

from tests.data.beam_helpers import docs, run_transform
from tfllm.data.normalize import NormalizeConfig, NormalizeText, normalize_text
from tfllm.errors import ConfigError


def test_normalize_text_rules():
    text, invisible = normalize_text(
        "ﬁne\u200b  text\t\there \r\nnext\x07 line   \n\n\n\nend\u202e ", "NFKC")
    assert text == "fine text here\nnext line\n\nend"
    assert invisible == 2
    assert normalize_text("ﬁ", "NFC")[0] == "ﬁ"  # NFC keeps compatibility ligatures
    assert normalize_text("e\u0301", "NFC")[0] == "é"
    # fortune files underline by overstriking: the backspaces go, the letters stay
    assert normalize_text("_\bb_\bo_\bl_\bd", "NFKC")[0] == "_b_o_l_d"


def test_transform_counts_and_drops():
    documents = docs("  keep me  ", "\u200b \x00 ", "x" * 50)
    documents.append(documents[0]._replace(doc_id="bad", text="caf\ufffd", undecodable_bytes=1))
    counters = run_transform(NormalizeText(NormalizeConfig(max_chars=40)), documents,
                             ["keep me", "caf\ufffd"])
    assert counters["dropped_empty"] == 1
    assert counters["dropped_too_long"] == 1
    assert counters["undecodable_documents"] == 1 and counters["undecodable_bytes"] == 1


def test_undecodable_documents_can_be_dropped():
    documents = docs("fine", "caf\ufffd")
    documents[1] = documents[1]._replace(undecodable_bytes=1)
    counters = run_transform(NormalizeText(NormalizeConfig(on_undecodable="drop")), documents,
                             ["fine"])
    assert counters["dropped_undecodable"] == 1


@pytest.mark.parametrize("kwargs, message", [({"unicode_form": "NFD"}, "--unicode_form"),
                                             ({"on_undecodable": "skip"}, "--on_undecodable"),
                                             ({"max_chars": 0}, "--max_chars")])
def test_bad_config(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        NormalizeConfig(**kwargs)
