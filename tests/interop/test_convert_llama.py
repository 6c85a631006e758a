"""Hugging Face Llama, Qwen2, Mistral and Gemma directories in and out.

The directories are written here in the Transformers layout (random weights; nothing
can be downloaded) and read by keras-hub's own Transformers loader, the independent
reading both directions are checked against: our writer must produce what keras-hub
reads as the same model, and our import must equal the original weights and keras-hub's
reading of them.
"""

import dataclasses
import io
import json
import os
import subprocess
import sys

import keras_hub
import numpy as np
import pytest
import safetensors.numpy
import sentencepiece as spm
import tokenizers

from tests.interop import published
from tfllm.errors import ConfigError
from tfllm.interop import conversion, exporting
from tfllm.models import build_pretraining_model, configs
from tfllm.text.tokenizers import load_tokenizer
from tfllm.training.artifacts import load_trained

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VOCAB = 120
VARIANTS = {
    "llama": dict(tie_word_embeddings=False, rope_scaling="llama3", rope_scaling_factor=8.0,
                  rope_original_max_length=16),
    "qwen2": dict(attention_bias=True, rope_theta=1000000.0),
    "mistral": dict(sliding_window=5, tie_word_embeddings=False),
    "gemma": dict(num_key_value_heads=1, head_dim=16, activation="gelu_approximate",
                  scale_embeddings=True, norm_scale_offset=1.0),
}


def _config(model_type):
    fields = dict(vocab_size=VOCAB, hidden_size=32, num_layers=2, num_heads=4,
                  num_key_value_heads=2, intermediate_size=48, max_sequence_length=64,
                  layer_norm_epsilon=1e-6)
    return configs.LlamaConfig(**{**fields, **VARIANTS[model_type]})


