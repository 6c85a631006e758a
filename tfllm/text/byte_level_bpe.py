"""Byte-level BPE as Llama 3, Qwen2 and SmolLM2 publish it (`tokenizer.json`), run by
TensorFlow ops, so Python, the data job and exported SavedModels all tokenize as the
`tokenizers` library does.

keras-hub's `BytePairTokenizer` does the merging (its graph BPE with a cache, reused
here), but it splits words with GPT-2's pattern in graphs and with Llama 3's through the
`tokenizers` library in eager code, whatever the vocabulary was trained with. This class
runs the pre-tokenizer the file names instead. RE2 (TensorFlow's regex engine) has no
look-ahead and a narrower `\\s` than Oniguruma (the `tokenizers` library's), so the
published patterns are rewritten exactly (see `_Pattern`) rather than passed through.
"""

import json
import re

import keras_hub
import tensorflow as tf
import tensorflow_text as tf_text
from keras_hub.src.tokenizers.byte_pair_tokenizer import bytes_to_unicode

from tfllm.errors import ConfigError

FILE = "tokenizer.json"
# Oniguruma's \s: Unicode White_Space (RE2's \s is ASCII only).
_WHITESPACE = (r"\t\n\x{0b}\x{0c}\r \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}"
               r"\x{2029}\x{202f}\x{205f}\x{3000}")
# Never in UTF-8 text, so it can mark a split point.
_MARK = b"\xff"
_LOOKAHEAD = r"\s+(?!\S)|"
GPT2_PATTERN = r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"
# The pre-tokenizer patterns this module runs: each checked against `tokenizers`.
KNOWN_PATTERNS = {
    "llama3": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}"
              r"\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "qwen2": r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}"
             r"\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+",
    "gpt2": GPT2_PATTERN,
}
_NORMALIZERS = {"NFC", "NFKC", "NFD", "NFKD"}


class _Pattern:
    """A published split pattern as RE2 runs it.

    Every known pattern ends in `\\s+(?!\\S)|\\s+`: a whitespace run followed by text
    gives all but its last character, which then starts the next word (" world").
    That is a split point before the last character of every run of two or more
    followed by non-space, unless an earlier alternative (`\\s*[\\r\\n]+`) already
    takes the run up to a final newline. Split there first and, inside the pieces,
    `\\s+` alone matches what the look-ahead did.
    """

    def __init__(self, pattern):
        self.main = _re2(pattern.replace(_LOOKAHEAD, ""))
        last = _WHITESPACE.replace(r"\n", "").replace(r"\r", "") \
            if r"\s*[\r\n]+" in pattern else _WHITESPACE
        self.run_end = f"([{_WHITESPACE}])([{last}])([^{_WHITESPACE}])"

    def split(self, texts):
        """Words of a flat string tensor: a ragged [text, word] tensor."""
        marked = tf.strings.regex_replace(texts, self.run_end, b"\\1" + _MARK + b"\\2\\3")
        pieces = tf.strings.split(marked, sep=_MARK)
        words = tf_text.regex_split(pieces.flat_values, self.main, self.main)
        return tf.RaggedTensor.from_row_splits(
            words.flat_values, tf.gather(words.row_splits, pieces.row_splits))


def _re2(pattern):
    """`pattern` with Oniguruma's Unicode `\\s` spelled out for RE2."""
    out, in_class, i = [], False, 0
    while i < len(pattern):
        token = pattern[i:i + 2] if pattern[i] == "\\" else pattern[i]
        if token == r"\s":
            out.append(_WHITESPACE if in_class else f"[{_WHITESPACE}]")
        elif token == r"\S":
            out.append(f"[^{_WHITESPACE}]")
        else:
            out.append(token)
            in_class = (in_class or token == "[") and token != "]"
        i += len(token)
    return "".join(out)


def _refuse(path, what):
    raise ConfigError(f"{path}: {what}. tfllm runs the byte-level BPE tokenizers of Llama 3, "
                      "Qwen2 and SmolLM2 (a BPE model, an optional NFC/NFKC normalizer, "
                      "their split patterns and a ByteLevel pre-tokenizer); this one cannot "
                      "be reproduced exactly, so it is refused and nothing is written.")


