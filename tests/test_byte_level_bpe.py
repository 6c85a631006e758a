"""Byte-level BPE from tokenizer.json (Llama 3, Qwen2, SmolLM2) equals the `tokenizers`
library's encoding of the same file, in Python, in a tf.data pipeline (the data job) and
inside a reloaded SavedModel (serving)."""

import json

import pytest
import tensorflow as tf
import tokenizers

from tests.interop import published
from tfllm.errors import ConfigError
from tfllm.text import byte_level_bpe
from tfllm.text.tokenizers import load_tokenizer

KINDS = ("llama3", "qwen2", "smollm2")
CHAT = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nCafé?<|im_end|>\n"


@pytest.fixture(scope="module")
def sentences():
    texts = published.multilingual_sentences(300)
    joined = "".join(texts)
    assert len(texts) == 300 and "é" in joined and "\U0001f642" in joined
    assert any("\u4e00" <= c <= "\u9fff" for c in joined)  # CJK ideographs
    return texts + [CHAT, "", " ", "a  \n\n b\t\t c   ", "I'M DON'T 1234567 'x'"]


@pytest.fixture(scope="module")
def tokenizer_files(tmp_path_factory):
    directory = tmp_path_factory.mktemp("byte_level")
    return {kind: published.byte_level_tokenizer(kind, directory / f"{kind}.json")
            for kind in KINDS}


def _reference(path, texts):
    reference = tokenizers.Tokenizer.from_file(path)
    return [e.ids for e in reference.encode_batch(texts, add_special_tokens=False)]


@pytest.mark.parametrize("kind", KINDS)
def test_equal_to_the_tokenizers_library_in_python_tf_data_and_a_saved_model(
        kind, tokenizer_files, sentences, tmp_path):
    expected = _reference(tokenizer_files[kind], sentences)
    layer = byte_level_bpe.ByteLevelBpeTokenizer.from_file(tokenizer_files[kind])
    assert layer(tf.constant(sentences)).to_list() == expected

    dataset = tf.data.Dataset.from_tensor_slices(sentences).batch(64).map(layer)
    assert [row for batch in dataset for row in batch.to_list()] == expected

    module = tf.Module()
    module.tokenizer = layer
    module.tokenize = tf.function(lambda text: layer(text).to_tensor(-1),
                                  input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(module, str(tmp_path / "saved"))
    reloaded = tf.saved_model.load(str(tmp_path / "saved"))
    ids = reloaded.tokenize(tf.constant(sentences)).numpy()
    assert [[i for i in row if i >= 0] for row in ids.tolist()] == expected

    texts = layer.detokenize(tf.ragged.constant(expected[:-5]))
    assert [t.decode("utf-8") if isinstance(t, bytes) else t for t in texts] == [
        tokenizers.Tokenizer.from_file(tokenizer_files[kind]).decode(e) for e in expected[:-5]]


def test_added_tokens_stay_whole_and_words_in_the_vocabulary_skip_merges(tmp_path):
    # Merges alone make "abc" a + bc; Llama 3's ignore_merges takes the vocabulary's abc.
    vocabulary = {"a": 0, "b": 1, "c": 2, "bc": 3, "abc": 4, "ab": 5, "<|x|>": 6}
    spec = {"version": "1.0", "added_tokens": [
        {"id": 6, "content": "<|x|>", "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                          "use_regex": True},
        "post_processor": None, "decoder": None,
        "model": {"type": "BPE", "vocab": vocabulary, "merges": ["b c", "a b"],
                  "ignore_merges": True}}
    for ignore_merges, expected in ((True, [4, 6, 4]), (False, [0, 3, 6, 0, 3])):
        spec["model"]["ignore_merges"] = ignore_merges
        path = tmp_path / f"{ignore_merges}.json"
        path.write_text(json.dumps(spec))
        assert _reference(str(path), ["abc<|x|>abc"]) == [expected]
        layer = byte_level_bpe.ByteLevelBpeTokenizer.from_file(str(path))
        assert layer(tf.constant(["abc<|x|>abc"])).to_list() == [expected]


def test_special_tokens_and_stop_ids_come_from_the_published_configs(tokenizer_files, tmp_path):
    path = tmp_path / "tokenizer.json"
    path.write_bytes(open(tokenizer_files["qwen2"], "rb").read())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"eos_token": "<|im_end|>", "pad_token": {"content": "<|endoftext|>"}}))
    (tmp_path / "generation_config.json").write_text(json.dumps({"eos_token_id": [1, 2]}))
    tokenizer = load_tokenizer(str(tmp_path))
    assert tokenizer.special_ids == {"pad": 0, "unk": 2, "end_of_text": 2}
    assert tokenizer.stop_ids == [1, 2] and tokenizer.vocab_size == 400
    assert tokenizer.detokenize(tokenizer.tokenize([CHAT])[0]) == CHAT
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": "</s>"}))
    with pytest.raises(ConfigError, match="special token '</s>'.*not in the vocabulary"):
        load_tokenizer(str(path))


@pytest.mark.parametrize("change, message", [
    (lambda s: s["model"].update(type="WordPiece"), "its model is 'WordPiece', not BPE"),
    (lambda s: s.update(normalizer={"type": "Replace"}), "its normalizer is"),
    (lambda s: s["pre_tokenizer"]["pretokenizers"][0]["pattern"].update(Regex=r"\w+"),
     "split pattern"),
    (lambda s: s["pre_tokenizer"]["pretokenizers"].reverse(), "its pre-tokenizer is"),
])
def test_what_cannot_be_reproduced_is_refused_in_one_paragraph(tokenizer_files, tmp_path,
                                                               change, message):
    with open(tokenizer_files["llama3"], encoding="utf-8") as f:
        spec = json.load(f)
    change(spec)
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(spec))
    with pytest.raises(ConfigError, match=message) as raised:
        load_tokenizer(str(path))
    assert "\n" not in str(raised.value) and "nothing is written" in str(raised.value)
