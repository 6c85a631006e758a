"""`python -m tfllm.data.task_corpora --output_dir=artifacts/tasks`: labelled task data
built offline from text Debian ships, in the formats users bring.

- `wordnet_pairs.csv` (sentence-pair classification, CSV with quoting): a WordNet
  lemma with its definition, and a usage example, `match` when the example is the
  synset's own (and uses the lemma), `no_match` when it belongs to another synset.
- `similarity.tsv` (regression, GLUE's STS-B layout): an example sentence and a copy
  with some words replaced, scored 0-5 by the share of words kept.

Neither can be solved from the words of one text alone: both need the two texts
compared, which a bag-of-words baseline over the concatenated pair cannot do.
"""

import csv
import os
import random
import re

from absl import flags

from tfllm import cli
from tfllm.errors import ConfigError

WORDNET = "/usr/share/wordnet"
_EXAMPLE = re.compile(r'"([^"]{20,200})"')


def wordnet_examples(wordnet_dir=WORDNET):
    """[("lemma: definition", usage example)] of every synset whose gloss quotes an
    example using its first lemma, in file order. Hand-written: nothing in this stack reads WordNet's
    database without a download (nltk's reader needs its own corpus)."""
    pairs = []
    for part in ("noun", "verb", "adj", "adv"):
        path = os.path.join(wordnet_dir, f"data.{part}")
        if not os.path.exists(path):
            raise ConfigError(f"{path} is missing: install Debian's wordnet-base "
                              "(scripts/setup.sh does).")
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if not line[:1].isdigit() or " | " not in line:
                    continue
                head, gloss = line.split(" | ", 1)
                lemma = re.sub(r"\([a-z]+\)$", "", head.split()[4]).replace("_", " ")
                definition = gloss.split(";")[0].strip()
                for example in _EXAMPLE.findall(gloss):
                    if re.search(rf"\b{re.escape(lemma)}\b", example, re.IGNORECASE):
                        pairs.append((f"{lemma}: {definition}", example.strip()))
                        break
    return pairs


def pair_matching_rows(examples, seed=0):
    """(gloss, example, match|no_match), balanced: each gloss once with its own example
    and once with another synset's example that does not contain its lemma."""
    rng = random.Random(seed)
    rows = []
    for gloss, example in examples:
        lemma = gloss.split(":")[0]
        rows.append((gloss, example, "match"))
        while True:
            other_gloss, other = examples[rng.randrange(len(examples))]
            if other_gloss != gloss and not re.search(rf"\b{re.escape(lemma)}\b", other,
                                                      re.IGNORECASE):
                break
        rows.append((gloss, other, "no_match"))
    rng.shuffle(rows)
    return rows


def similarity_rows(examples, seed=0):
    """(sentence, altered copy, score): a share of the words (0, 20, ..., 100%) replaced
    by words of other sentences; the score is 5 x the share kept, as STS-B's 0-5 scale."""
    rng = random.Random(seed)
    vocabulary = sorted({w for _, e in examples for w in e.split()})
    rows = []
    for _, sentence in examples:
        words = sentence.split()
        if len(words) < 5:
            continue
        share = rng.choice((0.0, 0.2, 0.4, 0.6, 0.8, 1.0))
        replaced = set(rng.sample(range(len(words)), round(share * len(words))))
        altered = [rng.choice(vocabulary) if i in replaced else w for i, w in enumerate(words)]
        kept = 1 - len(replaced) / len(words)
        rows.append((sentence, " ".join(altered), round(5 * kept, 3)))
    return rows


def write_pair_matching_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(("gloss", "example", "label"))
        writer.writerows(rows)


def write_similarity_tsv(path, rows):
    """STS-B's columns (index, genre, ..., sentence1, sentence2, score), tab-separated."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("index\tgenre\tsentence1\tsentence2\tscore\n")
        for index, (first, second, score) in enumerate(rows):
            f.write(f"{index}\twordnet\t{first}\t{second}\t{score}\n")


flags.DEFINE_string("output_dir", "artifacts/tasks", "Where the task files go.")
flags.DEFINE_integer("max_examples", 6000, "WordNet examples used per task (0: all).")
flags.DEFINE_integer("seed", 0, "Seed of the negatives and word replacements.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise ConfigError(f"Unexpected arguments: {' '.join(argv[1:])}.")
    examples = wordnet_examples()
    rng = random.Random(FLAGS.seed)
    rng.shuffle(examples)
    if FLAGS.max_examples:
        examples = examples[:FLAGS.max_examples]
    os.makedirs(FLAGS.output_dir, exist_ok=True)
    pairs = os.path.join(FLAGS.output_dir, "wordnet_pairs.csv")
    write_pair_matching_csv(pairs, pair_matching_rows(examples, FLAGS.seed))
    similarity = os.path.join(FLAGS.output_dir, "similarity.tsv")
    write_similarity_tsv(similarity, similarity_rows(examples, FLAGS.seed))
    print(f"{len(examples):,} WordNet examples -> {pairs} (pair classification) and "
          f"{similarity} (regression)")


if __name__ == "__main__":
    cli.run(main)
