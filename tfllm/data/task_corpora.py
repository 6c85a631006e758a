"""Labelled task data built offline from text Debian ships, in the formats users bring
(written by `python -m tfllm.task_data`).

- `similarity.tsv` (regression, GLUE's STS-B layout): a usage example from a WordNet
  gloss and a copy with some of its words replaced, scored 0-5 by the share kept.
- `paraphrase.csv` (sentence-pair classification, CSV with quoting, MRPC's question):
  the same construction, `paraphrase` when at most a fifth of the words changed.

Both reward comparing the two texts word by word, which a bag-of-words baseline over
the concatenated pair can only approximate.
"""

import csv
import os
import random
import re

from tfllm.errors import ConfigError

WORDNET = "/usr/share/wordnet"
_EXAMPLE = re.compile(r'"([^"]{20,200})"')


def wordnet_examples(wordnet_dir=WORDNET):
    """The usage example of every synset whose gloss quotes one that uses its first
    lemma, in file order. Hand-written: nothing in this stack reads WordNet's
    database without a download (nltk's reader needs its own corpus)."""
    examples = []
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
                for example in _EXAMPLE.findall(gloss):
                    if re.search(rf"\b{re.escape(lemma)}\b", example, re.IGNORECASE):
                        examples.append(example.strip())
                        break
    return examples


def paraphrase_rows(examples, seed=0):
    """(sentence, altered copy, paraphrase|different): MRPC's question on WordNet's
    sentences; a copy is a paraphrase when at most a fifth of its words were replaced."""
    return [(first, second, "paraphrase" if score >= 4 else "different")
            for first, second, score in similarity_rows(examples, seed + 1)]


def similarity_rows(examples, seed=0):
    """(sentence, altered copy, score): a share of the words (0, 20, ..., 100%) replaced
    by words of other sentences; the score is 5 x the share kept, as STS-B's 0-5 scale."""
    rng = random.Random(seed)
    vocabulary = sorted({w for e in examples for w in e.split()})
    rows = []
    for sentence in examples:
        words = sentence.split()
        if len(words) < 5:
            continue
        share = rng.choice((0.0, 0.2, 0.4, 0.6, 0.8, 1.0))
        replaced = set(rng.sample(range(len(words)), round(share * len(words))))
        altered = [rng.choice(vocabulary) if i in replaced else w for i, w in enumerate(words)]
        kept = 1 - len(replaced) / len(words)
        rows.append((sentence, " ".join(altered), round(5 * kept, 3)))
    return rows


def write_paraphrase_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(("sentence1", "sentence2", "label"))
        writer.writerows(rows)


def write_similarity_tsv(path, rows):
    """STS-B's columns (index, genre, ..., sentence1, sentence2, score), tab-separated."""
    with open(path, "w", encoding="utf-8") as f:
        f.write("index\tgenre\tsentence1\tsentence2\tscore\n")
        for index, (first, second, score) in enumerate(rows):
            f.write(f"{index}\twordnet\t{first}\t{second}\t{score}\n")