def read_spec(path):
    """What tfllm needs from a tokenizer.json: vocabulary, merges, added tokens,
    normalizer and pre-tokenizer steps. Refuses, in one paragraph, what it cannot run."""
    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
    except (OSError, ValueError) as error:
        raise ConfigError(f"{path} is not a readable tokenizer.json ({error}).") from None
    model = spec.get("model") or {}
    if model.get("type") != "BPE":
        _refuse(path, f"its model is {model.get('type')!r}, not BPE")
    if model.get("continuing_subword_prefix") or model.get("end_of_word_suffix") \
            or model.get("byte_fallback") or model.get("dropout"):
        _refuse(path, "its BPE uses subword prefixes, suffixes, byte fallback or dropout")
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    added = spec.get("added_tokens") or []
    for token in added:
        if token.get("lstrip") or token.get("rstrip") or token.get("single_word"):
            _refuse(path, f"added token {token['content']!r} strips or matches single words")
    return {"vocabulary": model.get("vocab") or {}, "merges": merges,
            "ignore_merges": bool(model.get("ignore_merges")),
            "added_tokens": {token["content"]: token["id"] for token in added},
            "normalizers": _normalizers(spec.get("normalizer"), path),
            "steps": _pre_tokenizer(spec.get("pre_tokenizer"), path)}


def _normalizers(spec, path):
    if spec is None:
        return []
    parts = spec.get("normalizers") if spec.get("type") == "Sequence" else [spec]
    if any(part.get("type") not in _NORMALIZERS for part in parts):
        _refuse(path, f"its normalizer is {json.dumps(spec)}")
    return [part["type"] for part in parts]


def _pre_tokenizer(spec, path):
    """["digits"] and the split pattern's name, in order."""
    parts = (spec or {}).get("pretokenizers") if (spec or {}).get("type") == "Sequence" \
        else [spec or {}]
    steps = []
    for i, part in enumerate(parts):
        part_type = part.get("type")
        if part_type == "Digits" and part.get("individual_digits") and not steps:
            steps.append("digits")
        elif part_type == "Split" and part.get("behavior") == "Isolated" and not part.get("invert"):
            pattern = (part.get("pattern") or {}).get("Regex")
            named = [name for name, known in KNOWN_PATTERNS.items() if known == pattern]
            if not named:
                _refuse(path, f"its split pattern {pattern!r} is not one tfllm knows")
            steps.append(named[0])
        elif part_type == "ByteLevel" and i == len(parts) - 1 and not part.get("add_prefix_space"):
            if part.get("use_regex", True):
                steps.append("gpt2")
        else:
            _refuse(path, f"its pre-tokenizer is {json.dumps(spec)}")
    if not steps or steps[-1] == "digits" or parts[-1].get("type") != "ByteLevel":
        _refuse(path, f"its pre-tokenizer is {json.dumps(spec)}")
    return steps


