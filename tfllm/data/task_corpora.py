"""Labelled task data built offline from text Debian ships, in the formats users bring
(written by `python -m tfllm.task_data`).

- `similarity.tsv` (regression, GLUE's STS-B layout): a usage example from a WordNet
  gloss and a copy with some of its words replaced, scored 0-5 by the share kept.
- `paraphrase.csv` (sentence-pair classification, CSV with quoting, MRPC's question):
  the same construction, `paraphrase` when at most a fifth of the words changed.
- `entities.conll` (token tagging, CoNLL-2003's layout with BIO tags): fortune quotes
  with e-mail addresses, URLs and numbers planted among their words.
- `definitions.json` (extractive QA, SQuAD 2.0's JSON): paragraphs of WordNet
  definitions, "what is X?" questions answered by X's definition, and a third of the
  questions about a word the paragraph does not define (unanswerable).

Both reward comparing the two texts word by word, which a bag-of-words baseline over
the concatenated pair can only approximate.
"""

import csv
import glob
import json
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


_DEFINITION = re.compile(r"^[a-z][a-z ,'-]{9,120}$")


def wordnet_definitions(wordnet_dir=WORDNET):
    """(lemma, definition) of the first WordNet noun synset of each plain one-word lemma
    whose definition (the gloss before its examples) is a plain phrase, in file order."""
    path = os.path.join(wordnet_dir, "data.noun")
    if not os.path.exists(path):
        raise ConfigError(f"{path} is missing: install Debian's wordnet-base "
                          "(scripts/setup.sh does).")
    found = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line[:1].isdigit() or " | " not in line:
                continue
            head, gloss = line.split(" | ", 1)
            lemma = head.split()[4].lower()
            definition = gloss.split(";")[0].strip()
            if lemma.isalpha() and _DEFINITION.match(definition):
                found.setdefault(lemma, definition)
    return list(found.items())


_TEMPLATES = ("{Word} is {definition}.", "{Word}: {definition}.",
              "By {word} one means {definition}.", "The word {word} names {definition}.")
_QUESTIONS = ("What is {word}?", "What does {word} mean?", "What is meant by {word}?")


def qa_articles(definitions, seed=0, per_paragraph=2):
    """SQuAD 2.0 `data`: paragraphs of `per_paragraph` definitions in varied templates;
    one answerable question per definition and, for every second definition, one
    unanswerable question about a word defined elsewhere."""
    rng = random.Random(seed)
    paragraphs = []
    for at in range(0, len(definitions) - per_paragraph + 1, per_paragraph):
        chosen = definitions[at:at + per_paragraph]
        sentences, qas = [], []
        offset = 0
        for index, (word, definition) in enumerate(chosen):
            sentence = rng.choice(_TEMPLATES).format(word=word, Word=word.capitalize(),
                                                     definition=definition)
            start = offset + sentence.index(definition)
            qas.append({"id": f"wn{at + index:06d}", "is_impossible": False,
                        "question": rng.choice(_QUESTIONS).format(word=word),
                        "answers": [{"text": definition, "answer_start": start}]})
            if index % 2:
                other = definitions[rng.randrange(len(definitions))][0]
                if other not in {w for w, _ in chosen}:
                    qas.append({"id": f"wn{at + index:06d}x", "is_impossible": True,
                                "question": rng.choice(_QUESTIONS).format(word=other),
                                "answers": [], "plausible_answers": []})
            sentences.append(sentence)
            offset += len(sentence) + 1
        paragraphs.append({"context": " ".join(sentences), "qas": qas})
    return [{"title": "WordNet definitions", "paragraphs": paragraphs}]


def write_squad(path, articles):
    with _Atomic(path) as f:
        json.dump({"version": "v2.0", "data": articles}, f, indent=1)


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


FORTUNES = "/usr/share/games/fortunes"
_UNTAGGABLE = re.compile(r"[\d@]|https?:|www\.")  # words that would look like entities
_NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan",
          "judy", "mallory", "oscar", "peggy", "trent", "victor", "walter")
