"""`python -m tfllm.attention --model_dir artifacts/gpt_tiny --text "..."`: attention heatmaps.

Saves one PNG per layer (a panel per head) showing which tokens each token attends to.
"""

import os

import numpy as np
from absl import flags

from tfllm import cli
from tfllm.errors import ConfigError
from tfllm.evaluation.attention import attention_maps, heatmap_png
from tfllm.training.artifacts import load_trained

flags.DEFINE_string("model_dir", None, "A directory written by tfllm.train.")
flags.DEFINE_string("text", "", "The text to inspect.")
flags.DEFINE_string("output_dir", "", "Where the PNGs go (default MODEL_DIR/attention).")
FLAGS = flags.FLAGS


def main(argv):
    if not FLAGS.model_dir or not FLAGS.text.strip():
        raise ConfigError("--model_dir and a non-empty --text are required.")
    model, _, tokenizer = load_trained(FLAGS.model_dir)
    ids = tokenizer.tokenize([FLAGS.text])[0]
    special = tokenizer.special_ids
    if "cls" in special:
        ids = [special["cls"], *ids, special["sep"]]
    context = model.config.max_sequence_length
    if len(ids) > context:
        raise ConfigError(f"--text is {len(ids)} tokens; the model's context is {context}.")
    token_ids = np.array([ids], np.int32)
    features = {"token_ids": token_ids, "padding_mask": np.ones_like(token_ids),
                "segment_ids": np.zeros_like(token_ids)}
    pieces = [tokenizer.keras_tokenizer.id_to_token(i) for i in ids]
    output_dir = FLAGS.output_dir or os.path.join(FLAGS.model_dir, "attention")
    os.makedirs(output_dir, exist_ok=True)
    for layer, scores in enumerate(attention_maps(model.backbone, features)):
        path = heatmap_png(scores[0], pieces, f"layer {layer}",
                           os.path.join(output_dir, f"layer_{layer:02d}.png"))
        print(path)


if __name__ == "__main__":
    cli.run(main)
