"""Converted checkpoints through every tfllm command: classification data with the
published vocabulary, fine-tuning (full and LoRA) from the converted model, export,
serving, generation."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.interop import published
from tfllm.interop import conversion as convert
from tfllm.data import job
from tfllm.data.classify_examples import ClassifyExampleConfig
from tfllm.data.filters import filter_config_from_overrides
from tfllm.data.sources import SourceConfig
from tfllm.export import modules
from tfllm.client import RestClient
from tfllm.export.saved_model import export_module
from tfllm.serving.process import ServerProcess
from tfllm.training.artifacts import load_trained, pretrained_architecture
from tfllm.training.config import TrainConfig
from tfllm.training.trainer import Trainer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FORTUNES = "/usr/share/games/fortunes"
CATEGORIES = ("startrek", "zippy")
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    if not os.path.exists(f"{FORTUNES}/zippy"):
        pytest.skip("Debian's fortunes package is installed by setup.sh")
    root = tmp_path_factory.mktemp("converted")
    rng = np.random.default_rng(4)
    vocabulary = published.wordpiece_vocabulary(True)
    published.hf_bert_dir(str(root / "hf_bert"), vocabulary,
                          published.hf_bert_tensors(len(vocabulary), rng))
    bpe, merges = published.byte_pair_vocabulary()
    published.hf_gpt2_dir(str(root / "hf_gpt2"), bpe, merges,
                          published.hf_gpt2_tensors(len(bpe), rng))
    for name in ("hf_bert", "hf_gpt2"):
        convert.import_checkpoint(str(root / name), "hf", str(root / f"tfllm_{name}"),
                                  report=lambda _: None)
    config = job.JobConfig(
        kind="classify", output_dir=str(root / "data"), tokenizer=str(root / "tfllm_hf_bert"),
        source=SourceConfig(patterns=tuple(f"{FORTUNES}/{c}" for c in CATEGORIES),
                            split="delimiter", label_from_filename=True),
        filters=filter_config_from_overrides(
            {"min_words": "3", "min_stop_words": "0"},
            ["curly_brace", "top_ngrams", "c4_lines", "fineweb"]),
        dedup=job.DedupConfig(lines=False), examples=ClassifyExampleConfig(32), num_shards=1,
        eval_fraction=0.2)
    manifest = job.run(config, report=lambda line: None)
    return root, manifest


def _fine_tune(root, manifest, name, **settings):
    architecture = pretrained_architecture(str(root / "tfllm_hf_bert"))
    Trainer(architecture, TrainConfig(
        data_dir=str(root / "data"), model_dir=str(root / name), train_steps=4,
        global_batch_size=8, eval_steps=1, jit_compile=False, peak_tflops=1.0,
        init_checkpoint=str(root / "tfllm_hf_bert"), **settings),
        tf.distribute.OneDeviceStrategy("/cpu:0"), manifest, report=lambda line: None).train()
    return str(root / name)


def test_classification_data_uses_the_published_vocabulary(converted):
    root, manifest = converted
    assert manifest.tokenizer.vocab_size == len(published.wordpiece_vocabulary(True))
    with open(root / "tfllm_hf_bert" / "tokenizer" / "vocab.txt") as f, \
            open(root / "data" / manifest.tokenizer.file) as g:
        assert f.read() == g.read()


def test_fine_tuned_from_a_converted_model_exports_and_serves(converted):
    root, manifest = converted
    full = _fine_tune(root, manifest, "full")
    lora = _fine_tune(root, manifest, "lora", lora_rank=4)
    assert os.path.exists(os.path.join(lora, "merged.weights.h5"))
    texts = ["Beam me up, Scotty!", "Yow! Are we having fun yet?"]
    base = str(root / "export")
    for name, directory in (("full", full), ("lora", lora)):
        model, labels_manifest, tokenizer = load_trained(directory)
        assert tokenizer.vocab_size == manifest.tokenizer.vocab_size
        export_module(modules.TaskModule(model, tokenizer, labels_manifest.labels),
                      base, name, texts)  # verified in a fresh process before publishing
    pretrained, _, _ = load_trained(str(root / "tfllm_hf_bert"))
    tuned, _, _ = load_trained(full)
    np.testing.assert_raises(AssertionError, np.testing.assert_array_equal,
                             pretrained.backbone.weights[-1], tuned.backbone.weights[-1])
    server = ServerProcess(f"--model_base_path={base}/lora", "--model_name=clf")
    try:
        module = modules.TaskModule(*_classifier(lora))
        expected = module.reference(texts)["serving_default"]["scores"]
        outputs = RestClient(f"127.0.0.1:{server.rest_port}").predict("clf", {"text": texts})
        np.testing.assert_allclose(outputs["scores"], expected, atol=1e-5)
    finally:
        server.stop()


def test_a_fine_tuned_classifier_goes_back_to_hf_and_keras_hub(converted, tmp_path):
    import keras_hub
    import safetensors.numpy

    root, manifest = converted
    tuned = str(root / "full") if os.path.exists(root / "full") else _fine_tune(
        root, manifest, "full")
    model, labels_manifest, _ = load_trained(tuned)
    convert.export_model(tuned, "hf", str(tmp_path / "hf"))
    tensors = safetensors.numpy.load_file(str(tmp_path / "hf" / "model.safetensors"))
    np.testing.assert_array_equal(tensors["classifier.weight"],
                                  np.asarray(model.classifier_head.kernel).T)
    assert convert.weight_difference(
        model, keras_hub.models.Backbone.from_preset(str(tmp_path / "hf"))) == 0.0
    with open(tmp_path / "hf" / "config.json") as f:
        assert list(json.load(f)["id2label"].values()) == labels_manifest.labels
    convert.export_model(tuned, "keras_hub", str(tmp_path / "kh"))
    task = keras_hub.models.BertTextClassifier.from_preset(str(tmp_path / "kh"),
                                                           preprocessor=None)
    ids = np.random.default_rng(5).integers(5, model.config.vocab_size, (2, 10)).astype(np.int32)
    inputs = {"token_ids": ids, "padding_mask": np.ones_like(ids),
              "segment_ids": np.zeros_like(ids)}
    np.testing.assert_allclose(model(inputs), task(inputs), atol=1e-4)


def _classifier(directory):
    model, manifest, tokenizer = load_trained(directory)
    return model, tokenizer, manifest.labels


def test_converted_models_generate_fill_masks_and_export(converted, tmp_path):
    root, _ = converted
    result = subprocess.run(
        [sys.executable, "-m", "tfllm.generate", f"--model_dir={root / 'tfllm_hf_gpt2'}",
         "--prompt=Once upon a time", "--max_new_tokens=5"], cwd=REPO, env=ENV,
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Once upon a time" in result.stdout
    for name in ("tfllm_hf_gpt2", "tfllm_hf_bert"):
        result = subprocess.run(
            [sys.executable, "-m", "tfllm.export", f"--model_dir={root / name}",
             f"--name={name}", f"--export_base={tmp_path}"], cwd=REPO, env=ENV,
            capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-2000:]
        assert f"{name}/1" in result.stdout
    loaded = tf.saved_model.load(str(tmp_path / "tfllm_hf_gpt2" / "1"))
    gpt2, _, tokenizer = load_trained(str(root / "tfllm_hf_gpt2"))
    expected = modules.GeneratorModule(gpt2, tokenizer, 32).reference(["Café au lait"])
    served = loaded.signatures["serving_default"](prompt=tf.constant(["Café au lait"]))
    assert served["text"].numpy().tolist() == expected["serving_default"]["text"].tolist()


def test_a_converted_gpt2_is_evaluated_on_data_made_with_its_tokenizer(converted, tmp_path):
    from tfllm.data.gpt_examples import GptExampleConfig

    root, _ = converted
    config = job.JobConfig(
        kind="gpt", output_dir=str(tmp_path / "data"), tokenizer=str(root / "tfllm_hf_gpt2"),
        source=SourceConfig(patterns=(f"{FORTUNES}/startrek",), split="delimiter"),
        filters=filter_config_from_overrides({"min_words": "3", "min_stop_words": "0"},
                                             ["c4_lines", "fineweb"]),
        examples=GptExampleConfig(sequence_length=24), num_shards=1, eval_fraction=0.2)
    job.run(config, report=lambda line: None)
    for args, code, expected in [([f"--data={tmp_path / 'data'}"], 0, "perplexity"),
                                 ([], 2, "has no data of its own")]:
        result = subprocess.run(
            [sys.executable, "-m", "tfllm.evaluate", f"--model_dir={root / 'tfllm_hf_gpt2'}",
             f"--output_dir={tmp_path / 'eval'}", *args], cwd=REPO, env=ENV,
            capture_output=True, text=True, timeout=300)
        assert result.returncode == code, result.stderr[-2000:]
        assert expected in " ".join((result.stdout + result.stderr).split())


def test_the_fine_tuning_pipeline_starts_from_a_converted_model(converted, tmp_path):
    from pipelines.bert_pretrain_finetune import create_pipeline
    from tfllm.components import LocalRunner

    root, _ = converted
    classify_data = ["--kind=classify", f"--input={FORTUNES}/startrek,{FORTUNES}/zippy",
                     "--label_from_filename", "--text_split=delimiter", "--delimiter=%",
                     "--filter_overrides=min_words=3,min_stop_words=0",
                     "--disable_filters=curly_brace,top_ngrams,c4_lines,fineweb",
                     "--nodedup_lines",
                     "--sequence_length=32", "--eval_fraction=0.2", "--num_shards=1"]
    finetune = ["--preset=bert_tiny", "--train_steps=4", "--global_batch_size=8",
                "--eval_steps=1", "--nojit_compile", "--peak_tflops=1"]
    pipeline = create_pipeline(str(tmp_path / "pipeline"), str(tmp_path / "export"), [], [],
                               classify_data, finetune, baseline=None, min_examples=10,
                               start_from=str(root / "tfllm_hf_bert"))
    lines = []
    produced, summary = LocalRunner(log=lines.append).run(pipeline)
    states = {component: state for component, state, _ in summary}
    assert "Pretrainer" not in states and states["ModelImporter"] == "ran", states
    assert set(states.values()) == {"ran"}, "\n".join(lines[-30:])
    assert any("architecture from --init_checkpoint" in line for line in lines)
    assert os.listdir(tmp_path / "export" / "bert_classifier") == ["1"]
    tokenizer = produced["ModelImporter"]["tokenizer"]
    assert tokenizer.properties["vocab_size"] == len(published.wordpiece_vocabulary(True))
