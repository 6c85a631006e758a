"""Stage 8 (BERT): sentence-pair instances with NSP labels and masked-LM positions.

Follows google-research/bert `create_pretraining_data.py` (no library ships it:
keras-hub has masking but no NSP pairs). It needs random documents for the
"random next" segments; instead of holding the corpus in memory, documents are
hashed into groups and each group is processed on one worker with an RNG seeded
by the group key, so results are deterministic at any scale.

One deliberate difference: when a chunk holds a single segment (common in short
documents such as quotes), the original always makes it a random-next pair; here
the segment is split at a random token so that "is next" stays 50% likely.
"""

import dataclasses
import hashlib
import random
import re

import apache_beam as beam

from tfllm.data.documents import counter
from tfllm.data.tokenize import TokenizeDocuments
from tfllm.errors import ConfigError

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


@dataclasses.dataclass(frozen=True)
class BertExampleConfig:
    sequence_length: int = 128
    short_seq_prob: float = 0.1
    masked_lm_prob: float = 0.15
    max_predictions_per_seq: int = 20
    dupe_factor: int = 1
    static_masking: bool = True  # False: leave masking to the tf.data reader
    documents_per_group: int = 256
    seed: int = 12345

    def __post_init__(self):
        if not 0 < self.masked_lm_prob < 1:
            raise ConfigError(f"--masked_lm_prob must be in (0, 1); got {self.masked_lm_prob}.")
        if self.sequence_length < 8:
            raise ConfigError(f"--sequence_length must be at least 8; got "
                              f"{self.sequence_length}.")


def split_sentences(text):
    """Segments for NSP: sentences, and line breaks as boundaries too."""
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def group_key(doc_id, num_groups):
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") % num_groups


def _truncate_pair(tokens_a, tokens_b, max_tokens, rng):
    """Trims the longer segment, from the front or back at random (as the original)."""
    while len(tokens_a) + len(tokens_b) > max_tokens:
        longer = tokens_a if len(tokens_a) > len(tokens_b) else tokens_b
        if rng.random() < 0.5:
            del longer[0]
        else:
            longer.pop()


def mask_tokens(tokens, config, special, vocab_size, rng):
    """BERT masking: 15% of non-special positions; 80% [MASK], 10% random, 10% kept.

    Returns (masked tokens, positions, original ids).
    """
    candidates = [i for i, t in enumerate(tokens) if t not in (special["cls"], special["sep"])]
    rng.shuffle(candidates)
    num_to_predict = min(config.max_predictions_per_seq,
                         max(1, int(round(len(tokens) * config.masked_lm_prob))))
    positions = sorted(candidates[:num_to_predict])
    output = list(tokens)
    first_regular_id = max(special.values()) + 1
    for position in positions:
        draw = rng.random()
        if draw < 0.8:
            output[position] = special["mask"]
        elif draw < 0.9:
            output[position] = rng.randint(first_regular_id, vocab_size - 1)
    return output, positions, [tokens[p] for p in positions]


def _features(tokens_a, tokens_b, is_random_next, config, special, vocab_size, rng):
    length = config.sequence_length
    tokens = [special["cls"], *tokens_a, special["sep"], *tokens_b, special["sep"]]
    segment_ids = [0] * (len(tokens_a) + 2) + [1] * (len(tokens_b) + 1)
    pad = length - len(tokens)
    values = {"input_mask": [1] * len(tokens) + [0] * pad,
              "segment_ids": segment_ids + [0] * pad,
              "next_sentence_labels": [int(is_random_next)]}
    if config.static_masking:
        tokens, positions, labels = mask_tokens(tokens, config, special, vocab_size, rng)
        fill = config.max_predictions_per_seq - len(positions)
        values.update({"masked_lm_positions": positions + [0] * fill,
                       "masked_lm_ids": labels + [0] * fill,
                       "masked_lm_weights": [1.0] * len(positions) + [0.0] * fill})
    values["input_ids"] = tokens + [special["pad"]] * pad
    return values


