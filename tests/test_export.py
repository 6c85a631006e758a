"""Classifier export: in-graph tokenization reproduces the Keras model; layout is TF Serving's."""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tfllm.export.modules import TaskModule
from tfllm.export.saved_model import export_module
from tfllm.serving.layout import CLASSIFY_METHOD, WARMUP_FILE
from tfllm.text.packing import pack
from tfllm.training.artifacts import load_trained

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORTUNES = "/usr/share/games/fortunes"
TEXTS = ["Computers make very fast, very accurate mistakes.",
         "Beam me up, Scotty! There is no intelligent life down here."]


@pytest.fixture(scope="module")
def classifier_dir(tmp_path_factory):
    if not os.path.exists(f"{FORTUNES}/zippy"):
        pytest.skip("Debian's fortunes package is installed by setup.sh")
    import keras

    from tests.training.test_real_fine_tuning import CATEGORIES
    from tfllm.data import job
    from tfllm.data.classify_examples import ClassifyExampleConfig
    from tfllm.data.sources import SourceConfig
    from tfllm.models import configs
    from tfllm.training.config import TrainConfig
    from tfllm.training.trainer import Trainer

    root = tmp_path_factory.mktemp("export")
    config = job.JobConfig(
        kind="classify", output_dir=str(root / "data"), vocab_size=500, num_shards=1,
        source=SourceConfig(patterns=tuple(f"{FORTUNES}/{c}" for c in CATEGORIES),
                            split="delimiter", label_from_filename=True),
        examples=ClassifyExampleConfig(48), eval_fraction=0.2,
        filters=job.FilterConfig(min_words=3, min_stop_words=0,
                                 disabled=("c4_lines", "fineweb")))
    manifest = job.run(config, report=lambda line: None)
    keras.utils.set_random_seed(0)
    model_config = configs.override(configs.get_preset("bert_tiny"), {
        "vocab_size": manifest.tokenizer.vocab_size, "max_sequence_length": 48})
    Trainer(model_config, TrainConfig(data_dir=config.output_dir, model_dir=str(root / "model"),
                                      train_steps=5, global_batch_size=16, jit_compile=False,
                                      eval_steps=1, peak_tflops=1.0),
            tf.distribute.OneDeviceStrategy("/cpu:0"), manifest,
            report=lambda line: None).train()
    return str(root / "model")


def test_export_reproduces_the_keras_model_and_writes_warmup(classifier_dir, tmp_path):
    model, manifest, tokenizer = load_trained(classifier_dir)
    module = TaskModule(model, tokenizer, manifest.labels)
    path = export_module(module, str(tmp_path), "clf", TEXTS)
    assert path == str(tmp_path / "clf" / "1")
    assert os.path.exists(os.path.join(path, WARMUP_FILE))
    loaded = tf.saved_model.load(path)
    assert set(loaded.signatures) == {"serving_default", "classify", "token_ids"}
    outputs = loaded.signatures["serving_default"](text=tf.constant(TEXTS))
    # Independent path: Python tokenization + the example encoder + the Keras model.
    ids, masks, _ = zip(*(pack([t], 48, tokenizer.special_ids)
                          for t in tokenizer.tokenize(TEXTS)))
    ids, masks = np.array(ids, np.int32), np.array(masks, np.int32)
    expected = tf.nn.softmax(model({"token_ids": ids, "padding_mask": masks,
                                    "segment_ids": np.zeros_like(ids)}, training=False))
    np.testing.assert_allclose(outputs["scores"], expected, atol=1e-5)
    labels = [manifest.labels[i] for i in np.argmax(expected, -1)]
    assert [b.decode() for b in outputs["label"].numpy()] == labels
    example = tf.train.Example(features=tf.train.Features(feature={"text": tf.train.Feature(
        bytes_list=tf.train.BytesList(value=[TEXTS[0].encode()]))})).SerializeToString()
    np.testing.assert_allclose(loaded.signatures["classify"](inputs=tf.constant([example]))[
        "scores"], expected[:1], atol=1e-5)


