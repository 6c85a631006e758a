"""Stage 8 (GPT): documents joined by end-of-text and packed into fixed windows.

Documents are hashed into packing groups; each group concatenates its documents
(sorted by id, so output is deterministic) and cuts windows of length+1 tokens
with stride `length`, so every token but the first is a target exactly once and
only the last window of a group carries padding.
"""

import dataclasses

import apache_beam as beam

from tfllm.data.bert_examples import group_key
from tfllm.data.documents import counter
from tfllm.data.tokenize import TokenizeDocuments, check_sequence_length


@dataclasses.dataclass(frozen=True)
class GptExampleConfig:
    sequence_length: int = 128
    documents_per_group: int = 1024

    def __post_init__(self):
        check_sequence_length(self.sequence_length)


def pack(token_lists, sequence_length, end_of_text, pad):
    """[(input_ids, input_mask)] windows over the concatenated token lists."""
    stream = [t for tokens in token_lists for t in (*tokens, end_of_text)]
    window = sequence_length + 1
    packed = []
    for start in range(0, max(len(stream) - 1, 0), sequence_length):
        ids = stream[start:start + window]
        fill = window - len(ids)
        packed.append((ids + [pad] * fill, [1] * len(ids) + [0] * fill))
    return packed


class _PackGroup(beam.DoFn):
    def __init__(self, config, special):
        self._config = config
        self._special = special
        self._windows = counter("gpt_windows")
        self._padding = counter("gpt_padding_tokens")

    def process(self, keyed_group):
        key, members = keyed_group
        members = sorted(members)
        windows = pack([tokens for _, tokens in members], self._config.sequence_length,
                       self._special["end_of_text"], self._special["pad"])
        for number, (ids, mask) in enumerate(windows):
            self._windows.inc()
            self._padding.inc(len(mask) - sum(mask))
            yield f"{key:08d}/{number:08d}", {"input_ids": ids, "input_mask": mask}


class MakeGptExamples(beam.PTransform):
    """Documents -> (sort key, feature dict) pairs of packed causal-LM windows."""

    def __init__(self, config, tokenizer_path, special, num_documents):
        super().__init__()
        self._config = config
        self._tokenizer_path = tokenizer_path
        self._special = special
        self._num_groups = max(1, num_documents // config.documents_per_group)

    def expand(self, documents):
        num_groups = self._num_groups
        return (documents
                | "Tokenize" >> TokenizeDocuments(self._tokenizer_path)
                | "KeyByGroup" >> beam.Map(lambda pair: (group_key(pair[0].doc_id, num_groups),
                                                         (pair[0].doc_id, pair[1])))
                | "Group" >> beam.GroupByKey()
                | "Pack" >> beam.ParDo(_PackGroup(self._config, self._special)))