def _sentencepiece_model():
    """A tokenizer.model in Llama 2's layout: <unk> 0, <s> 1, </s> 2, no padding piece."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(published.sentences(300)), model_writer=model,
        vocab_size=VOCAB, model_type="bpe", unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        character_coverage=1.0, minloglevel=2)
    return model.getvalue()


@pytest.fixture(scope="module")
def hf_dirs(tmp_path_factory):
    """{model type: (directory, the model written there)}."""
    rng = np.random.default_rng(0)
    proto = _sentencepiece_model()
    made = {}
    for model_type in VARIANTS:
        lm = build_pretraining_model(_config(model_type))
        for weight in lm.weights:  # float16 values: keras-hub's Mistral loader casts to it
            weight.assign(rng.normal(0, 0.3, weight.shape).astype("float16").astype("float32"))
        directory = tmp_path_factory.mktemp(model_type)
        exporting.write_hf_model(lm, str(directory))
        (directory / "tokenizer.model").write_bytes(proto)
        made[model_type] = (str(directory), lm)
    return made


def _inputs():
    ids = np.random.default_rng(1).integers(0, VOCAB, (2, 14)).astype("int32")
    return {"token_ids": ids, "padding_mask": np.ones_like(ids)}


@pytest.mark.parametrize("model_type", sorted(VARIANTS))
def test_written_directories_read_by_keras_hub_as_the_same_model(hf_dirs, model_type):
    directory, lm = hf_dirs[model_type]
    with open(os.path.join(directory, "config.json")) as f:
        assert json.load(f)["model_type"] == model_type
    reference = keras_hub.models.Backbone.from_preset(directory)
    np.testing.assert_allclose(np.asarray(reference(_inputs())),
                               np.asarray(lm.backbone(_inputs())), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model_type", sorted(VARIANTS))
def test_import_equals_the_original_and_keras_hubs_reading(hf_dirs, model_type, tmp_path):
    directory, lm = hf_dirs[model_type]
    model, tokenizer, check = conversion.import_checkpoint(
        directory, "hf", str(tmp_path / "out"), report=lambda line: None)
    assert model.config == lm.config
    for ours, original in zip(model.weights, lm.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(original))
    assert "keras-hub" in check and float(check.rsplit(" ", 1)[1]) < 1e-4
    assert tokenizer.special_ids == {"pad": 0, "unk": 0, "end_of_text": 2}
    loaded, manifest, _ = load_trained(str(tmp_path / "out"))
    assert manifest.kind == "gpt" and manifest.converted
    np.testing.assert_allclose(np.asarray(loaded(_inputs())), np.asarray(lm(_inputs())),
                               atol=1e-5)


def test_convert_command_in_and_out_and_generate(hf_dirs, tmp_path):
    directory, lm = hf_dirs["qwen2"]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

    def run(module, *args):
        result = subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    run("tfllm.convert", f"--from={directory}", f"--model_dir={tmp_path / 'converted'}")
    run("tfllm.convert", f"--model_dir={tmp_path / 'converted'}", "--to=hf",
        f"--output={tmp_path / 'back'}")
    with open(os.path.join(directory, "config.json")) as f, \
            open(tmp_path / "back" / "config.json") as g:
        assert json.load(f) == json.load(g)
    original = safetensors.numpy.load_file(os.path.join(directory, "model.safetensors"))
    back = safetensors.numpy.load_file(str(tmp_path / "back" / "model.safetensors"))
    assert original.keys() == back.keys()
    for name in original:
        np.testing.assert_array_equal(original[name], back[name])
    assert load_tokenizer(str(tmp_path / "back" / "tokenizer.model")).vocab_size == VOCAB
    printed = run("tfllm.generate", f"--model_dir={tmp_path / 'converted'}",
                  "--prompt=The capital of France", "--max_new_tokens=5", "--method=greedy",
                  "--nojit_compile")
    assert printed.startswith("The capital of France")


def _copy(directory, tmp_path, **config_changes):
    target = tmp_path / "changed"
    target.mkdir()
    for name in os.listdir(directory):
        (target / name).write_bytes(open(os.path.join(directory, name), "rb").read())
    with open(target / "config.json") as f:
        fields = json.load(f)
    fields.update(config_changes)
    (target / "config.json").write_text(json.dumps(fields))
    return str(target)


@pytest.mark.parametrize("changes, message", [
    ({"rope_scaling": {"rope_type": "yarn", "factor": 4.0}}, "rope_scaling.rope_type='yarn'"),
    ({"num_local_experts": 8}, "not a mixture of experts"),
    ({"hidden_act": "relu2"}, "hidden_act='relu2'"),
    ({"num_hidden_layers": 3}, r"lacks 9 of the model.s tensors \(the first: model.layers.2"),
    ({"intermediate_size": 40}, "does not fit the model that file describes"),
])
def test_what_cannot_be_represented_is_refused_with_nothing_written(hf_dirs, tmp_path, changes,
                                                                     message):
    source = _copy(hf_dirs["llama"][0], tmp_path, **changes)
    with pytest.raises(ConfigError, match=message):
        conversion.import_checkpoint(source, "hf", str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")


CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def test_a_qwen2_directory_with_tokenizer_json_converts_generates_and_goes_back(tmp_path):
    """Qwen2 / SmolLM2 / Llama 3 ship byte-level BPE in tokenizer.json only: its special
    tokens and chat template come from tokenizer_config.json, its stop ids from
    generation_config.json, and all of it goes back out with --to=hf."""
    source = tmp_path / "qwen2"
    source.mkdir()
    lm = build_pretraining_model(dataclasses.replace(_config("qwen2"), vocab_size=400))
    exporting.write_hf_model(lm, str(source))
    published.byte_level_tokenizer("qwen2", source / "tokenizer.json")
    (source / "tokenizer_config.json").write_text(json.dumps(
        {"eos_token": "<|im_end|>", "pad_token": "<|endoftext|>", "chat_template": CHATML}))
    (source / "generation_config.json").write_text(json.dumps({"eos_token_id": [0, 2]}))
    model, tokenizer, _ = conversion.import_checkpoint(str(source), "hf", str(tmp_path / "in"),
                                                       report=lambda line: None)
    assert tokenizer.path.endswith("tokenizer.json") and tokenizer.stop_ids == [0, 2]
    assert tokenizer.special_ids == {"pad": 0, "unk": 2, "end_of_text": 2}
    reference = tokenizers.Tokenizer.from_file(str(source / "tokenizer.json"))
    texts = published.multilingual_sentences(40)
    assert tokenizer.tokenize(texts) == [e.ids for e in reference.encode_batch(
        texts, add_special_tokens=False)]
    assert os.path.exists(tmp_path / "in" / "tokenizer" / "chat_format.json")
    conversion.export_model(str(tmp_path / "in"), "hf", str(tmp_path / "back"))
    for name in ("tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        assert (tmp_path / "back" / name).read_bytes() == (source / name).read_bytes()


def test_a_directory_without_a_tokenizer_is_refused(hf_dirs, tmp_path):
    source = _copy(hf_dirs["qwen2"][0], tmp_path)
    os.remove(os.path.join(source, "tokenizer.model"))
    with pytest.raises(ConfigError, match="neither tokenizer.model nor tokenizer.json"):
        conversion.import_checkpoint(source, "hf", str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")


def _gemma_sentencepiece_model():
    """A tokenizer.model with Gemma's special pieces: <pad> 0, <eos> 1, <bos> 2, <unk> 3."""
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(published.sentences(300)), model_writer=model,
        vocab_size=VOCAB, model_type="bpe", pad_id=0, eos_id=1, bos_id=2, unk_id=3,
        pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
        character_coverage=1.0, minloglevel=2)
    return model.getvalue()


