"""Loss goes down when BERT and GPT pretrain on real text (Debian's fortunes)."""

import os

import keras
import pytest
import tensorflow as tf

from tfllm.data import job
from tfllm.data.bert_examples import BertExampleConfig
from tfllm.data.filters import filter_config_from_overrides
from tfllm.data.gpt_examples import GptExampleConfig
from tfllm.data.sources import SourceConfig
from tfllm.models import configs
from tfllm.training.config import TrainConfig
from tfllm.training.trainer import Trainer

FORTUNES = "/usr/share/games/fortunes"
pytestmark = pytest.mark.skipif(not os.path.exists(f"{FORTUNES}/science"),
                                reason="Debian's fortunes package is installed by setup.sh")


def _data(tmp_path, kind, examples):
    config = job.JobConfig(
        kind=kind, output_dir=str(tmp_path / "data"),
        source=SourceConfig(patterns=(f"{FORTUNES}/science", f"{FORTUNES}/work"),
                            split="delimiter"),
        filters=filter_config_from_overrides(
            {"min_words": "3", "min_stop_words": "0"},
            ["curly_brace", "top_ngrams", "c4_lines", "fineweb"]),
        examples=examples, vocab_size=800, num_shards=2, eval_fraction=0.1)
    return config.output_dir, job.run(config, report=lambda line: None)


@pytest.mark.parametrize("kind, examples, jit", [
    ("gpt", GptExampleConfig(sequence_length=64), True),
    ("bert", BertExampleConfig(sequence_length=64, max_predictions_per_seq=10), False),
])
def test_pretraining_loss_goes_down(tmp_path, kind, examples, jit):
    data_dir, manifest = _data(tmp_path, kind, examples)
    model_config = configs.override(configs.get_preset(f"{kind}_tiny"), {
        "vocab_size": manifest.tokenizer.vocab_size, "dropout": 0.0})
    keras.utils.set_random_seed(0)
    trainer = Trainer(model_config, TrainConfig(
        data_dir=data_dir, model_dir=str(tmp_path / "model"), train_steps=60,
        global_batch_size=16, learning_rate=3e-3, warmup_steps=5, jit_compile=jit,
        eval_steps=4, log_every=20, checkpoint_every=60, peak_tflops=1.0),
        tf.distribute.OneDeviceStrategy("/cpu:0"), manifest, report=lambda line: None)
    before = trainer.evaluate()
    summary = trainer.train()
    main_loss = "eval/lm_loss" if kind == "gpt" else "eval/mlm_loss"
    assert summary[main_loss] < before[main_loss] - 0.5, (before, summary)
    assert summary["status"] == "completed" and summary["step"] == 60
    assert os.path.exists(tmp_path / "model" / "summary.json")
    assert os.listdir(tmp_path / "model" / "tensorboard")
