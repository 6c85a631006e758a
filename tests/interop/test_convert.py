"""tfllm.convert: published checkpoints (made here with random weights) in and back
out, compared with keras-hub's own readings and with independent computations."""

import json
import math
import os
import subprocess
import sys

import keras_hub
import numpy as np
import pytest
import safetensors.numpy
import tensorflow as tf

from tests.interop import published
from tfllm.interop import conversion as convert
from tfllm.generation.decoding import Generator
from tfllm.generation.sampling import SamplingConfig
from tfllm.text.tokenizers import load_tokenizer
from tfllm.training.artifacts import load_trained

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Each published format, and its tfllm conversion."""
    root = tmp_path_factory.mktemp("published")
    uncased, cased = published.wordpiece_vocabulary(True), published.wordpiece_vocabulary(False)
    bpe_vocabulary, merges = published.byte_pair_vocabulary()
    rng = np.random.default_rng(0)
    made = {"root": root, "uncased": uncased, "cased": cased, "bpe": (bpe_vocabulary, merges)}
    made["kh_bert"] = published.keras_hub_bert_preset(str(root / "kh_bert"), uncased)
    made["kh_gpt2"] = published.keras_hub_gpt2_preset(str(root / "kh_gpt2"), bpe_vocabulary,
                                                      merges)
    made["hf_bert_tensors"] = published.hf_bert_tensors(len(cased), rng)
    published.hf_bert_dir(str(root / "hf_bert"), cased, made["hf_bert_tensors"],
                          lowercase=False)
    made["hf_gpt2_tensors"] = published.hf_gpt2_tensors(len(bpe_vocabulary), rng)
    published.hf_gpt2_dir(str(root / "hf_gpt2"), bpe_vocabulary, merges,
                          made["hf_gpt2_tensors"])
    published.tf1_bert_dir(str(root / "tf1_bert"), cased, made["hf_bert_tensors"])
    for name in ("kh_bert", "kh_gpt2", "hf_bert", "hf_gpt2", "tf1_bert"):
        source = str(root / name)
        _, _, made[f"{name}_check"] = convert.import_checkpoint(
            source, convert.detect(source), str(root / f"tfllm_{name}"), report=lambda _: None)
    return made


def _ids(vocab_size, length=12, rows=2, seed=3):
    return np.random.default_rng(seed).integers(5, vocab_size, (rows, length)).astype(np.int32)


def _bert_inputs(ids):
    return {"token_ids": ids, "padding_mask": np.ones_like(ids),
            "segment_ids": np.concatenate([np.zeros_like(ids[:, :6]), np.ones_like(ids[:, 6:])],
                                          axis=1)}


def test_formats_are_detected(made):
    root = made["root"]
    assert [convert.detect(str(root / n)) for n in ("kh_bert", "hf_gpt2", "tf1_bert")] == [
        "keras_hub", "hf", "tf1"]


def test_keras_hub_bert_preset_gives_keras_hubs_outputs(made):
    model, manifest, tokenizer = load_trained(str(made["root"] / "tfllm_kh_bert"))
    task = made["kh_bert"]
    ids = _ids(model.config.vocab_size)
    inputs = _bert_inputs(ids)
    ours, theirs = model.backbone(inputs), task.backbone(inputs)
    for key in ("sequence_output", "pooled_output"):
        np.testing.assert_allclose(ours[key], theirs[key], atol=TOLERANCE)
    positions = np.array([[1, 4], [2, 9]], np.int32)
    np.testing.assert_allclose(
        model({**inputs, "mask_positions": positions})["mlm_logits"],
        task({**inputs, "mask_positions": positions}), atol=TOLERANCE)
    assert manifest.kind == "bert" and tokenizer.options == {"lowercase": True,
                                                                "strip_accents": True}
    assert made["kh_bert_check"].startswith("outputs equal keras-hub's model")
    assert made["hf_bert_check"].endswith("max |difference| 0.00e+00")


def _greedy_by_full_passes(backbone, prompt, steps):
    """keras-hub's GPT-2 backbone, the whole prefix every step, tied projection."""
    tokens = list(prompt)
    embeddings = np.asarray(backbone.token_embedding.embeddings)
    for _ in range(steps):
        ids = np.array([tokens], np.int32)
        hidden = backbone({"token_ids": ids, "padding_mask": np.ones_like(ids)})
        tokens.append(int(np.argmax(np.asarray(hidden)[0, -1] @ embeddings.T)))
    return tokens[len(prompt):]


