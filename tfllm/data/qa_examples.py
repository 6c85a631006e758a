"""Stage 8 (extractive QA): a question and its context -> one example per window of
the context (`tfllm.text.spans`), labelled with the positions of the question's
first answer in that window, or position 0 where the window does not hold it
(and for SQuAD 2.0's unanswerable questions), as run_squad.py labels them."""

import dataclasses
import json

import apache_beam as beam
import tensorflow as tf

from tfllm.data.documents import counter
from tfllm.text.spans import QaWindows, answer_positions, check_windows
from tfllm.text.tokenizers import load_tokenizer


@dataclasses.dataclass(frozen=True)
class QaExampleConfig:
    sequence_length: int = 384
    doc_stride: int = 128  # tokens between the starts of a context's windows
    max_query_length: int = 64  # question tokens kept

    def __post_init__(self):
        check_windows(self.sequence_length, self.doc_stride, self.max_query_length)


def _answer_bytes(document):
    """The context byte span [start, end) of a question's first answer, or None."""
    answers = json.loads(document.label)["answers"]
    if not answers:
        return None
    start = len(document.text_pair[:answers[0]["answer_start"]].encode("utf-8"))
    return start, start + len(answers[0]["text"].encode("utf-8"))


class _ToExamples(beam.DoFn):
    def __init__(self, config, tokenizer_path):
        self._config = config
        self._tokenizer_path = tokenizer_path
        self._windows = counter("qa_windows")
        self._unanswered = counter("qa_windows_without_answer")
        self._split = counter("qa_questions_with_several_windows")
        self._tokens = counter("tokens")

    def setup(self):
        config = self._config
        windows = QaWindows(load_tokenizer(self._tokenizer_path), config.sequence_length,
                            config.doc_stride, config.max_query_length)
        text = tf.TensorSpec([None], tf.string)
        self._featurize = tf.function(windows, input_signature=[text, text])  # traced once

    def process(self, documents):
        windows = {k: v.numpy() for k, v in self._featurize(
            tf.constant([d.text for d in documents]),
            tf.constant([d.text_pair for d in documents])).items()}
        answers = [_answer_bytes(d) for d in documents]
        numbers = {}
        for row, index in enumerate(windows["example"]):
            document = documents[index]
            number = numbers[index] = numbers.get(index, -1) + 1
            start = end = 0
            if answers[index]:
                start, end = answer_positions(windows["starts"][row], windows["ends"][row],
                                              *answers[index])
            self._windows.inc()
            self._tokens.inc(int(windows["padding_mask"][row].sum()))
            if start == 0:
                self._unanswered.inc()
            if number == 1:
                self._split.inc()
            yield f"{document.doc_id}/{number:05d}", {
                "input_ids": windows["token_ids"][row].tolist(),
                "input_mask": windows["padding_mask"][row].tolist(),
                "segment_ids": windows["segment_ids"][row].tolist(),
                "start_positions": [int(start)], "end_positions": [int(end)],
                "window": [number], "question": [document.text],
                "context": [document.text_pair], "answers": [document.label]}


class MakeQaExamples(beam.PTransform):
    """Questions on contexts -> (sort key, feature dict) pairs, one per window."""

    def __init__(self, config, tokenizer_path, batch_size=64):
        super().__init__()
        self._config = config
        self._tokenizer_path = tokenizer_path
        self._batch_size = batch_size

    def expand(self, documents):
        return (documents
                | "Batch" >> beam.BatchElements(min_batch_size=1,
                                                max_batch_size=self._batch_size)
                | "Windows" >> beam.ParDo(_ToExamples(self._config, self._tokenizer_path)))
