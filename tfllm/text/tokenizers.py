"""Tokenizers: WordPiece for BERT, SentencePiece BPE for GPT (both trained here), and
the published vocabularies of converted checkpoints (BERT's vocab.txt with its
casing, GPT-2's byte-level BPE vocab.json + merges.txt, SentencePiece tokenizer.model
of Llama 2 / Mistral / Gemma, byte-level BPE tokenizer.json of Llama 3 / Qwen2 /
SmolLM2 with their tokenizer_config.json and generation_config.json).

Training learns from word counts, which the data job computes with a Beam combine
over the whole corpus: tensorflow-text's WordPiece learner (what keras-hub's
`compute_word_piece_vocabulary` runs) and SentencePiece's trainer on TSV counts.
Loading
returns keras-hub tokenizers, whose tensorflow-text ops are the same ones the
exported SavedModels run, so preprocessing and serving tokenize identically.
"""

import collections
import io
import itertools
import json
import os
import shutil

import keras_hub
import sentencepiece as spm
import tensorflow as tf
from keras_hub.src.tokenizers.word_piece_tokenizer import pretokenize

from tfllm.errors import ConfigError
from tfllm.text import byte_level_bpe, chat_templates, sentencepiece_specials, wordpiece_learning

WORDPIECE_FILE = "vocab.txt"
SENTENCEPIECE_FILE = "tokenizer.model"
BPE_VOCABULARY_FILE, BPE_MERGES_FILE = "vocab.json", "merges.txt"
BYTE_LEVEL_FILE = byte_level_bpe.FILE
# Published beside a tokenizer.json: its special tokens, and the ids generation stops at.
TOKENIZER_CONFIG_FILE, GENERATION_CONFIG_FILE = "tokenizer_config.json", "generation_config.json"
# Beside a published WordPiece vocabulary: its casing ({"lowercase": .., "strip_accents": ..}).
OPTIONS_FILE = "tokenizer_options.json"
BERT_SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
END_OF_TEXT = "<|endoftext|>"
# tfllm's SentencePiece recipe: byte-fallback BPE; 0 pad, 1 unk, 2 end-of-text.
SENTENCEPIECE_OPTIONS = dict(
    model_type="bpe", byte_fallback=True, character_coverage=0.9995, pad_id=0, unk_id=1,
    eos_id=2, bos_id=-1, eos_piece=END_OF_TEXT, max_sentence_length=1 << 16,
    split_digits=True, num_threads=2, minloglevel=2)