@pytest.mark.parametrize("name", ["kh_gpt2", "hf_gpt2"])
def test_gpt2_logits_and_cached_greedy_continuation_equal_keras_hub(made, name):
    model, _, _ = load_trained(str(made["root"] / f"tfllm_{name}"))
    reference = made["kh_gpt2"] if name == "kh_gpt2" else keras_hub.models.Backbone.from_preset(
        str(made["root"] / name))
    ids = _ids(model.config.vocab_size)
    logits = model({"token_ids": ids, "padding_mask": np.ones_like(ids)})
    hidden = reference({"token_ids": ids, "padding_mask": np.ones_like(ids)})
    expected = np.asarray(hidden) @ np.asarray(reference.token_embedding.embeddings).T
    np.testing.assert_allclose(logits, expected, atol=TOLERANCE)
    prompt = ids[0, :5].tolist()
    (continuation,), _ = Generator(model, -1, jit_compile=False).generate(
        [prompt], SamplingConfig(max_new_tokens=8))
    assert continuation == _greedy_by_full_passes(reference, prompt, 8)


def _gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / np.sqrt(2)))


def _layer_norm(x, gamma, beta, epsilon=1e-12):
    mean, variance = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * gamma + beta


def _numpy_bert(t, inputs, positions, heads):
    """google-research/bert's forward pass in numpy on HF tensors (exact GELU, eps
    1e-12): sequence and pooled outputs, MLM logits at `positions`, NSP logits."""
    def dense(x, name):
        return x @ t[f"{name}.weight"].T + t[f"{name}.bias"]

    def norm(x, name):
        return _layer_norm(x, t[f"{name}.weight"], t[f"{name}.bias"])

    e = "bert.embeddings"
    ids, segments = inputs["token_ids"], inputs["segment_ids"]
    x = t[f"{e}.word_embeddings.weight"][ids] + t[f"{e}.token_type_embeddings.weight"][
        segments] + t[f"{e}.position_embeddings.weight"][:ids.shape[1]][None]
    x = norm(x, f"{e}.LayerNorm")
    batch, length, hidden = x.shape
    size = hidden // heads
    for n in range(published.SHAPE["layers"]):
        layer = f"bert.encoder.layer.{n}"
        q, k, v = (dense(x, f"{layer}.attention.self.{w}").reshape(batch, length, heads, size)
                   for w in ("query", "key", "value"))
        scores = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(size)
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        attention = np.einsum("bhqk,bkhd->bqhd", scores / scores.sum(-1, keepdims=True), v)
        x = norm(x + dense(attention.reshape(batch, length, hidden),
                           f"{layer}.attention.output.dense"), f"{layer}.attention.output.LayerNorm")
        x = norm(x + dense(_gelu(dense(x, f"{layer}.intermediate.dense")),
                           f"{layer}.output.dense"), f"{layer}.output.LayerNorm")
    pooled = np.tanh(dense(x[:, 0], "bert.pooler.dense"))
    picked = np.take_along_axis(x, positions[..., None], axis=1)
    transformed = norm(_gelu(dense(picked, "cls.predictions.transform.dense")),
                       "cls.predictions.transform.LayerNorm")
    mlm = transformed @ t[f"{e}.word_embeddings.weight"].T + t["cls.predictions.bias"]
    return x, pooled, mlm, dense(pooled, "cls.seq_relationship")


