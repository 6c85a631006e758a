"""Training throughput and MFU: tfllm's GPT and BERT next to keras-hub's GPT2Backbone
and BertBackbone at the identical configuration, precision and XLA setting, in the
same run, plus the cost of k=4 gradient accumulation in tfllm's trainer.

    python -m benchmarks.train [--layers=4 --width=256 --seq=128 --batch=16 --vocab=8192]

Every number is tokens/s through a compiled custom step (never `fit` on an
infinite dataset, which runs at a fixed ~0.5 s/step here); MFU divides
6*N*tokens-style FLOPs (tfllm.models.stats) by a matmul peak measured in the
same run. Only same-run ratios are meaningful on a noisy machine.
"""

import json
import logging
import os
import tempfile
import time

import apache_beam as beam
import keras
import keras_hub
import numpy as np
import tensorflow as tf
from absl import app, flags

from benchmarks import save
from tfllm.data import schema
from tfllm.data.write import WriteTFRecords
from tfllm.models import build_pretraining_model, configs
from tfllm.models.stats import model_stats
from tfllm.training import inputs
from tfllm.training.config import TrainConfig
from tfllm.training.monitoring import measure_peak_flops
from tfllm.training.trainer import Trainer

flags.DEFINE_integer("layers", 4, "Transformer blocks.")
flags.DEFINE_integer("width", 256, "Hidden size.")
flags.DEFINE_integer("seq", 128, "Sequence length.")
flags.DEFINE_integer("batch", 16, "Examples per step.")
flags.DEFINE_integer("vocab", 8192, "Vocabulary size.")
flags.DEFINE_integer("steps", 20, "Timed steps per model.")
flags.DEFINE_string("precision", "float32", "float32, mixed_bfloat16 or mixed_float16.")
flags.DEFINE_boolean("jit_compile", True, "XLA for every side.")
flags.DEFINE_string("output", "benchmarks/results/train.json", "Where results go.")
FLAGS = flags.FLAGS


def _config(family):
    return configs.override(configs.get_preset(f"{family}_small"), {
        "vocab_size": FLAGS.vocab, "hidden_size": FLAGS.width, "num_layers": FLAGS.layers,
        "num_heads": max(1, FLAGS.width // 64), "intermediate_size": 4 * FLAGS.width,
        "max_sequence_length": FLAGS.seq, "dtype": FLAGS.precision})


def _batch(family, rng):
    ids = rng.integers(5, FLAGS.vocab, (FLAGS.batch, FLAGS.seq)).astype("int32")
    features = {"token_ids": ids, "padding_mask": np.ones_like(ids)}
    if family == "gpt":
        return features, {"lm_ids": np.roll(ids, -1, axis=1)}
    masked = FLAGS.seq * 15 // 100
    features.update(segment_ids=np.zeros_like(ids),
                    mask_positions=np.tile(np.arange(masked, dtype="int32") * 6 % FLAGS.seq,
                                           (FLAGS.batch, 1)))
    return features, {"mlm_ids": ids[:, :masked], "nsp_labels": np.zeros(FLAGS.batch, "int32")}


def _keras_hub_model(family, config):
    """keras-hub's own backbones with the same heads, as a user would assemble them."""
    dtype = config.dtype
    if family == "gpt":
        backbone = keras_hub.models.GPT2Backbone(
            vocabulary_size=config.vocab_size, num_layers=config.num_layers,
            num_heads=config.num_heads, hidden_dim=config.hidden_size,
            intermediate_dim=config.intermediate_size, dropout=config.dropout,
            max_sequence_length=config.max_sequence_length, dtype=dtype)
        inputs = backbone.input
        logits = backbone.token_embedding(backbone(inputs), reverse=True)
        return keras.Model(inputs, keras.layers.Activation("linear", dtype="float32")(logits))
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=config.vocab_size, num_layers=config.num_layers,
        num_heads=config.num_heads, hidden_dim=config.hidden_size,
        intermediate_dim=config.intermediate_size, dropout=config.dropout,
        max_sequence_length=config.max_sequence_length, dtype=dtype)
    inputs = {**backbone.input,
              "mask_positions": keras.Input((None,), dtype="int32", name="mask_positions")}
    outputs = backbone({k: inputs[k] for k in backbone.input})
    mlm = keras_hub.layers.MaskedLMHead(token_embedding=backbone.token_embedding,
                                        intermediate_activation="gelu", dtype=dtype)(
        outputs["sequence_output"], mask_positions=inputs["mask_positions"])
    nsp = keras.layers.Dense(2, dtype=dtype)(outputs["pooled_output"])
    to32 = keras.layers.Activation("linear", dtype="float32")
    return keras.Model(inputs, {"mlm_logits": to32(mlm), "nsp_logits": to32(nsp)})


