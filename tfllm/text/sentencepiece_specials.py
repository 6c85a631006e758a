"""SentencePiece with its control pieces written in text read as their ids.

Llama 2, TinyLlama, Mistral and Gemma chat templates write `<s>`, `</s>` or `<bos>` into
the text they render; Hugging Face's tokenizers read those as the special ids, but
SentencePiece never matches control pieces in text (it spells them out as `<`, `s`, `>`).
keras-hub's `SentencePieceTokenizer` has no such matching either, so this subclass splits
the text on the control pieces first, tokenizes the rest as SentencePiece does (each
stretch with its dummy prefix, as Hugging Face's legacy Llama tokenizer does) and puts
the ids in between. TensorFlow ops throughout, so exported graphs tokenize alike.
"""

import re

import keras_hub
import tensorflow as tf
import tensorflow_text as tf_text


def control_pieces(processor):
    """{piece: id} of a SentencePieceProcessor's control and unknown pieces (`<s>`, `</s>`,
    `<unk>`, ...)."""
    return {processor.id_to_piece(i): i for i in range(processor.get_piece_size())
            if processor.is_control(i) or processor.is_unknown(i)}


class SentencePieceWithSpecialTokens(keras_hub.tokenizers.SentencePieceTokenizer):
    """keras-hub's SentencePiece tokenizer that reads control pieces in text as their ids."""

    def __init__(self, proto=None, specials=None, **kwargs):
        super().__init__(proto=proto, **kwargs)
        self.specials = dict(specials or {})
        if not self.specials:
            return
        contents = sorted(self.specials, key=len, reverse=True)
        self._pattern = "|".join(re.escape(content) for content in contents)
        self._ids = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(list(self.specials), tf.string),
                                                tf.constant(list(self.specials.values()),
                                                            tf.int32)), default_value=-1)

    def tokenize(self, inputs):
        if not self.specials:
            return super().tokenize(inputs)
        inputs = tf.convert_to_tensor(inputs, tf.string)
        scalar = inputs.shape.rank == 0
        texts = inputs[tf.newaxis] if scalar else inputs
        pieces = tf_text.regex_split(texts, self._pattern, self._pattern)
        flat = pieces.flat_values
        special = tf.strings.regex_full_match(flat, self._pattern)
        self._maybe_initialized_tf()  # tf_text's SentencePiece op: TF in every mode
        ordinary = self._sentence_piece.tokenize(tf.where(special, "", flat))
        ids = tf.concat([tf.cast(ordinary, tf.int32), tf.ragged.boolean_mask(
            self._ids.lookup(flat)[:, tf.newaxis], special[:, tf.newaxis])], axis=1)
        ids = tf.RaggedTensor.from_row_splits(ids.flat_values,
                                              tf.gather(ids.row_splits, pieces.row_splits))
        return ids[0] if scalar else ids

    def get_config(self):
        return {**super().get_config(), "specials": self.specials}
