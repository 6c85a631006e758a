"""Tokenizer training and loading: WordPiece for BERT, SentencePiece BPE for GPT.

Training uses keras-hub's WordPiece vocabulary learner (tensorflow-text's
`bert_vocab_from_dataset` underneath) and the SentencePiece trainer. Loading
returns keras-hub tokenizers, whose tensorflow-text ops are the same ones the
exported SavedModels run, so preprocessing and serving tokenize identically.
"""

import io
import os

import keras_hub
import sentencepiece as spm
import tensorflow as tf

from tfllm.errors import ConfigError

WORDPIECE_FILE = "vocab.txt"
SENTENCEPIECE_FILE = "tokenizer.model"
BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
END_OF_TEXT = "<|endoftext|>"


class TextTokenizer:
    """A trained tokenizer: batch tokenization in Python plus its special ids."""

    def __init__(self, path):
        self.path = path
        if path.endswith(SENTENCEPIECE_FILE):
            self.family = "gpt"
            with open(path, "rb") as f:
                proto = f.read()
            self.keras_tokenizer = keras_hub.tokenizers.SentencePieceTokenizer(proto=proto)
            processor = spm.SentencePieceProcessor(model_proto=proto)
            self.special_ids = {"pad": processor.pad_id(), "unk": processor.unk_id(),
                                "end_of_text": processor.eos_id()}
            self.vocab_size = processor.get_piece_size()
        else:
            self.family = "bert"
            self.keras_tokenizer = keras_hub.tokenizers.WordPieceTokenizer(
                vocabulary=path, lowercase=True, strip_accents=True, oov_token="[UNK]")
            vocabulary = self.keras_tokenizer.get_vocabulary()
            missing = [t for t in BERT_SPECIAL_TOKENS if t not in vocabulary]
            if missing:
                raise ConfigError(f"WordPiece vocabulary {path} lacks special token(s) "
                                  f"{', '.join(missing)}.")
            self.special_ids = {token.strip("[]").lower(): vocabulary.index(token)
                                for token in BERT_SPECIAL_TOKENS}
            self.vocab_size = len(vocabulary)

    def tokenize(self, texts):
        """Token ids for a batch of strings, as Python lists."""
        if not texts:
            return []
        ids = self.keras_tokenizer(tf.constant(list(texts)))
        return ids.to_list() if isinstance(ids, tf.RaggedTensor) else [list(r) for r in ids]

    def detokenize(self, ids):
        """Text of one sequence of ids."""
        text = self.keras_tokenizer.detokenize(tf.constant([ids]))
        text = text[0] if isinstance(text, list) else text.numpy()[0]
        return text.decode("utf-8") if isinstance(text, bytes) else text


def load_tokenizer(path):
    if not os.path.exists(path):
        raise ConfigError(f"Tokenizer file {path} does not exist.")
    return TextTokenizer(path)


def train_wordpiece(texts, vocab_size, output_dir):
    """Learns a lowercased WordPiece vocabulary with BERT's special tokens first."""
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(texts), output_signature=tf.TensorSpec([], tf.string))
    path = os.path.join(output_dir, WORDPIECE_FILE)
    keras_hub.tokenizers.compute_word_piece_vocabulary(
        dataset.batch(1000), vocab_size, vocabulary_output_file=path, lowercase=True,
        strip_accents=True, reserved_tokens=list(BERT_SPECIAL_TOKENS))
    return path


def train_sentencepiece(texts, vocab_size, output_dir):
    """Learns a byte-fallback BPE model: no input is ever out of vocabulary.

    Ids: 0 pad, 1 unk, 2 end-of-text (the document separator when packing).
    """
    model = io.BytesIO()
    try:
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts), model_writer=model, vocab_size=vocab_size,
            model_type="bpe", byte_fallback=True, character_coverage=0.9995,
            pad_id=0, unk_id=1, eos_id=2, bos_id=-1, eos_piece=END_OF_TEXT,
            max_sentence_length=1 << 16, split_digits=True,
            num_threads=2, minloglevel=2)
    except RuntimeError as error:
        raise ConfigError(f"SentencePiece could not train a {vocab_size}-token vocabulary "
                          f"on this corpus: {error}. Adjust --vocab_size (byte fallback "
                          "needs 259 ids beyond the learned pieces).") from None
    path = os.path.join(output_dir, SENTENCEPIECE_FILE)
    with open(path, "wb") as f:
        f.write(model.getvalue())
    return path


def train_tokenizer(family, texts, vocab_size, output_dir):
    trainer = train_wordpiece if family == "bert" else train_sentencepiece
    return trainer(texts, vocab_size, output_dir)