_DOMAINS = ("example.com", "mail.org", "univ.edu", "isp.net", "corp.co.uk", "lists.debian.org")


def fortune_sentences(fortunes_dir=FORTUNES, max_words=30):
    """Fortune quotes of 4-30 words on one line, without digits, '@' or URLs."""
    sentences = []
    for path in sorted(glob.glob(os.path.join(fortunes_dir, "*"))):
        if path.endswith((".dat", ".u8")) or not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for quote in f.read().split("\n%\n"):
                words = quote.split()
                if 4 <= len(words) <= max_words and not _UNTAGGABLE.search(quote):
                    sentences.append(words)
    if not sentences:
        raise ConfigError(f"No fortune quotes in {fortunes_dir}: install Debian's fortunes "
                          "(scripts/setup.sh does).")
    return sentences


def _entity(rng):
    """(words, tags) of one planted entity: an e-mail, a URL or a one- or two-word number."""
    entity = rng.choice(("EMAIL", "URL", "NUM"))
    if entity == "EMAIL":
        words = [f"{rng.choice(_NAMES)}{rng.randrange(100) if rng.random() < 0.5 else ''}"
                 f"@{rng.choice(_DOMAINS)}"]
    elif entity == "URL":
        words = [f"https://{rng.choice(('www.', 'docs.', ''))}{rng.choice(_DOMAINS)}/"
                 f"{rng.choice(_NAMES)}"]
    elif rng.random() < 0.3:
        words = [str(rng.randrange(1, 999)), f"{rng.randrange(1000):03d}"]  # "12 000"
    else:
        words = [f"{rng.randrange(10 ** rng.randrange(1, 6)):,}"]
    return words, [f"B-{entity}"] + [f"I-{entity}"] * (len(words) - 1)


def tagging_rows(sentences, seed=0):
    """[(words, BIO tags)]: each sentence with one to three entities planted at random
    word boundaries (the other words tagged O)."""
    rng = random.Random(seed)
    rows = []
    for words in sentences:
        words, tags = list(words), ["O"] * len(words)
        for _ in range(rng.randint(1, 3)):
            at = rng.randint(0, len(words))
            entity, entity_tags = _entity(rng)
            words[at:at] = entity
            tags[at:at] = entity_tags
        rows.append((words, tags))
    return rows


class _Atomic:
    """A text file that appears under `path` only once completely written."""

    def __init__(self, path, **options):
        self._path, self._options = path, options

    def __enter__(self):
        self._file = open(f"{self._path}.partial", "w", encoding="utf-8", **self._options)
        return self._file

    def __exit__(self, kind, *_):
        self._file.close()
        if kind is None:
            os.replace(f"{self._path}.partial", self._path)
        else:
            os.remove(f"{self._path}.partial")


def write_conll(path, rows):
    """CoNLL-2003's layout: -DOCSTART-, then `word POS chunk tag` lines, blank lines
    between sentences (POS and chunk columns are placeholders)."""
    with _Atomic(path) as f:
        f.write("-DOCSTART- -X- -X- O\n\n")
        for words, tags in rows:
            f.writelines(f"{w} X X {t}\n" for w, t in zip(words, tags))
            f.write("\n")


def write_paraphrase_csv(path, rows):
    with _Atomic(path, newline="") as f:
        writer = csv.writer(f)
        writer.writerow(("sentence1", "sentence2", "label"))
        writer.writerows(rows)


def write_similarity_tsv(path, rows):
    """STS-B's columns (index, genre, ..., sentence1, sentence2, score), tab-separated."""
    with _Atomic(path) as f:
        f.write("index\tgenre\tsentence1\tsentence2\tscore\n")
        for index, (first, second, score) in enumerate(rows):
            f.write(f"{index}\twordnet\t{first}\t{second}\t{score}\n")