@pytest.mark.parametrize("name", ["hf_bert", "tf1_bert"])
def test_bert_conversion_equals_numpy_bert_and_keras_hubs_reading(made, name):
    """Outputs of every head against google-research/bert's computation in numpy on
    the HF tensors; the encoder's weights against keras-hub's own Transformers loader
    on the same HF files."""
    model, _, tokenizer = load_trained(str(made["root"] / f"tfllm_{name}"))
    inputs = _bert_inputs(_ids(model.config.vocab_size))
    positions = np.array([[1, 4], [2, 9]], np.int32)
    outputs = model({**inputs, "mask_positions": positions})
    encoded = model.backbone(inputs)
    sequence, pooled, mlm, nsp = _numpy_bert(made["hf_bert_tensors"], inputs, positions,
                                             published.SHAPE["heads"])
    np.testing.assert_allclose(encoded["sequence_output"], sequence, atol=TOLERANCE)
    np.testing.assert_allclose(encoded["pooled_output"], pooled, atol=TOLERANCE)
    np.testing.assert_allclose(outputs["mlm_logits"], mlm, atol=TOLERANCE)
    np.testing.assert_allclose(outputs["nsp_logits"], nsp, atol=TOLERANCE)
    reference = keras_hub.models.Backbone.from_preset(str(made["root"] / "hf_bert"))
    assert convert.weight_difference(model, reference) == 0.0
    assert tokenizer.options == {"lowercase": False, "strip_accents": False}  # cased


def test_tf1_casing_is_read_off_the_vocabulary(made):
    from tfllm.interop import tf1_bert

    assert tf1_bert.is_cased(made["cased"]) and not tf1_bert.is_cased(made["uncased"])


def test_tf1_and_hf_conversions_hold_the_same_weights(made):
    hf, _, _ = load_trained(str(made["root"] / "tfllm_hf_bert"))
    tf1, _, _ = load_trained(str(made["root"] / "tfllm_tf1_bert"))
    for a, b in zip(hf.weights, tf1.weights, strict=True):
        np.testing.assert_array_equal(a, b)


def test_tokenizers_equal_keras_hubs_on_real_sentences(made):
    texts = published.sentences()
    root = made["root"]
    cases = [("tfllm_kh_bert", keras_hub.models.BertTokenizer(
                 vocabulary=made["uncased"], lowercase=True, strip_accents=True)),
             ("tfllm_hf_bert", keras_hub.models.BertTokenizer(
                 vocabulary=made["cased"], lowercase=False, strip_accents=False)),
             ("tfllm_hf_gpt2", keras_hub.models.GPT2Tokenizer(*made["bpe"]))]
    for directory, reference in cases:
        ours = load_tokenizer(str(root / directory))
        expected = reference(tf.constant(texts))
        expected = expected.to_list() if hasattr(expected, "to_list") else expected
        assert ours.tokenize(texts) == expected, directory
    gpt2 = load_tokenizer(str(root / "tfllm_hf_gpt2"))
    assert [gpt2.detokenize(ids) for ids in gpt2.tokenize(texts[:50])] == texts[:50]
    cased = load_tokenizer(str(root / "tfllm_hf_bert"))
    assert cased.tokenize(["Café"]) != load_tokenizer(str(root / "tfllm_kh_bert")).tokenize(
        ["Café"])


def test_hf_and_keras_hub_round_trips_reproduce_the_tensors(made, tmp_path):
    root = made["root"]
    for name in ("hf_bert", "hf_gpt2"):
        convert.export_model(str(root / f"tfllm_{name}"), "hf", str(tmp_path / name))
        back = safetensors.numpy.load_file(str(tmp_path / name / "model.safetensors"))
        original = made[f"{name}_tensors"]
        assert set(back) == set(original)
        for key, value in original.items():
            np.testing.assert_array_equal(back[key], value, err_msg=key)
        with open(tmp_path / name / "config.json") as f:
            exported = json.load(f)
        with open(root / name / "config.json") as f:
            source = json.load(f)
        for field in ("model_type", "vocab_size", "hidden_size", "n_embd", "num_hidden_layers",
                      "n_layer", "max_position_embeddings", "n_positions"):
            assert exported.get(field) == source.get(field), field
    for name, source in (("kh_bert", made["kh_bert"]), ("kh_gpt2", made["kh_gpt2"])):
        convert.export_model(str(root / f"tfllm_{name}"), "keras_hub", str(tmp_path / name))
        if name == "kh_bert":
            back = keras_hub.models.BertMaskedLM.from_preset(str(tmp_path / name),
                                                             preprocessor=None)
        else:
            back = keras_hub.models.Backbone.from_preset(str(tmp_path / name))
        for a, b in zip(source.weights, back.weights, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=a.path)
        tokenizer = keras_hub.tokenizers.Tokenizer.from_preset(str(tmp_path / name))
        original = keras_hub.tokenizers.Tokenizer.from_preset(str(root / name))
        assert tokenizer.get_vocabulary() == original.get_vocabulary()


