"""GPT pretraining: next-token prediction (kind `gpt`).

An example is sequence_length + 1 tokens: inputs are [:-1], targets [1:]. Consecutive
windows overlap by one token, so every token is a target exactly once.
"""

import numpy as np
import tensorflow as tf

from tfllm import tasks
from tfllm.data.gpt_examples import GptExampleConfig, MakeGptExamples
from tfllm.evaluation import baselines
from tfllm.export.modules import GeneratorModule
from tfllm.models import DECODER_FAMILIES, build_pretraining_model
from tfllm.tasks.base import Task, TokenScores, correct, cross_entropy, first_words


@tasks.register
class CausalLanguageModeling(Task):
    """The loss sum of every real target token, divided by their number."""

    kind = "gpt"
    losses = ("lm",)
    examples_config = GptExampleConfig
    tokenizer_family = "gpt"
    model_families = DECODER_FAMILIES
    converted_samples = ("The capital of France is", "Once upon a time")

    def example_maker(self, examples, tokenizer, labels, num_documents):
        return MakeGptExamples(examples, tokenizer.path, tokenizer.special_ids, num_documents)

    def feature_schema(self, examples):
        return {"input_ids": ("int64", examples.sequence_length + 1),
                "input_mask": ("int64", examples.sequence_length + 1)}

    @property
    def sequence_length(self):
        return self.manifest.schema["input_ids"][1] - 1

    def inputs(self, parsed, masker=None):
        ids, mask = parsed["input_ids"], parsed["input_mask"]
        return ({"token_ids": ids[:, :-1], "padding_mask": mask[:, :-1]},
                {"lm_ids": ids[:, 1:], "lm_weights": tf.cast(mask[:, 1:], tf.float32)})

    def build_model(self, config):
        return build_pretraining_model(config)

    def counts(self, labels):
        return {"lm": tf.reduce_sum(labels["lm_weights"])}

    def sums(self, outputs, labels):
        weights = labels["lm_weights"]
        loss = cross_entropy(labels["lm_ids"], outputs) * weights
        return ({"lm": tf.reduce_sum(loss)},
                {"lm": tf.reduce_sum(correct(labels["lm_ids"], outputs) * weights)})

    def eval_metrics(self, metrics):
        return {"eval/perplexity": float(np.exp(min(metrics["eval/lm_loss"], 50.0)))}

    def evaluate(self, model, data_dir, split, batch_size, **options):
        """Loss, accuracy and perplexity beside a bigram model of the training split
        (add-one smoothed) on the same windows."""
        scores = TokenScores()
        eval_rows = []
        for features, labels in self.batches(data_dir, split, batch_size):
            scores.add(labels["lm_ids"], model(features, training=False), labels["lm_weights"])
            eval_rows.extend(zip(features["token_ids"].numpy(),
                                 features["padding_mask"].numpy()))
        train_rows = [row for features, _ in self.batches(data_dir, "train", batch_size)
                      for row in zip(features["token_ids"].numpy(),
                                     features["padding_mask"].numpy())]
        metrics = scores.metrics()
        metrics["perplexity"] = float(np.exp(metrics["loss"]))
        return {"model": metrics, "bigram": {"perplexity": baselines.bigram_perplexity(
            train_rows, eval_rows, self.manifest.tokenizer.vocab_size)}}

    def serving_module(self, model, tokenizer, max_new_tokens=32, chat_format=None, **options):
        return GeneratorModule(model, tokenizer, max_new_tokens, chat_format)

    def sample_inputs(self, data_dir, count=4):
        """The first words of a few cleaned documents, as prompts."""
        return first_words(data_dir, count, 4)