class ByteLevelBpeTokenizer(keras_hub.tokenizers.BytePairTokenizer):
    """The byte-level BPE of a tokenizer.json, as TensorFlow ops in every mode.

    Added tokens are matched first and never split; with `ignore_merges` (Llama 3) a
    word that is itself in the vocabulary is one token. No special tokens are added
    around the text (`add_special_tokens=False`; templates add them).
    """

    def __init__(self, vocabulary=None, merges=None, added_tokens=None, ignore_merges=False,
                 normalizers=(), steps=("gpt2",), **kwargs):
        self.added_tokens = dict(added_tokens or {})
        self.ignore_merges = ignore_merges
        self.normalizers = list(normalizers)
        self.steps = list(steps)
        vocabulary = dict(vocabulary or {})
        vocabulary.update(self.added_tokens)
        super().__init__(vocabulary=vocabulary, merges=merges,
                         _allow_python_workflow=False, **kwargs)
        self._patterns = [_Pattern(KNOWN_PATTERNS[s]) for s in self.steps if s != "digits"]
        self._added = None
        if self.added_tokens:
            contents = sorted(self.added_tokens, key=len, reverse=True)
            self._added = "|".join(re.escape(content) for content in contents)
        # Whole words that skip merging: added tokens, and (ignore_merges) every
        # vocabulary entry, keyed by the bytes it stands for.
        direct = dict(self.added_tokens)
        if ignore_merges:
            to_byte = {char: byte for byte, char in zip(*bytes_to_unicode())}
            for token, index in vocabulary.items():
                if token not in self.added_tokens and all(c in to_byte for c in token):
                    direct.setdefault(b"".join(to_byte[c] for c in token), index)
        keys = [k.encode("utf-8") if isinstance(k, str) else k for k in direct]
        self._direct = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(tf.constant(keys, tf.string),
                                                tf.constant(list(direct.values()), tf.int32)),
            default_value=-1)

    @classmethod
    def from_file(cls, path):
        return cls(**read_spec(path))

    def words(self, texts):
        """A ragged [text, word] tensor: added tokens whole, the rest pre-tokenized."""
        for form in self.normalizers:
            texts = tf_text.normalize_utf8(texts, form)
        if self._added:
            pieces = tf_text.regex_split(texts, self._added, self._added)
        else:
            pieces = tf.RaggedTensor.from_tensor(texts[:, tf.newaxis])
        flat = pieces.flat_values
        added = (tf.strings.regex_full_match(flat, self._added) if self._added
                 else tf.zeros_like(flat, tf.bool))
        words = tf.RaggedTensor.from_tensor(tf.where(added, "", flat)[:, tf.newaxis])
        if "digits" in self.steps:
            words = _split_each(words, lambda t: tf_text.regex_split(t, r"\p{N}", r"\p{N}"))
        for pattern in self._patterns:
            words = _split_each(words, pattern.split)
        words = tf.concat([words, tf.ragged.boolean_mask(flat[:, tf.newaxis],
                                                         added[:, tf.newaxis])], axis=1)
        return tf.RaggedTensor.from_row_splits(
            words.flat_values, tf.gather(words.row_splits, pieces.row_splits))

    def tokenize(self, inputs):
        inputs = tf.convert_to_tensor(inputs, tf.string)
        unbatched = inputs.shape.rank == 0
        texts = inputs[tf.newaxis] if unbatched else inputs
        words = self.words(texts)
        flat = words.flat_values
        direct = self._direct.lookup(flat)
        merge = tf.equal(direct, -1)
        to_merge = tf.where(merge, flat, "")
        cached = self.cache.lookup(to_merge)
        unseen = tf.equal(cached, "") & tf.not_equal(to_merge, "")

        def merge_unseen():
            self._bpe_merge_and_update_cache_tf(tf.boolean_mask(to_merge, unseen))
            return self.cache.lookup(to_merge)

        merged = tf.cond(tf.reduce_any(unseen), merge_unseen, lambda: cached)
        pieces = tf.strings.split(merged, sep=" ")
        keep = tf.repeat(merge, pieces.row_lengths())
        merged_ids = tf.RaggedTensor.from_row_lengths(
            self.token_to_id_map.lookup(tf.boolean_mask(pieces.flat_values, keep)),
            tf.where(merge, pieces.row_lengths(), 0))
        direct_ids = tf.RaggedTensor.from_row_lengths(
            tf.boolean_mask(direct, ~merge), tf.cast(~merge, tf.int64))
        ids = tf.concat([tf.cast(merged_ids, tf.int32), direct_ids], axis=1)
        ids = tf.RaggedTensor.from_row_splits(ids.flat_values,
                                              tf.gather(ids.row_splits, words.row_splits))
        if self.sequence_length:
            ids = ids.to_tensor(shape=[None, self.sequence_length])
        return ids[0] if unbatched else ids

    def detokenize(self, inputs):
        return self._detokenize_tf(inputs)

    def get_config(self):
        config = super().get_config()
        config.update(added_tokens=self.added_tokens, ignore_merges=self.ignore_merges,
                      normalizers=self.normalizers, steps=self.steps)
        return config


def _split_each(words, split):
    """Applies `split` (flat strings -> ragged) to every word of a ragged [row, word]."""
    parts = split(words.flat_values)
    return tf.RaggedTensor.from_row_splits(
        parts.flat_values, tf.gather(parts.row_splits, words.row_splits))