def _tokens_per_second(model, family, batch):
    optimizer = keras.optimizers.AdamW(1e-4)
    xent = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(jit_compile=FLAGS.jit_compile)
    def step(features, labels):
        with tf.GradientTape() as tape:
            out = model(features, training=True)
            if family == "gpt":
                loss = xent(labels["lm_ids"], out)
            else:
                loss = xent(labels["mlm_ids"], out["mlm_logits"]) + xent(
                    labels["nsp_labels"], out["nsp_logits"])
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    features, labels = batch
    step(features, labels).numpy()
    start = time.perf_counter()
    for _ in range(FLAGS.steps):
        loss = step(features, labels)
    loss.numpy()
    return FLAGS.steps * FLAGS.batch * FLAGS.seq / (time.perf_counter() - start)


def _accumulation_cost(config):
    """tfllm's trainer at the same global batch with k=1 and k=4 (tokens/s)."""
    directory = tempfile.mkdtemp()
    features = schema.feature_lengths("gpt", FLAGS.seq)
    rng = np.random.default_rng(0)
    rows = [(f"k{i}", {"input_ids": rng.integers(5, FLAGS.vocab, FLAGS.seq + 1).tolist(),
                       "input_mask": [1] * (FLAGS.seq + 1)}) for i in range(FLAGS.batch * 8)]
    for split in ("train", "eval"):
        with beam.Pipeline() as pipeline:
            _ = pipeline | beam.Create(rows) | WriteTFRecords(directory, split, 1, features)
    manifest = {"kind": "gpt", "schema": schema.to_manifest(features),
                "tokenizer": {"vocab_size": FLAGS.vocab},
                "splits": {s: {"files": [f"{s}-00000-of-00001.tfrecord.gz"]}
                           for s in ("train", "eval")}}
    with open(os.path.join(directory, "manifest.json"), "w") as f:
        json.dump(manifest, f)
    rates = {}
    for k in (1, 4):
        trainer = Trainer(config, TrainConfig(
            data_dir=directory, model_dir=os.path.join(directory, f"k{k}"),
            global_batch_size=FLAGS.batch, grad_accum_steps=k, jit_compile=FLAGS.jit_compile,
            peak_tflops=1.0), tf.distribute.OneDeviceStrategy("/cpu:0"), manifest,
            report=lambda line: None)
        iterator = inputs.train_iterator(trainer.strategy, trainer.config, 0, {})
        trainer._train_step(iterator)["loss"].numpy()
        start = time.perf_counter()
        for _ in range(FLAGS.steps):
            result = trainer._train_step(iterator)
        result["loss"].numpy()
        rates[k] = FLAGS.steps * FLAGS.batch * FLAGS.seq / (time.perf_counter() - start)
    return rates


def main(argv):
    del argv
    logging.getLogger("apache_beam").setLevel(logging.ERROR)
    rng = np.random.default_rng(0)
    peak = measure_peak_flops(2048, 4)
    results = {"config": {name: FLAGS[name].value for name in (
        "layers", "width", "seq", "batch", "vocab", "precision", "jit_compile")},
        "peak_gflops": round(peak / 1e9, 1)}
    for family in ("gpt", "bert"):
        config = _config(family)
        ours = build_pretraining_model(config)
        flops = model_stats(ours, FLAGS.seq).training_flops_per_token
        batch = _batch(family, rng)
        theirs = _keras_hub_model(family, config)
        assert ours.count_params() == theirs.count_params() or family == "bert", (
            ours.count_params(), theirs.count_params())
        tfllm_rate = _tokens_per_second(ours, family, batch)
        hub_rate = _tokens_per_second(theirs, family, batch)
        results[family] = {
            "tfllm_tokens_per_second": round(tfllm_rate), "keras_hub_tokens_per_second":
            round(hub_rate), "tfllm_over_keras_hub": round(tfllm_rate / hub_rate, 3),
            "tfllm_mfu": round(tfllm_rate * flops / peak, 3),
            "keras_hub_mfu": round(hub_rate * flops / peak, 3),
            "parameters": {"tfllm": ours.count_params(), "keras_hub": theirs.count_params()}}
        print(f"{family}: tfllm {tfllm_rate:,.0f} tok/s (MFU {tfllm_rate * flops / peak:.0%}), "
              f"keras-hub {hub_rate:,.0f} tok/s (MFU {hub_rate * flops / peak:.0%}), "
              f"ratio {tfllm_rate / hub_rate:.2f}")
    rates = _accumulation_cost(_config("gpt"))
    results["accumulation"] = {"k1_tokens_per_second": round(rates[1]),
                               "k4_tokens_per_second": round(rates[4]),
                               "k4_over_k1": round(rates[4] / rates[1], 3)}
    print(f"tfllm trainer, same global batch: k=1 {rates[1]:,.0f} tok/s, k=4 {rates[4]:,.0f} "
          f"tok/s (x{rates[4] / rates[1]:.2f}); matmul peak {peak / 1e9:,.0f} GFLOP/s")
    save(FLAGS.output, results)


if __name__ == "__main__":
    app.run(main)
