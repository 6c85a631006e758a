"""Tokenizer training on real text and loading for preprocessing and serving."""

import pytest

from tfllm.errors import ConfigError
from tfllm.text import tokenizers

TEXTS = [
    "The best way to predict the future is to invent it.",
    "Computers are useless. They can only give you answers.",
    "Any sufficiently advanced technology is indistinguishable from magic.",
    "Premature optimization is the root of all evil.",
    "There are only two hard things in computer science: cache invalidation and naming.",
] * 40


def test_wordpiece_has_bert_special_tokens_first(tmp_path):
    path = tokenizers.train_wordpiece(TEXTS, 200, str(tmp_path))
    tokenizer = tokenizers.load_tokenizer(path)
    assert tokenizer.special_ids == {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
    ids = tokenizer.tokenize(["The FUTURE is magic.", "zzqx"])
    vocabulary = tokenizer.keras_tokenizer.get_vocabulary()
    assert [vocabulary[i] for i in ids[0]][:2] == ["the", "future"]  # lowercased
    assert all(0 <= i < tokenizer.vocab_size for row in ids for i in row)


def test_sentencepiece_round_trips_any_text_with_byte_fallback(tmp_path):
    path = tokenizers.train_sentencepiece(TEXTS, 300, str(tmp_path))
    tokenizer = tokenizers.load_tokenizer(path)
    assert tokenizer.special_ids == {"pad": 0, "unk": 1, "end_of_text": 2}
    text = "Naming things is hard. Ünïcödé ✓ 12345"
    ids = tokenizer.tokenize([text])[0]
    assert tokenizer.special_ids["unk"] not in ids
    assert tokenizer.detokenize(ids) == text


def test_bad_tokenizer_inputs(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        tokenizers.load_tokenizer(str(tmp_path / "missing.txt"))
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\nhello\n")
    with pytest.raises(ConfigError, match="lacks special token\\(s\\) \\[CLS\\], \\[SEP\\], "
                                          "\\[MASK\\]"):
        tokenizers.load_tokenizer(str(vocab))