def _ids(tokenized):
    """keras-hub tokenizers return ragged tensors in graphs and lists in eager code."""
    tokenized = tokenized.to_list() if hasattr(tokenized, "to_list") else tokenized
    return [[int(i) for i in ids] for ids in tokenized]


# model type: (the backbone keras-hub reads the Transformers directory as, the one tfllm
# writes (Llama with SentencePiece is LlamaBackbone; Llama3Backbone goes with byte-level
# BPE), the family's tokenizer and causal-LM preprocessor)
KERAS_HUB_FAMILIES = {
    "llama": ("Llama3Backbone", "LlamaBackbone", "LlamaTokenizer", "LlamaCausalLMPreprocessor"),
    "mistral": ("MistralBackbone", "MistralBackbone", "MistralTokenizer",
                "MistralCausalLMPreprocessor"),
    "gemma": ("GemmaBackbone", "GemmaBackbone", "GemmaTokenizer", "GemmaCausalLMPreprocessor"),
}


@pytest.mark.parametrize("model_type", sorted(KERAS_HUB_FAMILIES))
def test_keras_hub_presets_in_and_out(hf_dirs, model_type, tmp_path):
    """keras-hub writes the preset (its own Transformers loader reads the directory, its
    save_to_preset writes it, with its family's tokenizer and preprocessor); tfllm reads it
    as the original model and writes it back as a preset keras-hub loads as the same model,
    tokenizer and context length."""
    directory, lm = hf_dirs[model_type]
    backbone_class, written_class, tokenizer_class, preprocessor_class = \
        KERAS_HUB_FAMILIES[model_type]
    preset = str(tmp_path / "preset")
    backbone = keras_hub.models.Backbone.from_preset(directory)
    assert type(backbone).__name__ == backbone_class
    backbone.save_to_preset(preset)
    proto = (_gemma_sentencepiece_model() if model_type == "gemma"
             else open(os.path.join(directory, "tokenizer.model"), "rb").read())
    keras_tokenizer = getattr(keras_hub.models, tokenizer_class)(proto=proto)
    getattr(keras_hub.models, preprocessor_class)(
        tokenizer=keras_tokenizer, sequence_length=lm.config.max_sequence_length
    ).save_to_preset(preset)

    model, tokenizer, check = conversion.import_checkpoint(
        preset, "keras_hub", str(tmp_path / "in"), report=lambda line: None)
    assert model.config == lm.config
    for ours, original in zip(model.weights, lm.weights, strict=True):
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(original))
    assert check.startswith("outputs equal keras-hub's model") and \
        float(check.rsplit(" ", 1)[1]) < 1e-4
    texts = published.sentences(20)
    assert tokenizer.tokenize(texts) == _ids(keras_tokenizer(texts))

    conversion.export_model(str(tmp_path / "in"), "keras_hub", str(tmp_path / "back"))
    task = keras_hub.models.CausalLM.from_preset(str(tmp_path / "back"))
    assert type(task.backbone).__name__ == written_class
    np.testing.assert_allclose(np.asarray(task.backbone(_inputs())),
                               np.asarray(lm.backbone(_inputs())), atol=1e-5, rtol=1e-5)
    assert task.preprocessor.sequence_length == lm.config.max_sequence_length
    assert _ids(task.preprocessor.tokenizer(texts)) == _ids(keras_tokenizer(texts))