def _convert_cli(*args):
    return subprocess.run([sys.executable, "-m", "tfllm.convert", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})


def test_convert_command_and_its_errors(made, tmp_path):
    root = made["root"]
    result = _convert_cli(f"--from={root / 'hf_bert'}", f"--model_dir={tmp_path / 'ok'}")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "wrote" in result.stdout and "weights equal keras-hub's own reading" in result.stdout
    with open(tmp_path / "ok" / "converted_from.json") as f:
        assert json.load(f)["format"] == "hf"
    for args, message in [([f"--model_dir={tmp_path / 'ok'}", "--to=hf"], "--to exports"),
                          ([f"--model_dir={tmp_path / 'ok'}"], "Give --from=PATH"),
                          ([f"--from={root / 'hf_bert'}", f"--model_dir={tmp_path / 'ok'}"],
                           "already exists and is not empty")]:
        result = _convert_cli(*args)
        assert result.returncode == 2 and message in " ".join(result.stderr.split()), \
            result.stderr[-1500:]

    def broken(name, edit):
        directory = tmp_path / name
        subprocess.run(["cp", "-r", str(root / "hf_bert"), str(directory)], check=True)
        edit(directory)
        return directory

    def set_config(directory, **fields):
        with open(directory / "config.json") as f:
            config = json.load(f)
        with open(directory / "config.json", "w") as f:
            json.dump({**config, **fields}, f)

    def truncate(directory):
        path = directory / "model.safetensors"
        path.write_bytes(path.read_bytes()[:5000])

    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "weights.bin").write_bytes(b"x")
    cases = [
        (tmp_path / "nothing", "no known checkpoint layout"),
        (broken("roberta", lambda d: set_config(d, model_type="roberta")), "'roberta'"),
        (broken("relative", lambda d: set_config(d, position_embedding_type="relative_key")),
         "position_embedding_type"),
        (broken("swish", lambda d: set_config(d, hidden_act="swish")), "hidden_act"),
        (broken("truncated", truncate), "truncated"),
        (broken("no_vocab", lambda d: os.remove(d / "vocab.txt")), "vocab.txt"),
        (broken("shapes", lambda d: set_config(d, hidden_size=64)), "does not match"),
    ]
    for source, message in cases:
        output = tmp_path / f"out_{source.name}"
        result = _convert_cli(f"--from={source}", f"--model_dir={output}")
        assert result.returncode == 2, (source.name, result.stderr[-1500:])
        paragraph = " ".join(result.stderr.split())
        assert message in paragraph and "Traceback" not in paragraph, result.stderr
        assert not output.exists() and not [p for p in os.listdir(tmp_path)
                                             if p.startswith(f".out_{source.name}")]


def test_sharded_files_without_prefixes_or_heads_convert_too(made, tmp_path):
    """What BertModel saves: no `bert.` prefix, no heads, here in two shards with an
    index; the encoder equals the full file's conversion, the heads are reported."""
    tensors = {name[len("bert."):]: value for name, value in made["hf_bert_tensors"].items()
               if name.startswith("bert.")}
    names = sorted(tensors)
    directory = tmp_path / "bert_model"
    published.hf_bert_dir(str(directory), made["cased"], {}, lowercase=False)
    os.remove(directory / "model.safetensors")
    weight_map = {}
    for index, part in enumerate((names[::2], names[1::2])):
        shard = f"model-0000{index + 1}-of-00002.safetensors"
        safetensors.numpy.save_file({n: tensors[n] for n in part}, str(directory / shard))
        weight_map.update({n: shard for n in part})
    with open(directory / "model.safetensors.index.json", "w") as f:
        json.dump({"weight_map": weight_map}, f)
    notes = []
    model, _, _ = convert.import_checkpoint(str(directory), "hf", str(tmp_path / "out"),
                                            report=notes.append)
    full, _, _ = load_trained(str(made["root"] / "tfllm_hf_bert"))
    for a, b in zip(model.backbone.weights, full.backbone.weights, strict=True):
        np.testing.assert_array_equal(a, b)
    assert notes and "predictions" in notes[0] and "seq_relationship" in notes[0]
