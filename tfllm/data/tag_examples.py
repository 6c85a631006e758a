"""Stage 8 (token tagging): words (space separated) and one tag per word, as word
pieces with the word's tag id on its first piece and -1 (no loss) on the others,
as BERT's CoNLL-2003 recipe does."""

import apache_beam as beam

from tfllm.data.documents import counter
from tfllm.data.tokenize import TokenizeDocuments
from tfllm.text.packing import pack_words

class _ToExample(beam.DoFn):
    def __init__(self, sequence_length, special, labels):
        self._length = sequence_length
        self._special = special
        self._tag_ids = {label: i for i, label in enumerate(labels)}
        self._mismatch = counter("dropped_tag_count_mismatch")
        self._truncated = counter("tag_truncated_words")

    def process(self, element):
        document, word_pieces = element
        tags = document.label.split(" ")
        if len(tags) != len(word_pieces):  # cleaning changed the words
            self._mismatch.inc()
            return
        ids, mask, tag_ids, kept = pack_words(
            word_pieces, [self._tag_ids[t] for t in tags], self._length, self._special)
        if kept < len(tags):
            self._truncated.inc(len(tags) - kept)
        yield document.doc_id, {"input_ids": ids, "input_mask": mask,
                                "segment_ids": [0] * self._length, "tag_ids": tag_ids,
                                "text": [document.text], "tags": [document.label]}


class MakeTagExamples(beam.PTransform):
    """Tagged sentences -> (sort key, feature dict) pairs; `labels` is the tag set."""

    def __init__(self, config, tokenizer_path, special, labels):
        super().__init__()
        self._config = config
        self._tokenizer_path = tokenizer_path
        self._special = special
        self._labels = labels

    def expand(self, documents):
        return (documents
                | "TokenizeWords" >> TokenizeDocuments(self._tokenizer_path,
                                                       segmenter=lambda text: text.split(" "))
                | "ToExample" >> beam.ParDo(_ToExample(self._config.sequence_length,
                                                       self._special, self._labels)))