def test_a_keras_hub_qwen_preset_with_byte_level_bpe_in_and_out(tmp_path):
    """keras-hub keeps Qwen's vocabulary and merges, not its tokenizer.json: tfllm
    rebuilds that file with Qwen2's split pattern and NFC, so it tokenizes as the
    original tokenizer.json does (the `tokenizers` library's reading), and writes the
    vocabulary back as keras-hub's QwenTokenizer."""
    config = dataclasses.replace(_config("qwen2"), vocab_size=400)
    original = published.byte_level_tokenizer("qwen2", tmp_path / "tokenizer.json")
    spec = json.loads(open(original, encoding="utf-8").read())
    keras_tokenizer = keras_hub.models.QwenTokenizer(
        vocabulary={**spec["model"]["vocab"],
                    **{t["content"]: t["id"] for t in spec["added_tokens"]}},
        merges=[m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]])
    backbone = keras_hub.models.QwenBackbone(
        vocabulary_size=400, num_layers=2, num_query_heads=4, num_key_value_heads=2,
        hidden_dim=32, intermediate_dim=48, rope_max_wavelength=config.rope_theta,
        layer_norm_epsilon=1e-6, tie_word_embeddings=True)
    rng = np.random.default_rng(3)
    for weight in backbone.weights:
        weight.assign(rng.normal(0, 0.3, weight.shape).astype("float32"))
    preset = str(tmp_path / "preset")
    backbone.save_to_preset(preset)
    keras_hub.models.QwenCausalLMPreprocessor(
        tokenizer=keras_tokenizer, sequence_length=config.max_sequence_length
    ).save_to_preset(preset)

    model, tokenizer, check = conversion.import_checkpoint(
        preset, "keras_hub", str(tmp_path / "in"), report=lambda line: None)
    assert model.config == dataclasses.replace(config, tie_word_embeddings=True)
    assert float(check.rsplit(" ", 1)[1]) < 1e-4
    assert tokenizer.path.endswith("tokenizer.json")
    reference = tokenizers.Tokenizer.from_file(original)
    texts = published.multilingual_sentences(60)
    assert tokenizer.tokenize(texts) == [e.ids for e in reference.encode_batch(
        texts, add_special_tokens=False)]
    assert tokenizer.special_ids["end_of_text"] == spec["model"]["vocab"].get(
        "<|endoftext|>", 0)

    conversion.export_model(str(tmp_path / "in"), "keras_hub", str(tmp_path / "back"))
    back = keras_hub.models.CausalLM.from_preset(str(tmp_path / "back"))
    assert type(back.preprocessor.tokenizer).__name__ == "QwenTokenizer"
    assert back.preprocessor.tokenizer.vocabulary == keras_tokenizer.vocabulary
    np.testing.assert_allclose(np.asarray(back.backbone(_inputs())),
                               np.asarray(backbone(_inputs())), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("model_type, changes, message", [
    ("qwen2", {}, "QwenTokenizer reads byte-level BPE only"),
    ("gemma", {"rope_theta": 20000.0}, "GemmaBackbone cannot hold this model: its rope_theta "
                                       "is 20000.0 and there it must be 10000.0"),
    ("mistral", {"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                  "high_freq_factor": 4.0,
                                  "original_max_position_embeddings": 16}},
     "MistralBackbone cannot hold this model: its rope_scaling is 'llama3'"),
])
def test_what_keras_hub_cannot_hold_is_refused_with_nothing_written(hf_dirs, tmp_path,
                                                                    model_type, changes, message):
    """keras-hub's Qwen reads byte-level BPE only, its Gemma fixes the rotary base, its
    Mistral has no Llama 3 frequency scaling."""
    directory = _copy(hf_dirs[model_type][0], tmp_path, **changes)
    conversion.import_checkpoint(directory, "hf", str(tmp_path / "in"), report=lambda line: None)
    with pytest.raises(ConfigError, match=message):
        conversion.export_model(str(tmp_path / "in"), "keras_hub", str(tmp_path / "out"))
    assert not os.path.exists(tmp_path / "out")
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".out")]


def test_control_pieces_written_in_text_read_as_their_ids(hf_dirs, tmp_path):
    """Llama 2's chat template writes `<s>` and `</s>` into the text it renders; they read
    as ids 1 and 2 (SentencePiece alone spells them out), each stretch between them as
    SentencePiece encodes it (Hugging Face's legacy Llama tokenizer), in Python, in tf.data
    and in a SavedModel."""
    import tensorflow as tf

    path = os.path.join(hf_dirs["llama"][0], "tokenizer.model")
    tokenizer = load_tokenizer(path)
    processor = spm.SentencePieceProcessor(model_file=path)
    text = "<s>[INST] The capital of France? [/INST] Paris.</s><s>[INST] And Italy? [/INST]"
    expected = [1, *processor.encode("[INST] The capital of France? [/INST] Paris."), 2, 1,
                *processor.encode("[INST] And Italy? [/INST]")]
    assert processor.encode(text)[:1] != [1]  # what SentencePiece alone does
    plain = published.sentences(20)
    assert tokenizer.tokenize([text, *plain]) == [expected, *processor.encode(plain)]
    dataset = tf.data.Dataset.from_tensor_slices([text]).map(tokenizer.keras_tokenizer)
    assert next(iter(dataset)).numpy().tolist() == expected
    module = tf.Module()
    module.tokenizer = tokenizer.keras_tokenizer
    module.ids = tf.function(lambda texts: module.tokenizer(texts).to_tensor(),
                             input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(module, str(tmp_path / "saved"))
    assert tf.saved_model.load(str(tmp_path / "saved")).ids(
        tf.constant([text])).numpy()[0].tolist() == expected