def test_export_command_adds_versions(classifier_dir, tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for version in (1, 2):
        result = subprocess.run([sys.executable, "-m", "tfllm.export",
                                 f"--model_dir={classifier_dir}", "--name=bert_classifier",
                                 f"--export_base={tmp_path}"], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        assert f"bert_classifier/{version}" in result.stdout
    assert sorted(os.listdir(tmp_path / "bert_classifier")) == ["1", "2"]
    result = subprocess.run([sys.executable, "-m", "tfllm.export", f"--model_dir={classifier_dir}",
                             "--name=../escape", f"--export_base={tmp_path}"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "is not allowed" in result.stderr


def test_saved_model_cli_lists_signatures_with_dtypes_and_shapes(classifier_dir, tmp_path):
    model, manifest, tokenizer = load_trained(classifier_dir)
    path = export_module(TaskModule(model, tokenizer, manifest.labels), str(tmp_path),
                         "clf", TEXTS)
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    shown = subprocess.run([cli, "show", "--all", "--dir", path], capture_output=True,
                           text=True, timeout=300).stdout
    for line in ("signature_def['classify']", "Method name is: " + CLASSIFY_METHOD,
                 "inputs['text'] tensor_info:", "dtype: DT_STRING", "shape: (-1, -1)",
                 "outputs['scores'] tensor_info:", "dtype: DT_FLOAT"):
        assert line in shown, line


def test_a_model_that_fails_verification_is_not_published(classifier_dir, tmp_path):
    from tfllm.errors import ConfigError

    model, manifest, tokenizer = load_trained(classifier_dir)
    module = TaskModule(model, tokenizer, manifest.labels)
    honest = module.reference
    module.reference = lambda texts: {"serving_default": {  # as if the graph had diverged
        "scores": honest(texts)["serving_default"]["scores"] + 0.1}}
    with pytest.raises(ConfigError, match="failed verification in a fresh process"):
        export_module(module, str(tmp_path), "clf", TEXTS)
    assert os.listdir(tmp_path / "clf") == []


@pytest.mark.parametrize("kind, family", [("gpt", "gpt"), ("bert", "bert"), ("gpt", "llama")])
def test_export_command_for_pretrained_models(tmp_path, kind, family):
    """Also a Llama-family decoder trained on GPT data: its generation signatures are
    checked against the Keras model in a fresh process, as GPT's."""
    from tests.training.test_real_corpus import FORTUNES, _data
    from tfllm.data.bert_examples import BertExampleConfig
    from tfllm.data.gpt_examples import GptExampleConfig
    from tfllm.models import configs
    from tfllm.training.config import TrainConfig
    from tfllm.training.trainer import Trainer

    if not os.path.exists(f"{FORTUNES}/science"):
        pytest.skip("Debian's fortunes package is installed by setup.sh")
    examples = GptExampleConfig(sequence_length=32) if kind == "gpt" else BertExampleConfig(
        sequence_length=32, max_predictions_per_seq=5)
    data_dir, manifest = _data(tmp_path, kind, examples)
    config = configs.override(configs.get_preset(f"{family}_tiny"), {
        "vocab_size": manifest.tokenizer.vocab_size, "max_sequence_length": 32})
    Trainer(config, TrainConfig(data_dir=data_dir, model_dir=str(tmp_path / "model"),
                                train_steps=2, global_batch_size=8, jit_compile=False,
                                eval_steps=1, peak_tflops=1.0),
            tf.distribute.OneDeviceStrategy("/cpu:0"), manifest,
            report=lambda line: None).train()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-m", "tfllm.export",
                             f"--model_dir={tmp_path / 'model'}", f"--name={family}",
                             f"--export_base={tmp_path / 'export'}", "--max_new_tokens=4"],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    signatures = {"gpt": "serving_default, generate", "bert": "serving_default, fill_mask"}
    assert f"signatures: {signatures[kind]}" in result.stdout
    assert os.path.exists(tmp_path / "export" / family / "1" / WARMUP_FILE)
    if family == "llama":  # int8: a quarter of the bytes, still verified in a fresh process
        quantized = subprocess.run(
            [sys.executable, "-m", "tfllm.export", f"--model_dir={tmp_path / 'model'}",
             "--name=llama_int8", f"--export_base={tmp_path / 'export'}",
             "--max_new_tokens=4", "--quantize=int8"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert quantized.returncode == 0, quantized.stderr[-2000:]
        assert "to int8 (int8)" in quantized.stdout

        def variable_bytes(name):
            directory = tmp_path / "export" / name / "1" / "variables"
            return sum(f.stat().st_size for f in directory.iterdir())

        assert variable_bytes("llama_int8") <= 0.35 * variable_bytes("llama")
        reader = tf.train.load_checkpoint(
            str(tmp_path / "export" / "llama_int8" / "1" / "variables" / "variables"))
        assert tf.int8 in reader.get_variable_to_dtype_map().values()
        refused = subprocess.run(
            [sys.executable, "-m", "tfllm.export", f"--model_dir={tmp_path / 'model'}",
             "--name=x", f"--export_base={tmp_path / 'export'}", "--quantize=int4"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        assert refused.returncode == 2 and "--quantize must be one of" in refused.stderr
        assert not os.path.exists(tmp_path / "export" / "x")