def instances_from_document(documents, index, config, special, vocab_size, rng):
    """Feature dicts for one document (a list of tokenized segments) of a group."""
    document = documents[index]
    max_tokens = config.sequence_length - 3
    target_length = max_tokens
    if rng.random() < config.short_seq_prob:
        target_length = rng.randint(2, max_tokens)
    instances, chunk, chunk_length, i = [], [], 0, 0
    while i < len(document):
        chunk.append(document[i])
        chunk_length += len(document[i])
        if i == len(document) - 1 or chunk_length >= target_length:
            split_single = len(chunk) == 1 and len(chunk[0]) > 1
            if split_single:  # see the module docstring
                cut = rng.randint(1, len(chunk[0]) - 1)
                chunk = [chunk[0][:cut], chunk[0][cut:]]
            a_end = rng.randint(1, len(chunk) - 1) if len(chunk) >= 2 else 1
            tokens_a = [t for segment in chunk[:a_end] for t in segment]
            tokens_b = []
            is_random_next = len(chunk) == 1 or len(documents) > 1 and rng.random() < 0.5
            if is_random_next and len(documents) > 1:
                other = index
                while other == index:
                    other = rng.randrange(len(documents))
                random_document = documents[other]
                for segment in random_document[rng.randrange(len(random_document)):]:
                    tokens_b.extend(segment)
                    if len(tokens_b) >= target_length - len(tokens_a):
                        break
                if not split_single:  # unused segments go back for the next instance
                    i -= len(chunk) - a_end
            elif not is_random_next:
                tokens_b = [t for segment in chunk[a_end:] for t in segment]
            tokens_a, tokens_b = list(tokens_a), list(tokens_b)
            _truncate_pair(tokens_a, tokens_b, max_tokens, rng)
            if tokens_a and tokens_b:
                instances.append(_features(tokens_a, tokens_b, is_random_next, config,
                                           special, vocab_size, rng))
            chunk, chunk_length = [], 0
        i += 1
    return instances


class _MakeGroupInstances(beam.DoFn):
    def __init__(self, config, special, vocab_size):
        self._config = config
        self._special = special
        self._vocab_size = vocab_size
        self._made = counter("bert_instances")
        self._random_next = counter("bert_random_next")

    def process(self, keyed_group):
        key, members = keyed_group
        members = sorted(members)  # (doc_id, segments): deterministic order
        documents = [segments for _, segments in members]
        for dupe in range(self._config.dupe_factor):
            rng = random.Random(f"{self._config.seed}/{key}/{dupe}")
            for index, (doc_id, _) in enumerate(members):
                for number, values in enumerate(instances_from_document(
                        documents, index, self._config, self._special, self._vocab_size, rng)):
                    self._made.inc()
                    self._random_next.inc(values["next_sentence_labels"][0])
                    yield f"{doc_id}/{dupe}/{number}", values


class MakeBertExamples(beam.PTransform):
    """Documents -> (sort key, feature dict) pairs of BERT pretraining instances."""

    def __init__(self, config, tokenizer_path, special, vocab_size, num_documents):
        super().__init__()
        self._config = config
        self._tokenizer_path = tokenizer_path
        self._special = special
        self._vocab_size = vocab_size
        self._num_groups = max(1, num_documents // config.documents_per_group)

    def expand(self, documents):
        num_groups = self._num_groups
        return (documents
                | "Tokenize" >> TokenizeDocuments(self._tokenizer_path, split_sentences)
                | "DropEmpty" >> beam.Filter(lambda pair: any(pair[1]))
                | "KeyByGroup" >> beam.Map(
                    lambda pair: (group_key(pair[0].doc_id, num_groups),
                                  (pair[0].doc_id, [s for s in pair[1] if s])))
                | "Group" >> beam.GroupByKey()
                | "Instances" >> beam.ParDo(_MakeGroupInstances(
                    self._config, self._special, self._vocab_size)))