class TextTokenizer:
    """A tokenizer: batch tokenization in Python plus its special ids."""

    def __init__(self, path):
        self.path = path
        self.stop_ids = []  # what generation stops at: a decoder's end of text, or more
        if path.endswith(SENTENCEPIECE_FILE):
            self.family = "gpt"
            with open(path, "rb") as f:
                proto = f.read()
            processor = spm.SentencePieceProcessor(model_proto=proto)
            # Published models (Llama 2, Mistral, Gemma: a begin-of-text piece, which
            # tfllm's own recipe lacks) read their control pieces in text as the ids, as
            # their chat templates and Hugging Face's tokenizers expect.
            specials = (sentencepiece_specials.control_pieces(processor)
                        if processor.bos_id() >= 0 else {})
            self.keras_tokenizer = sentencepiece_specials.SentencePieceWithSpecialTokens(
                proto=proto, specials=specials)
            if processor.eos_id() < 0:
                raise ConfigError(f"SentencePiece model {path} has no end-of-text (eos) "
                                  "piece; generation could not stop.")
            # Published ones (Llama 2, Mistral) have no padding piece: <unk> pads, as
            # keras-hub's LlamaTokenizer does; the mask hides it.
            pad = processor.pad_id() if processor.pad_id() >= 0 else processor.unk_id()
            self.special_ids = {"pad": pad, "unk": processor.unk_id(),
                                "end_of_text": processor.eos_id()}
            self.vocab_size = processor.get_piece_size()
        elif path.endswith(BYTE_LEVEL_FILE):
            self.family = "gpt"
            self.keras_tokenizer = byte_level_bpe.ByteLevelBpeTokenizer.from_file(path)
            settings = _json_beside(path, TOKENIZER_CONFIG_FILE)
            end_of_text = self._token_id(settings.get("eos_token") or END_OF_TEXT)
            pad = self._token_id(settings["pad_token"]) if settings.get("pad_token") \
                else end_of_text
            self.special_ids = {"pad": pad, "unk": end_of_text, "end_of_text": end_of_text}
            stops = _json_beside(path, GENERATION_CONFIG_FILE).get("eos_token_id") or []
            self.stop_ids = sorted({end_of_text, *(stops if isinstance(stops, list)
                                                   else [stops])})
            self.vocab_size = max(self.keras_tokenizer.vocabulary.values()) + 1
        elif path.endswith(BPE_VOCABULARY_FILE):
            self.family = "gpt"
            merges = os.path.join(os.path.dirname(path), BPE_MERGES_FILE)
            if not os.path.exists(merges):
                raise ConfigError(f"GPT-2 vocabulary {path} needs {BPE_MERGES_FILE} beside it.")
            self.keras_tokenizer = keras_hub.tokenizers.GPT2Tokenizer(vocabulary=path,
                                                                      merges=merges)
            vocabulary = self.keras_tokenizer.get_vocabulary()
            if END_OF_TEXT not in vocabulary:
                raise ConfigError(f"GPT-2 vocabulary {path} lacks {END_OF_TEXT}.")
            end_of_text = self.keras_tokenizer.token_to_id(END_OF_TEXT)
            # GPT-2 has no padding or unknown token: <|endoftext|> pads (as in keras-hub).
            self.special_ids = {"pad": end_of_text, "unk": end_of_text,
                                "end_of_text": end_of_text}
            self.vocab_size = len(vocabulary)
        else:
            self.family = "bert"
            self.options = wordpiece_options(path)
            self.keras_tokenizer = keras_hub.tokenizers.WordPieceTokenizer(
                vocabulary=path, oov_token="[UNK]", **self.options)
            vocabulary = self.keras_tokenizer.get_vocabulary()
            missing = [t for t in BERT_SPECIAL_TOKENS if t not in vocabulary]
            if missing:
                raise ConfigError(f"WordPiece vocabulary {path} lacks special token(s) "
                                  f"{', '.join(missing)}.")
            self.special_ids = {token.strip("[]").lower(): vocabulary.index(token)
                                for token in BERT_SPECIAL_TOKENS}
            self.vocab_size = len(vocabulary)

        if self.family == "gpt" and not self.stop_ids:
            self.stop_ids = [self.special_ids["end_of_text"]]

    def _token_id(self, token):
        """The id of a tokenizer_config.json token (a string or {"content": ...})."""
        content = token.get("content") if isinstance(token, dict) else token
        index = self.keras_tokenizer.vocabulary.get(content)
        if index is None:
            raise ConfigError(f"{self.path}: special token {content!r} (from "
                              f"{TOKENIZER_CONFIG_FILE}) is not in the vocabulary.")
        return index

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


def wordpiece_options(path):
    """The casing of a WordPiece vocabulary: tfllm's own are lowercased without
    accents; a published one says so in OPTIONS_FILE beside it."""
    options = {"lowercase": True, "strip_accents": True}
    sidecar = os.path.join(os.path.dirname(path), OPTIONS_FILE)
    if os.path.exists(sidecar):
        with open(sidecar) as f:
            options.update(json.load(f))
    return options


def _json_beside(path, name):
    """A published JSON file beside the tokenizer at `path`, or {}."""
    beside = os.path.join(os.path.dirname(path), name)
    if not os.path.exists(beside):
        return {}
    try:
        with open(beside, encoding="utf-8") as f:
            return json.load(f)
    except ValueError as error:
        raise ConfigError(f"{beside} is not readable JSON ({error}).") from None


def tokenizer_files(path):
    """The files that make up the tokenizer at `path` (the vocabulary first), with a
    converted model's own chat format."""
    directory, name = os.path.split(path)
    companions = {BPE_VOCABULARY_FILE: [BPE_MERGES_FILE], SENTENCEPIECE_FILE: [],
                  BYTE_LEVEL_FILE: [TOKENIZER_CONFIG_FILE, GENERATION_CONFIG_FILE]}.get(
        name, [OPTIONS_FILE]) + [chat_templates.KEPT_FILE]
    return [path] + [os.path.join(directory, companion) for companion in companions
                     if os.path.exists(os.path.join(directory, companion))]


def copy_tokenizer(path, directory):
    """Copies the tokenizer's files into `directory`; returns the new vocabulary path."""
    for source in tokenizer_files(path):
        shutil.copyfile(source, os.path.join(directory, os.path.basename(source)))
    return os.path.join(directory, os.path.basename(path))


