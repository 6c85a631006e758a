"""Tokenizer training on real text and loading for preprocessing and serving."""

import io

import keras_hub
import pytest
import sentencepiece as spm
import tensorflow as tf
from tensorflow_text.tools.wordpiece_vocab import (
    wordpiece_tokenizer_learner_lib as wordpiece_learner)

from tfllm.errors import ConfigError
from tfllm.text import tokenizers, wordpiece_learning

TEXTS = [
    "The best way to predict the future is to invent it.",
    "Computers are useless. They can only give you answers.",
    "Any sufficiently advanced technology is indistinguishable from magic.",
    "Premature optimization is the root of all evil.",
    "There are only two hard things in computer science: cache invalidation and naming.",
] * 40


def test_wordpiece_has_bert_special_tokens_first(tmp_path):
    path = tokenizers.train_tokenizer("bert", TEXTS, 200, str(tmp_path))
    tokenizer = tokenizers.load_tokenizer(path)
    assert tokenizer.special_ids == {"pad": 0, "unk": 1, "cls": 2, "sep": 3, "mask": 4}
    ids = tokenizer.tokenize(["The FUTURE is magic.", "zzqx"])
    vocabulary = tokenizer.keras_tokenizer.get_vocabulary()
    assert [vocabulary[i] for i in ids[0]][:2] == ["the", "future"]  # lowercased
    assert all(0 <= i < tokenizer.vocab_size for row in ids for i in row)


def test_sentencepiece_round_trips_any_text_with_byte_fallback(tmp_path):
    path = tokenizers.train_tokenizer("gpt", TEXTS, 300, str(tmp_path))
    tokenizer = tokenizers.load_tokenizer(path)
    assert tokenizer.special_ids == {"pad": 0, "unk": 1, "end_of_text": 2}
    text = "Naming things is hard. Ünïcödé ✓ 12345"
    ids = tokenizer.tokenize([text])[0]
    assert tokenizer.special_ids["unk"] not in ids
    assert tokenizer.detokenize(ids) == text


def test_wordpiece_from_counts_is_keras_hubs_vocabulary_from_the_texts(tmp_path):
    texts = TEXTS[:5] + ["Ünïcödé naïve café, 東京 and don't-stop!"]
    expected = keras_hub.tokenizers.compute_word_piece_vocabulary(
        tf.data.Dataset.from_tensor_slices(texts * 8).batch(7), 150, lowercase=True,
        strip_accents=True, reserved_tokens=list(tokenizers.BERT_SPECIAL_TOKENS))
    counts = tokenizers.count_words("bert", texts * 3) + tokenizers.count_words("bert",
                                                                              texts * 5)
    assert counts["cafe"] == 8 and counts["東"] == 8 and counts["'"] == 8
    path = tokenizers.train_from_counts("bert", counts, 150, str(tmp_path))
    with open(path, encoding="utf-8") as f:
        assert f.read().splitlines() == expected


def test_sentencepiece_from_counts_is_sentencepiece_on_the_texts(tmp_path):
    reference = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(TEXTS), model_writer=reference,
                                   vocab_size=300, **tokenizers.SENTENCEPIECE_OPTIONS)
    expected = spm.SentencePieceProcessor(model_proto=reference.getvalue())
    path = tokenizers.train_tokenizer("gpt", TEXTS, 300, str(tmp_path))
    learned = spm.SentencePieceProcessor(model_file=path)
    assert [learned.id_to_piece(i) for i in range(learned.get_piece_size())] == \
        [expected.id_to_piece(i) for i in range(expected.get_piece_size())]
    assert learned.encode(TEXTS[:5]) == expected.encode(TEXTS[:5])
    (tmp_path / "again").mkdir()  # the same counts give the same bytes
    again = tokenizers.train_tokenizer("gpt", TEXTS, 300, str(tmp_path / "again"))
    with open(path, "rb") as first, open(again, "rb") as second:
        assert first.read() == second.read()


def test_bad_tokenizer_inputs(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        tokenizers.load_tokenizer(str(tmp_path / "missing.txt"))
    vocab = tmp_path / "vocab.txt"
    vocab.write_text("[PAD]\n[UNK]\nhello\n")
    with pytest.raises(ConfigError, match="lacks special token\\(s\\) \\[CLS\\], \\[SEP\\], "
                                          "\\[MASK\\]"):
        tokenizers.load_tokenizer(str(vocab))


def test_wordpiece_learner_is_tensorflow_texts_on_real_text():
    """The cheaper threshold search returns the library learner's vocabulary."""
    with open("/usr/share/games/fortunes/linux", encoding="utf-8") as f:
        texts = f.read().split("\n%\n")
    counts = sorted(tokenizers.count_words("bert", texts).items())
    special = list(tokenizers.BERT_SPECIAL_TOKENS)
    for vocab_size in (250, 400):  # different thresholds, so different searches
        expected = wordpiece_learner.learn(counts, vocab_size, special)
        assert wordpiece_learning.learn(counts, vocab_size, special) == expected
        assert vocab_size * 0.95 <= len(expected) <= vocab_size
