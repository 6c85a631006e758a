"""Extractive question answering's windows and spans, as TensorFlow ops.

A context longer than the model's window is read in windows `doc_stride` tokens
apart (google-research/bert's `run_squad.py`, Hugging Face's `doc_stride`):
`[CLS] question [SEP] context piece [SEP]` for BERT, `question <|endoftext|>
context piece <|endoftext|>` for GPT. The context is split into words as BERT's
basic tokenizer splits it (whitespace, punctuation, CJK characters), each word
into word pieces, and every piece carries its word's byte offsets, so a span of
pieces maps back to a span of the original text.

The data job, evaluation and the exported SavedModels all call these ops, so
training labels, scores and served answers come from the same windows. This
module imports no Beam.
"""

import tensorflow as tf
import tensorflow_text as tf_text
from keras_hub.src.tokenizers.word_piece_tokenizer import (
    PUNCTUATION_AND_CJK_REGEX,
    WHITESPACE_PUNCTUATION_AND_CJK_REGEX,
)

from tfllm.errors import ConfigError
from tfllm.text.packing import GraphPacker

NOT_CONTEXT = -1  # byte offset of positions that are not context: question, specials, pad


def check_windows(sequence_length, doc_stride, max_query_length, overhead=3):
    """ConfigError unless a window holds a question, some context and its specials, and
    consecutive windows overlap or touch (no context token is skipped)."""
    room = sequence_length - max_query_length - overhead
    if max_query_length < 1 or room < 1:
        raise ConfigError(f"--max_query_length={max_query_length} leaves no room for the "
                          f"context in windows of {sequence_length} tokens.")
    if not 0 < doc_stride <= room:
        raise ConfigError(f"--doc_stride must be in [1, {room}] (the context room of a "
                          f"{sequence_length}-token window after a {max_query_length}-token "
                          f"question); got {doc_stride}.")


def unknown_for_empty(pieces, unknown):
    """Words without pieces get one unknown token, so every word has a first piece."""
    empty = tf.equal(pieces.row_lengths(), 0)
    filler = tf.RaggedTensor.from_row_lengths(
        tf.fill([tf.reduce_sum(tf.cast(empty, tf.int32))], tf.cast(unknown, pieces.dtype)),
        tf.cast(empty, tf.int64))
    return tf.concat([pieces, filler], axis=1)


def ragged_ids(tokenizer, texts):
    """int32 ragged ids of a keras-hub tokenizer, which answers eager calls with lists."""
    ids = tokenizer(texts)
    if not isinstance(ids, (tf.Tensor, tf.RaggedTensor)):
        ids = tf.ragged.constant(ids, dtype=tf.int32, ragged_rank=1, inner_shape=())
    if isinstance(ids, tf.Tensor):
        ids = tf.RaggedTensor.from_tensor(ids)
    return tf.cast(ids, tf.int32)


def _ragged_prefix(values, lengths, fill):
    """Rows of `lengths` copies of `fill` followed by the ragged `values` rows."""
    prefix = tf.RaggedTensor.from_row_lengths(
        tf.fill([tf.reduce_sum(lengths)], tf.cast(fill, values.dtype)), lengths)
    return tf.concat([prefix.with_row_splits_dtype(values.row_splits.dtype), values], axis=1)


class QaWindows:
    """(questions, contexts) -> one row per window: `token_ids`, `padding_mask`,
    `segment_ids`, `example` (the row's question), `starts`/`ends` (the byte span in
    the context of the word each position belongs to, NOT_CONTEXT elsewhere) and
    `max_context` (this window sees the position with the most context on both
    sides of all windows holding it, run_squad.py's rule for overlapping windows)."""

    def __init__(self, tokenizer, sequence_length, doc_stride, max_query_length):
        special = tokenizer.special_ids
        self.tokenizer = tokenizer.keras_tokenizer
        self.bert = "cls" in special
        self.unknown = special["unk"]
        self.length = sequence_length
        self.doc_stride = doc_stride
        self.max_query_length = max_query_length
        self.overhead = 3 if self.bert else 2  # [CLS] [SEP] [SEP], or two <|endoftext|>
        check_windows(sequence_length, doc_stride, max_query_length, self.overhead)
        self.packer = GraphPacker(sequence_length, special)

    def context_pieces(self, context):
        """(piece ids, piece byte starts, piece byte ends), ragged [batch, (pieces)]."""
        words, starts, ends = tf_text.regex_split_with_offsets(
            context, WHITESPACE_PUNCTUATION_AND_CJK_REGEX, PUNCTUATION_AND_CJK_REGEX)
        pieces = unknown_for_empty(ragged_ids(self.tokenizer, words.flat_values), self.unknown)
        counts = pieces.row_lengths()
        per_word = words.with_flat_values(pieces).merge_dims(1, 2)
        repeat = lambda offsets: per_word.with_flat_values(  # noqa: E731
            tf.cast(tf.repeat(offsets.flat_values, counts), tf.int32))
        return per_word, repeat(starts), repeat(ends)

    def __call__(self, question, context):
        question_ids = ragged_ids(self.tokenizer, question)[:, :self.max_query_length]
        ids, starts, ends = self.context_pieces(context)
        question_lengths = tf.cast(question_ids.row_lengths(), tf.int32)
        context_lengths = tf.cast(ids.row_lengths(), tf.int32)
        room = self.length - question_lengths - self.overhead
        extra = tf.maximum(context_lengths - room, 0)
        count = 1 + (extra + self.doc_stride - 1) // self.doc_stride
        window_starts = tf.ragged.range(count) * self.doc_stride
        example = tf.cast(window_starts.value_rowids(), tf.int32)
        first = window_starts.flat_values
        lengths = tf.maximum(tf.minimum(tf.gather(room, example),
                                        tf.gather(context_lengths, example) - first), 0)
        local = tf.ragged.range(lengths)
        flat = (local + (tf.gather(tf.cast(ids.row_starts(), tf.int32), example)
                         + first)[:, None])
        token_ids, padding_mask, segment_ids = self.packer(
            tf.gather(question_ids, example), tf.gather(ids.flat_values, flat))
        offset = tf.gather(question_lengths, example) + (2 if self.bert else 1)
        shape = [None, self.length]
        # The context token with the most context in its window: min(left, right) + 0.01 x
        # the window's length, compared over every window that holds it.
        score = (tf.cast(tf.minimum(local, lengths[:, None] - 1 - local), tf.float32)
                 + 0.01 * tf.cast(lengths, tf.float32)[:, None])
        best = tf.math.unsorted_segment_max(score.flat_values, flat.flat_values,
                                            tf.size(ids.flat_values))
        is_best = score.with_flat_values(score.flat_values >= tf.gather(best, flat.flat_values))
        place = lambda values, fill: _ragged_prefix(values, offset, fill).to_tensor(  # noqa
            fill, shape=shape)
        return {"token_ids": token_ids, "padding_mask": padding_mask,
                "segment_ids": segment_ids, "example": example,
                "starts": place(tf.gather(starts.flat_values, flat), NOT_CONTEXT),
                "ends": place(tf.gather(ends.flat_values, flat), NOT_CONTEXT),
                "max_context": place(is_best, False)}