def resolve(path):
    """A tokenizer path: a vocabulary file, or a directory holding one (a converted
    model directory names its tokenizer in config.json)."""
    if os.path.isdir(path):
        config = os.path.join(path, "config.json")
        if os.path.exists(config):
            with open(config) as f:
                described = json.load(f).get("tokenizer", {})
            if "file" in described:
                return os.path.join(path, described["file"])
        names = (WORDPIECE_FILE, SENTENCEPIECE_FILE, BPE_VOCABULARY_FILE, BYTE_LEVEL_FILE)
        for name in names:
            if os.path.exists(os.path.join(path, name)):
                return os.path.join(path, name)
        raise ConfigError(f"Directory {path} holds no tokenizer ({', '.join(names)}).")
    return path


def load_tokenizer(path):
    path = resolve(path)
    if not os.path.exists(path):
        raise ConfigError(f"Tokenizer file {path} does not exist.")
    return TextTokenizer(path)


def count_words(family, texts):
    """Word counts of `texts` as the family's trainer splits words (see `words`).
    Counts add up across batches and workers, so the data job can count a corpus of
    any size with a Beam combine."""
    return collections.Counter(words(family, texts))


def words(family, texts):
    """The words of `texts` as the family's trainer splits them: BERT's basic
    tokenization (keras-hub's `pretokenize`: lowercase, accents stripped, split on
    whitespace, punctuation and CJK characters, as `compute_word_piece_vocabulary`
    does) or SentencePiece's split on whitespace. An iterator, so that a Counter
    takes it in C rather than merging a table per batch in Python."""
    texts = list(texts)
    if not texts:
        return iter(())
    if family == "gpt":
        return itertools.chain.from_iterable(map(str.split, texts))
    pieces = pretokenize(tf.constant(texts), lowercase=True, strip_accents=True, split=True,
                         split_on_cjk=True)
    return (word.decode("utf-8") for word in pieces.flat_values.numpy())


def train_wordpiece(word_counts, vocab_size, output_dir):
    """Learns a lowercased WordPiece vocabulary with BERT's special tokens first.

    tensorflow-text's learner (with a cheaper threshold search, same result), called
    as keras-hub's `compute_word_piece_vocabulary` calls it, but on counts (sorted, so
    the result never depends on their order).
    """
    vocabulary = wordpiece_learning.learn(sorted(word_counts.items()), vocab_size,
                                          list(BERT_SPECIAL_TOKENS))
    path = os.path.join(output_dir, WORDPIECE_FILE)
    with open(path, "w", encoding="utf-8") as f:
        f.write("".join(f"{token}\n" for token in vocabulary[:vocab_size]))
    return path


def train_sentencepiece(word_counts, vocab_size, output_dir):
    """Learns a byte-fallback BPE model from word counts (SentencePiece's TSV input):
    no input is ever out of vocabulary.

    Ids: 0 pad, 1 unk, 2 end-of-text (the document separator when packing).
    """
    model = io.BytesIO()
    # Counts go in as "word<TAB>count" sentences, not as a file: a file's path would
    # be recorded in the model, and the same counts would give different bytes.
    rows = (f"{word}\t{count}" for word, count in sorted(word_counts.items()))
    try:
        spm.SentencePieceTrainer.train(sentence_iterator=rows, input_format="tsv",
                                       model_writer=model, vocab_size=vocab_size,
                                       **SENTENCEPIECE_OPTIONS)
    except RuntimeError as error:
        raise ConfigError(f"SentencePiece could not train a {vocab_size}-token vocabulary "
                          f"on this corpus: {error}. Adjust --vocab_size (byte fallback "
                          "needs 259 ids beyond the learned pieces).") from None
    path = os.path.join(output_dir, SENTENCEPIECE_FILE)
    with open(path, "wb") as f:
        f.write(model.getvalue())
    return path


def train_from_counts(family, word_counts, vocab_size, output_dir):
    trainer = train_wordpiece if family == "bert" else train_sentencepiece
    return trainer(word_counts, vocab_size, output_dir)


def train_tokenizer(family, texts, vocab_size, output_dir):
    """A tokenizer trained on texts held in memory (tests, benchmarks, small corpora)."""
    return train_from_counts(family, count_words(family, texts), vocab_size, output_dir)
