"""Stage 8 (fine-tuning tasks): one text or a pair, packed, with its label: a class id
from the label vocabulary (classify) or a float target (regress)."""

import dataclasses

import apache_beam as beam

from tfllm.data.documents import counter
from tfllm.data.tokenize import TokenizeDocuments, check_sequence_length
from tfllm.text.packing import pack


@dataclasses.dataclass(frozen=True)
class ClassifyExampleConfig:
    sequence_length: int = 128

    def __post_init__(self):
        check_sequence_length(self.sequence_length)


class _ToExample(beam.DoFn):
    def __init__(self, config, special, labels, regression):
        self._config = config
        self._special = special
        self._label_ids = {label: i for i, label in enumerate(labels)}
        self._regression = regression
        self._unlabeled = counter("dropped_unknown_label")
        self._truncated = counter("classify_truncated")

    def process(self, element):
        document, tokens, pair_tokens = element
        if self._regression:
            label = {"label_values": [float(document.label)]}
        elif document.label in self._label_ids:
            label = {"label_ids": [self._label_ids[document.label]]}
        else:
            self._unlabeled.inc()
            return
        segments = [tokens, pair_tokens] if document.text_pair else [tokens]
        length = self._config.sequence_length
        ids, mask, segment_ids = pack(segments, length, self._special)
        specials = len(segments) + ("cls" in self._special)  # [CLS] and one [SEP] each
        if sum(mask) - specials < sum(map(len, segments)):
            self._truncated.inc()
        yield document.doc_id, {"input_ids": ids, "input_mask": mask,
                                "segment_ids": segment_ids, **label,
                                "text": [document.text], "text_pair": [document.text_pair]}


class MakeClassifyExamples(beam.PTransform):
    """Documents with labels -> (sort key, feature dict) pairs; `labels` empty for
    regression."""

    def __init__(self, config, tokenizer_path, special, labels, regression=False):
        super().__init__()
        self._config = config
        self._tokenizer_path = tokenizer_path
        self._special = special
        self._labels = labels
        self._regression = regression

    def expand(self, documents):
        return (documents
                | "Tokenize" >> TokenizeDocuments(self._tokenizer_path, pairs=True)
                | "ToExample" >> beam.ParDo(_ToExample(self._config, self._special,
                                                       self._labels, self._regression)))
