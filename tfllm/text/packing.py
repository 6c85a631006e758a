"""Packing token ids into model inputs, the same way in data, training and serving.

BERT: `[CLS] a [SEP]` or `[CLS] a [SEP] b [SEP]` with segment ids 0 for `a` (and
its `[SEP]`) and 1 for `b`. GPT: `a <|endoftext|>` or `a <|endoftext|> b
<|endoftext|>`; GPT has no segment embedding, so its segment ids stay 0. Pairs
are trimmed round robin (one token at a time to each segment that still needs
some), as keras-hub's MultiSegmentPacker does in the exported graphs.

This module imports no Beam: the Beam job, the trainer's checks and the exported
SavedModels use it alike.
"""

import keras_hub
import tensorflow as tf


def _specials(special):
    """(start ids, separator ids, end ids) of a family, from its special ids."""
    if "cls" in special:
        return [special["cls"]], [special["sep"]], [special["sep"]]
    return [], [special["end_of_text"]], [special["end_of_text"]]


def round_robin_lengths(lengths, budget):
    """How many tokens of each segment survive: the budget handed out one token at a
    time to the segments that still have tokens (tensorflow-text's RoundRobinTrimmer)."""
    kept = [0] * len(lengths)
    while budget > 0 and any(k < n for k, n in zip(kept, lengths)):
        for i, n in enumerate(lengths):
            if budget and kept[i] < n:
                kept[i] += 1
                budget -= 1
    return kept


def pack(segments, sequence_length, special):
    """Token-id lists (one or two segments) -> (ids, padding mask, segment ids), padded."""
    start, separator, end = _specials(special)
    budget = sequence_length - len(start) - len(end) - (len(segments) - 1) * len(separator)
    kept = round_robin_lengths([len(s) for s in segments], budget)
    ids, segment_ids = list(start), [0] * len(start)
    for index, (tokens, keep) in enumerate(zip(segments, kept)):
        closing = end if index == len(segments) - 1 else separator
        ids += [*tokens[:keep], *closing]
        segment_ids += [index] * (keep + len(closing))
    if "cls" not in special:
        segment_ids = [0] * len(ids)
    fill = sequence_length - len(ids)
    return (ids + [special["pad"]] * fill, [1] * len(ids) + [0] * fill,
            segment_ids + [0] * fill)


TAG_IGNORED = -1  # tag id of positions without a loss: later pieces, [CLS], [SEP], padding


def pack_words(word_pieces, tag_ids, sequence_length, special):
    """(ids, mask, tag ids per position, words kept): [CLS] pieces [SEP] for WordPiece,
    pieces <|endoftext|> for SentencePiece; a word without pieces becomes unknown, and
    words that do not fit are left out whole."""
    bert = "cls" in special
    room = sequence_length - (2 if bert else 1)
    ids, tags, kept = ([special["cls"]], [TAG_IGNORED], 0) if bert else ([], [], 0)
    for pieces, tag in zip(word_pieces, tag_ids):
        pieces = list(pieces) or [special["unk"]]
        if len(ids) - bert + len(pieces) > room:
            break
        ids += pieces
        tags += [tag] + [TAG_IGNORED] * (len(pieces) - 1)
        kept += 1
    ids.append(special["sep"] if bert else special["end_of_text"])
    tags.append(TAG_IGNORED)
    fill = sequence_length - len(ids)
    return (ids + [special["pad"]] * fill, [1] * len(ids) + [0] * fill,
            tags + [TAG_IGNORED] * fill, kept)


class GraphPacker:
    """`pack` as TensorFlow ops over ragged token batches (the exported SavedModels').

    Returns int32 (token_ids, padding_mask, segment_ids), `sequence_length` wide.
    """

    def __init__(self, sequence_length, special):
        start, separator, end = _specials(special)
        self._bert = "cls" in special
        self._pad = special["pad"]
        # Padded with -1 so the mask is exact even where the pad id is also a real
        # token (GPT-2 pads with <|endoftext|>).
        self._packer = keras_hub.layers.MultiSegmentPacker(
            sequence_length, start_value=start, end_value=end, sep_value=separator,
            pad_value=-1, truncate="round_robin")

    def __call__(self, *segments):
        # keras-hub tokenizers answer eager calls with Python lists.
        segments = tuple(tf.cast(s if isinstance(s, (tf.Tensor, tf.RaggedTensor))
                                 else tf.ragged.constant(s), tf.int32) for s in segments)
        token_ids, segment_ids = self._packer(segments)
        padding_mask = tf.cast(token_ids >= 0, tf.int32)
        token_ids = tf.where(token_ids >= 0, token_ids, self._pad)
        if not self._bert:
            segment_ids = tf.zeros_like(token_ids)
        return token_ids, padding_mask, tf.cast(segment_ids, tf.int32)
