"""Tokenization inside Beam: batched, with the tokenizer loaded once per worker."""

import apache_beam as beam

from tfllm.data.documents import counter
from tfllm.errors import ConfigError


def check_sequence_length(length):
    """An example config's check: room for at least one token beside the special ones."""
    if length < 2:
        raise ConfigError(f"--sequence_length must be at least 2; got {length}.")


class _Tokenize(beam.DoFn):
    def __init__(self, tokenizer_path, segmenter, pairs):
        self._tokenizer_path = tokenizer_path
        self._segmenter = segmenter
        self._pairs = pairs
        self._tokens = counter("tokens")
        self._tokenizer = None

    def setup(self):
        from tfllm.text.tokenizers import load_tokenizer  # TF is imported on workers only

        self._tokenizer = load_tokenizer(self._tokenizer_path)

    def process(self, documents):
        if self._pairs:
            ids = self._tokenizer.tokenize([d.text for d in documents]
                                           + [d.text_pair for d in documents])
            for document, tokens, pair in zip(documents, ids, ids[len(documents):]):
                self._tokens.inc(len(tokens) + len(pair))
                yield document, tokens, pair
            return
        if self._segmenter is None:
            ids = self._tokenizer.tokenize([d.text for d in documents])
            for document, tokens in zip(documents, ids):
                self._tokens.inc(len(tokens))
                yield document, tokens
            return
        segments = [self._segmenter(d.text) for d in documents]
        flat = self._tokenizer.tokenize([s for doc in segments for s in doc])
        start = 0
        for document, doc_segments in zip(documents, segments):
            ids = flat[start:start + len(doc_segments)]
            start += len(doc_segments)
            self._tokens.inc(sum(len(t) for t in ids))
            yield document, ids


class TokenizeDocuments(beam.PTransform):
    """Document -> (Document, token ids), or per-segment ids when given a segmenter, or
    (Document, token ids, token ids of its text_pair) with `pairs`.

    Documents are batched so the tensorflow-text ops run on many strings per call.
    """

    def __init__(self, tokenizer_path, segmenter=None, batch_size=256, pairs=False):
        super().__init__()
        self._pairs = pairs
        self._tokenizer_path = tokenizer_path
        self._segmenter = segmenter
        self._batch_size = batch_size

    def expand(self, documents):
        return (documents
                | "Batch" >> beam.BatchElements(min_batch_size=1,
                                                max_batch_size=self._batch_size)
                | "Tokenize" >> beam.ParDo(_Tokenize(self._tokenizer_path, self._segmenter,
                                                         self._pairs)))