def best_spans(start_logits, end_logits, windows, num_examples, max_answer_length):
    """The best span of each question over all its windows.

    A span starts at a context position this window has the most context for and
    ends at a context position at most `max_answer_length` pieces later; its score
    is start logit + end logit. Returns {"start", "end"} (context byte offsets, 0 when
    no span exists), "score" (-inf then) and "null_score": the lowest, over the
    question's windows, of position 0's start + end logits (the no-answer score of
    SQuAD 2.0 models, as Hugging Face's post-processing takes it).
    """
    width = tf.shape(start_logits)[1]
    starts, ends = windows["starts"][:, :width], windows["ends"][:, :width]
    is_context = starts >= 0
    can_start = is_context & windows["max_context"][:, :width]
    first = tf.range(width)[:, None]
    last = tf.range(width)[None, :]
    allowed = (last >= first) & (last - first < max_answer_length)
    valid = allowed[None] & can_start[:, :, None] & is_context[:, None, :]
    start_logits = tf.cast(start_logits, tf.float32)
    end_logits = tf.cast(end_logits, tf.float32)
    scores = tf.where(valid, start_logits[:, :, None] + end_logits[:, None, :], -float("inf"))
    flat = tf.reshape(scores, [tf.shape(scores)[0], -1])
    window_best = tf.reduce_max(flat, axis=1)
    where = tf.argmax(flat, axis=1, output_type=tf.int32)
    window_start = tf.gather(starts, where // width, batch_dims=1)
    window_end = tf.gather(ends, where % width, batch_dims=1)
    example = windows["example"]
    best = tf.math.unsorted_segment_max(window_best, example, num_examples)
    rows = tf.range(tf.shape(example)[0])
    chosen = tf.math.unsorted_segment_min(
        tf.where(window_best >= tf.gather(best, example), rows, tf.shape(example)[0]),
        example, num_examples)
    chosen = tf.minimum(chosen, tf.maximum(tf.shape(example)[0] - 1, 0))
    # unsorted_segment_max starts from the lowest float, not -inf: where no window has a
    # span, `best` is that number, so whether a span exists is counted apart.
    found = tf.math.unsorted_segment_max(
        tf.cast(window_best > -float("inf"), tf.int32), example, num_examples) > 0
    best = tf.where(found, best, -float("inf"))
    null_score = tf.math.unsorted_segment_min(start_logits[:, 0] + end_logits[:, 0],
                                              example, num_examples)
    return {"start": tf.where(found, tf.gather(window_start, chosen), 0),
            "end": tf.where(found, tf.gather(window_end, chosen), 0),
            "score": best, "null_score": null_score}


def answer_positions(starts, ends, answer_start, answer_end):
    """Training labels of one window: the (start, end) positions of the pieces covering
    the context bytes [answer_start, answer_end), or (0, 0) (no answer in this window)
    when the window does not hold the whole answer. `starts`/`ends`: the window's
    per-position byte offsets (NOT_CONTEXT outside the context)."""
    context = [p for p, s in enumerate(starts) if s >= 0]
    if answer_end <= answer_start or not context:
        return 0, 0
    if starts[context[0]] > answer_start or ends[context[-1]] < answer_end:
        return 0, 0
    start = next(p for p in context if ends[p] > answer_start)
    end = next(p for p in reversed(context) if starts[p] < answer_end)
    return (start, end) if start <= end else (0, 0)
