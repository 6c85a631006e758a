"""int8 serving against float32 in one run: SavedModel bytes, resident memory of a
process serving it, decode tokens/s of the exported `generate` signature, and held-out
perplexity.

    python -m benchmarks.quantize [--preset=llama_small --train_steps=300]

A decoder is first trained on the fortunes (the data job's GPT examples), so that
perplexity means something; then it is exported as float32, `int8` (Keras's int8:
weights per channel, activations per token) and `int8_weights` (weights only), each
reloaded in a fresh process for memory and speed. Targets (issue 37): int8 SavedModel
<= 0.35x float32's bytes with perplexity within 2%, int8 decode tokens/s >= float32's.
"""

import json
import os
import subprocess
import sys
import tempfile

import keras
import tensorflow as tf
from absl import app, flags

from benchmarks import save
from tfllm import tasks
from tfllm.data import job
from tfllm.data.filters import filter_config_from_overrides
from tfllm.data.gpt_examples import GptExampleConfig
from tfllm.data.sources import SourceConfig
from tfllm.export import quantization
from tfllm.export.saved_model import export_module
from tfllm.models import configs
from tfllm.training.artifacts import load_trained
from tfllm.training.config import TrainConfig
from tfllm.training.trainer import Trainer

flags.DEFINE_string("preset", "llama_small", "Decoder preset trained for the comparison.")
flags.DEFINE_integer("train_steps", 300, "Training steps before the comparison.")
flags.DEFINE_integer("sequence_length", 128, "Training and evaluation window.")
flags.DEFINE_integer("vocab_size", 4000, "Tokenizer size.")
flags.DEFINE_integer("new", 64, "Tokens generated per prompt when timing.")
flags.DEFINE_list("batches", ["1", "4"], "Prompts per generate call when timing.")
flags.DEFINE_string("output", "benchmarks/results/quantize.json", "Where results go.")
FLAGS = flags.FLAGS
FORTUNES = "/usr/share/games/fortunes"
PROMPTS = ["The meaning of life is", "Computers are", "A wise man once said",
           "Never trust a"]
# Run in a fresh process per SavedModel: resident memory after loading, then tokens/s.
_MEASURE = """
import json, resource, sys, time
import tensorflow as tf
import tensorflow_text  # noqa: F401  (the tokenizer's ops)
path, new, batches, prompts = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","), sys.argv[4:]
generate = tf.saved_model.load(path).signatures["generate"]
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
rates = {}
for batch in map(int, batches):
    inputs = dict(prompt=tf.constant((prompts * batch)[:batch]),
                  max_new_tokens=tf.fill([batch], new), temperature=tf.zeros([batch]),
                  top_k=tf.zeros([batch], tf.int32), top_p=tf.ones([batch]),
                  seed=tf.zeros([batch], tf.int32))
    generate(**inputs)
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        tokens = int(tf.reduce_sum(generate(**inputs)["num_tokens"]))
        best = max(best, tokens / (time.perf_counter() - start))
    rates[batch] = best
print(json.dumps({"peak_rss_bytes_after_load": rss, "tokens_per_second": rates}))
"""


def _train(scratch):
    data = job.JobConfig(
        kind="gpt", output_dir=os.path.join(scratch, "data"),
        source=SourceConfig(patterns=(f"{FORTUNES}/[a-m]*",), split="delimiter"),
        filters=filter_config_from_overrides({"min_words": "3", "min_stop_words": "0"},
                                             ["curly_brace", "top_ngrams", "c4_lines",
                                              "fineweb"]),
        examples=GptExampleConfig(sequence_length=FLAGS.sequence_length),
        vocab_size=FLAGS.vocab_size, num_shards=2, eval_fraction=0.05)
    manifest = job.run(data, report=lambda line: None)
    config = configs.override(configs.get_preset(FLAGS.preset), {
        "vocab_size": manifest.tokenizer.vocab_size,
        "max_sequence_length": FLAGS.sequence_length})
    keras.utils.set_random_seed(0)
    model_dir = os.path.join(scratch, "model")
    summary = Trainer(config, TrainConfig(
        data_dir=data.output_dir, model_dir=model_dir, train_steps=FLAGS.train_steps,
        global_batch_size=16, learning_rate=2e-3, warmup_steps=30, eval_steps=8,
        log_every=100, checkpoint_every=FLAGS.train_steps, peak_tflops=1.0),
        tf.distribute.OneDeviceStrategy("/cpu:0"), manifest, report=print).train()
    return data.output_dir, model_dir, summary


def _bytes(directory):
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(directory) for name in names)


def _measure(path):
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, path, str(FLAGS.new), ",".join(FLAGS.batches),
         *PROMPTS], capture_output=True, text=True, check=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv):
    del argv
    scratch = tempfile.mkdtemp(prefix="quantize_")
    data_dir, model_dir, summary = _train(scratch)
    results = {"preset": FLAGS.preset, "train_steps": FLAGS.train_steps,
               "trained_eval_loss": summary.get("eval/lm_loss"), "models": {}}
    for mode in ("float32", *quantization.MODES):
        model, manifest, tokenizer = load_trained(model_dir)
        if mode != "float32":
            quantization.quantize(model, mode)
        task = tasks.for_manifest(manifest)
        evaluation = task.evaluate(model, data_dir, "eval", 16)
        module = task.serving_module(model, tokenizer, max_new_tokens=8)
        path = export_module(module, os.path.join(scratch, "export"), mode, PROMPTS)
        measured = _measure(path)
        results["models"][mode] = {
            "saved_model_bytes": _bytes(path),
            "variables_bytes": _bytes(os.path.join(path, "variables")),
            "perplexity": round(evaluation["model"]["perplexity"], 4),
            "bigram_perplexity": round(evaluation["bigram"]["perplexity"], 2),
            **measured}
        print(mode, json.dumps(results["models"][mode]), flush=True)
    base = results["models"]["float32"]
    for mode in quantization.MODES:
        row = results["models"][mode]
        row["bytes_over_float32"] = round(row["saved_model_bytes"] / base["saved_model_bytes"], 3)
        row["variables_bytes_over_float32"] = round(
            row["variables_bytes"] / base["variables_bytes"], 3)
        row["perplexity_over_float32"] = round(row["perplexity"] / base["perplexity"], 4)
        row["rss_over_float32"] = round(row["peak_rss_bytes_after_load"]
                                        / base["peak_rss_bytes_after_load"], 3)
        row["tokens_per_second_over_float32"] = {
            batch: round(rate / base["tokens_per_second"][batch], 3)
            for batch, rate in row["tokens_per_second"].items()}
        row["met"] = {
            "bytes_at_most_0.35x": row["bytes_over_float32"] <= 0.35,
            "perplexity_within_2%": abs(row["perplexity_over_float32"] - 1) <= 0.02,
            "decode_at_least_float32": all(
                ratio >= 1.0 for ratio in row["tokens_per_second_over_float32"].values())}
    save(FLAGS.output, results)
    for mode in quantization.MODES:
        row = results["models"][mode]
        print(f"{mode}: {row['bytes_over_float32']}x bytes (variables "
              f"{row['variables_bytes_over_float32']}x), perplexity "
              f"{row['perplexity']} vs {base['perplexity']} "
              f"({row['perplexity_over_float32']}x), resident memory "
              f"{row['rss_over_float32']}x, decode tokens/s "
              f"{row['tokens_per_second_over_float32']} x float32; met: {row['met']}")


if __name__ == "__main__":
    app.run(main)
