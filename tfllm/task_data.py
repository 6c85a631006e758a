"""`python -m tfllm.task_data --output_dir=artifacts/tasks`: the WordNet task files the
shipped fine-tuning configs read (configs/data_similarity.flags, data_pairs.flags,
data_tagging.flags, data_qa.flags).

See `tfllm.data.task_corpora` for what each file holds.
"""

import os
import random

from absl import flags

from tfllm import cli
from tfllm.data import task_corpora
from tfllm.errors import ConfigError

flags.DEFINE_string("output_dir", "artifacts/tasks", "Where the task files go.")
flags.DEFINE_integer("max_examples", 6000, "Examples (sentences) per task (0: all).")
flags.DEFINE_integer("seed", 0, "Seed of the sampling and word replacements.")
FLAGS = flags.FLAGS


def _sample(items, rng):
    """`items` shuffled, then cut to --max_examples (0: all)."""
    rng.shuffle(items)
    return items[:FLAGS.max_examples] if FLAGS.max_examples else items


def main(argv):
    if len(argv) > 1:
        raise ConfigError(f"Unexpected arguments: {' '.join(argv[1:])}.")
    rng = random.Random(FLAGS.seed)
    examples = _sample(task_corpora.wordnet_examples(), rng)
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    pairs = os.path.join(FLAGS.output_dir, "paraphrase.csv")
    task_corpora.write_paraphrase_csv(pairs, task_corpora.paraphrase_rows(examples, FLAGS.seed))
    similarity = os.path.join(FLAGS.output_dir, "similarity.tsv")
    task_corpora.write_similarity_tsv(similarity,
                                      task_corpora.similarity_rows(examples, FLAGS.seed))
    sentences = _sample(task_corpora.fortune_sentences(), rng)
    tagged = os.path.join(FLAGS.output_dir, "entities.conll")
    task_corpora.write_conll(tagged, task_corpora.tagging_rows(sentences, FLAGS.seed))
    definitions = _sample(task_corpora.wordnet_definitions(), rng)
    squad = os.path.join(FLAGS.output_dir, "definitions.json")
    task_corpora.write_squad(squad, task_corpora.qa_articles(definitions, FLAGS.seed))
    print(f"{len(examples):,} WordNet examples -> {similarity} (regression) and {pairs} "
          f"(pair classification); {len(sentences):,} fortunes -> {tagged} (tagging); "
          f"{len(definitions):,} WordNet definitions -> {squad} (question answering)")


if __name__ == "__main__":
    cli.run(main)
