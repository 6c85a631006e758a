"""Stage 8 (classification): text + integer label from the label vocabulary."""

import dataclasses

import apache_beam as beam

from tfllm.data.documents import counter
from tfllm.data.tokenize import TokenizeDocuments


@dataclasses.dataclass(frozen=True)
class ClassifyExampleConfig:
    sequence_length: int = 128


def encode(tokens, sequence_length, special):
    """[CLS] tokens [SEP] for WordPiece, tokens + end-of-text for SentencePiece; padded."""
    if "cls" in special:
        ids = [special["cls"], *tokens[:sequence_length - 2], special["sep"]]
    else:
        ids = [*tokens[:sequence_length - 1], special["end_of_text"]]
    fill = sequence_length - len(ids)
    return ids + [special["pad"]] * fill, [1] * len(ids) + [0] * fill


class _ToExample(beam.DoFn):
    def __init__(self, config, special, labels):
        self._config = config
        self._special = special
        self._label_ids = {label: i for i, label in enumerate(labels)}
        self._unlabeled = counter("dropped_unknown_label")
        self._truncated = counter("classify_truncated")

    def process(self, pair):
        document, tokens = pair
        label_id = self._label_ids.get(document.label)
        if label_id is None:
            self._unlabeled.inc()
            return
        length = self._config.sequence_length
        if len(tokens) > length - 2:
            self._truncated.inc()
        ids, mask = encode(tokens, length, self._special)
        yield document.doc_id, {"input_ids": ids, "input_mask": mask,
                                "segment_ids": [0] * length, "label_ids": [label_id],
                                "text": [document.text]}


class MakeClassifyExamples(beam.PTransform):
    """Documents with labels -> (sort key, feature dict) pairs."""

    def __init__(self, config, tokenizer_path, special, labels):
        super().__init__()
        self._config = config
        self._tokenizer_path = tokenizer_path
        self._special = special
        self._labels = labels

    def expand(self, documents):
        return (documents
                | "Tokenize" >> TokenizeDocuments(self._tokenizer_path)
                | "ToExample" >> beam.ParDo(_ToExample(self._config, self._special,
                                                       self._labels)))

