"""Published-format checkpoints made here with random weights (nothing can be
downloaded): keras-hub presets through keras-hub's own `save_to_preset`, Hugging
Face directories written with Transformers' tensor names and layouts, and a TF1
checkpoint under google-research/bert's variable names. Vocabularies are learned
from the default corpus."""

import glob
import json
import os
import re

import keras
import keras_hub
import numpy as np
import safetensors.numpy
import tensorflow as tf

SHAPE = dict(hidden=32, layers=2, heads=2, intermediate=128, positions=40)  # GPT-2: 4 x


def sentences(count=300):
    texts = []
    for path in sorted(glob.glob("/usr/share/games/fortunes/[a-m]*")):
        if os.path.isfile(path) and not path.endswith(".dat"):
            with open(path, encoding="utf-8", errors="replace") as f:
                texts += [" ".join(t.split()) for t in f.read().split("\n%\n") if t.strip()]
    texts += ["Café déjà vu: naïve Ångström façade", "Ünïcödé — “quotes” and emoji 🙂",
              "MiXeD CaSe WORDS and numbers 12345"]
    return texts[-count:]


def wordpiece_vocabulary(lowercase):
    return keras_hub.tokenizers.compute_word_piece_vocabulary(
        tf.data.Dataset.from_tensor_slices(sentences()), 400, lowercase=lowercase,
        strip_accents=lowercase, reserved_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])


def _byte_to_unicode():
    """GPT-2's reversible byte -> printable character map."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    codes, extra = list(printable), 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes)))


def byte_pair_vocabulary(merges_wanted=150):
    """A real byte-level BPE (vocabulary, merges) learned from the corpus, as GPT-2's."""
    to_unicode = _byte_to_unicode()
    words = {}
    for text in sentences():
        for word in re.findall(r" ?\w+| ?[^\s\w]+|\s+", text):
            symbols = tuple(to_unicode[b] for b in word.encode("utf-8"))
            words[symbols] = words.get(symbols, 0) + 1
    vocabulary = {symbol: i for i, symbol in enumerate(to_unicode.values())}
    merges = []
    for _ in range(merges_wanted):
        pairs = {}
        for symbols, count in words.items():
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] = pairs.get(pair, 0) + count
        if not pairs:
            break
        best = max(pairs, key=pairs.get)
        merges.append(" ".join(best))
        vocabulary["".join(best)] = len(vocabulary)
        merged = {}
        for symbols, count in words.items():
            out, i = [], 0
            while i < len(symbols):
                if symbols[i:i + 2] == best:
                    out.append("".join(best))
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            merged[tuple(out)] = merged.get(tuple(out), 0) + count
        words = merged
    vocabulary["<|endoftext|>"] = len(vocabulary)
    return vocabulary, merges


def keras_hub_bert_preset(directory, vocabulary, lowercase=True):
    """A BertMaskedLM preset with random weights, saved by keras-hub."""
    keras.utils.set_random_seed(1)
    backbone = keras_hub.models.BertBackbone(
        vocabulary_size=len(vocabulary), num_layers=SHAPE["layers"], num_heads=SHAPE["heads"],
        hidden_dim=SHAPE["hidden"], intermediate_dim=SHAPE["intermediate"],
        max_sequence_length=SHAPE["positions"], dropout=0.0)
    task = keras_hub.models.BertMaskedLM(backbone=backbone, preprocessor=None)
    for variable in task.weights:  # LayerNorm and biases away from 1 and 0 too
        variable.assign(variable + np.random.default_rng(len(variable.path)).normal(
            0, 0.3, variable.shape).astype(np.float32))
    task.save_to_preset(directory)
    keras_hub.models.BertTokenizer(vocabulary=vocabulary, lowercase=lowercase,
                                   strip_accents=lowercase).save_to_preset(directory)
    return task


def keras_hub_gpt2_preset(directory, vocabulary, merges):
    keras.utils.set_random_seed(2)
    backbone = keras_hub.models.GPT2Backbone(
        vocabulary_size=len(vocabulary), num_layers=SHAPE["layers"], num_heads=SHAPE["heads"],
        hidden_dim=SHAPE["hidden"], intermediate_dim=SHAPE["intermediate"],
        max_sequence_length=SHAPE["positions"], dropout=0.0)
    for variable in backbone.weights:
        variable.assign(variable + np.random.default_rng(len(variable.path)).normal(
            0, 0.3, variable.shape).astype(np.float32))
    backbone.save_to_preset(directory)
    keras_hub.models.GPT2Tokenizer(vocabulary=vocabulary, merges=merges).save_to_preset(directory)
    return backbone


def hf_bert_tensors(vocab_size, rng, prefix="bert."):
    """BertForPreTraining's tensors: Linear weights [out, in]."""
    h, i, p = SHAPE["hidden"], SHAPE["intermediate"], SHAPE["positions"]
    shapes = {"embeddings.word_embeddings.weight": (vocab_size, h),
              "embeddings.position_embeddings.weight": (p, h),
              "embeddings.token_type_embeddings.weight": (2, h),
              "embeddings.LayerNorm.weight": (h,), "embeddings.LayerNorm.bias": (h,),
              "pooler.dense.weight": (h, h), "pooler.dense.bias": (h,)}
    for n in range(SHAPE["layers"]):
        layer = f"encoder.layer.{n}"
        for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                     "attention.output.dense"):
            shapes[f"{layer}.{name}.weight"], shapes[f"{layer}.{name}.bias"] = (h, h), (h,)
        for name in ("attention.output.LayerNorm", "output.LayerNorm"):
            shapes[f"{layer}.{name}.weight"], shapes[f"{layer}.{name}.bias"] = (h,), (h,)
        shapes[f"{layer}.intermediate.dense.weight"] = (i, h)
        shapes[f"{layer}.intermediate.dense.bias"] = (i,)
        shapes[f"{layer}.output.dense.weight"], shapes[f"{layer}.output.dense.bias"] = (h, i), (h,)
    tensors = {prefix + name: _random(rng, name, shape) for name, shape in shapes.items()}
    heads = {"cls.predictions.transform.dense.weight": (h, h),
             "cls.predictions.transform.dense.bias": (h,),
             "cls.predictions.transform.LayerNorm.weight": (h,),
             "cls.predictions.transform.LayerNorm.bias": (h,),
             "cls.predictions.bias": (vocab_size,),
             "cls.seq_relationship.weight": (2, h), "cls.seq_relationship.bias": (2,)}
    tensors.update({name: _random(rng, name, shape) for name, shape in heads.items()})
    return tensors


def hf_gpt2_tensors(vocab_size, rng):
    """GPT2LMHeadModel's tensors: Conv1D weights [in, out], q/k/v fused in c_attn."""
    h, i, p = SHAPE["hidden"], SHAPE["intermediate"], SHAPE["positions"]
    shapes = {"wte.weight": (vocab_size, h), "wpe.weight": (p, h), "ln_f.weight": (h,),
              "ln_f.bias": (h,)}
    for n in range(SHAPE["layers"]):
        for name, shape in (("ln_1.weight", (h,)), ("ln_1.bias", (h,)), ("ln_2.weight", (h,)),
                            ("ln_2.bias", (h,)), ("attn.c_attn.weight", (h, 3 * h)),
                            ("attn.c_attn.bias", (3 * h,)), ("attn.c_proj.weight", (h, h)),
                            ("attn.c_proj.bias", (h,)), ("mlp.c_fc.weight", (h, i)),
                            ("mlp.c_fc.bias", (i,)), ("mlp.c_proj.weight", (i, h)),
                            ("mlp.c_proj.bias", (h,))):
            shapes[f"h.{n}.{name}"] = shape
    return {f"transformer.{name}": _random(rng, name, shape) for name, shape in shapes.items()}


def _random(rng, name, shape):
    center = 1.0 if name.endswith(("LayerNorm.weight", "ln_1.weight", "ln_2.weight",
                                   "ln_f.weight")) else 0.0
    # Large enough that the exact and tanh GELU, or a wrong epsilon, differ visibly.
    return (center + rng.normal(0, 0.3, shape)).astype(np.float32)


def hf_bert_dir(directory, vocabulary, tensors, lowercase=True, **config):
    os.makedirs(directory, exist_ok=True)
    h = SHAPE["hidden"]
    fields = {"model_type": "bert", "architectures": ["BertForPreTraining"],
              "vocab_size": len(vocabulary), "hidden_size": h,
              "num_hidden_layers": SHAPE["layers"], "num_attention_heads": SHAPE["heads"],
              "intermediate_size": SHAPE["intermediate"], "hidden_act": "gelu",
              "max_position_embeddings": SHAPE["positions"], "type_vocab_size": 2,
              "layer_norm_eps": 1e-12, "hidden_dropout_prob": 0.0,
              "attention_probs_dropout_prob": 0.0, **config}
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(fields, f)
    safetensors.numpy.save_file(tensors, os.path.join(directory, "model.safetensors"))
    with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{t}\n" for t in vocabulary))
    with open(os.path.join(directory, "tokenizer_config.json"), "w") as f:
        json.dump({"do_lower_case": lowercase, "tokenizer_class": "BertTokenizer"}, f)


def hf_gpt2_dir(directory, vocabulary, merges, tensors):
    os.makedirs(directory, exist_ok=True)
    fields = {"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"],
              "vocab_size": len(vocabulary), "n_embd": SHAPE["hidden"],
              "n_layer": SHAPE["layers"], "n_head": SHAPE["heads"], "n_inner": None,
              "n_positions": SHAPE["positions"], "activation_function": "gelu_new",
              "layer_norm_epsilon": 1e-5, "resid_pdrop": 0.0}
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(fields, f)
    safetensors.numpy.save_file(tensors, os.path.join(directory, "model.safetensors"))
    with open(os.path.join(directory, "vocab.json"), "w", encoding="utf-8") as f:
        json.dump(vocabulary, f, ensure_ascii=False)
    with open(os.path.join(directory, "merges.txt"), "w", encoding="utf-8") as f:
        f.write("#version: 0.2\n" + "".join(f"{m}\n" for m in merges))


def tf1_bert_dir(directory, vocabulary, hf_tensors):
    """google-research/bert's layout: [in, out] kernels, NSP weights [2, hidden]."""
    os.makedirs(directory, exist_ok=True)
    values = {}
    for name, value in hf_tensors.items():
        if name == "cls.predictions.bias":
            values["cls/predictions/output_bias"] = value
        elif name.startswith("cls.seq_relationship"):
            leaf = "output_weights" if name.endswith("weight") else "output_bias"
            values[f"cls/seq_relationship/{leaf}"] = value
        else:
            path = re.sub(r"layer\.(\d+)", r"layer_\1", name).split(".")
            leaf = path[-1]
            if path[-2].endswith("_embeddings"):
                values["/".join(path[:-1])] = value
            elif path[-2] == "LayerNorm":
                values["/".join(path[:-1] + ["gamma" if leaf == "weight" else "beta"])] = value
            else:
                values["/".join(path[:-1] + ["kernel" if leaf == "weight" else "bias"])] = \
                    value.T if leaf == "weight" else value
    graph = tf.Graph()
    with graph.as_default():
        variables = [tf.compat.v1.get_variable(name, initializer=tf.constant(value))
                     for name, value in values.items()]
        variables.append(tf.compat.v1.get_variable("global_step", initializer=tf.constant(7)))
        saver = tf.compat.v1.train.Saver(variables)
        with tf.compat.v1.Session() as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, os.path.join(directory, "bert_model.ckpt"))
    h = SHAPE["hidden"]
    with open(os.path.join(directory, "bert_config.json"), "w") as f:
        json.dump({"vocab_size": len(vocabulary), "hidden_size": h,
                   "num_hidden_layers": SHAPE["layers"], "num_attention_heads": SHAPE["heads"],
                   "intermediate_size": SHAPE["intermediate"], "hidden_act": "gelu",
                   "max_position_embeddings": SHAPE["positions"], "type_vocab_size": 2,
                   "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
                   "initializer_range": 0.02}, f)
    with open(os.path.join(directory, "vocab.txt"), "w", encoding="utf-8") as f:
        f.write("".join(f"{t}\n" for t in vocabulary))


def multilingual_sentences(count=300):
    """Real sentences with accents, CJK and emoji: fortunes, and the translated messages
    of Debian's own coreutils and dpkg catalogs (Chinese, Japanese, Korean, Russian,
    Greek, Vietnamese, Arabic, French, German: tabs, newlines, no-break spaces, digits).
    Real text has few emoji, so some sentences get one appended."""
    import gettext
    texts = []
    for language in ("zh_CN", "ja", "ko", "ru", "el", "vi", "ar", "fr", "de"):
        for domain in ("coreutils", "dpkg", "apt"):
            path = f"/usr/share/locale/{language}/LC_MESSAGES/{domain}.mo"
            if os.path.exists(path):
                with open(path, "rb") as f:
                    catalog = gettext.GNUTranslations(f)._catalog
                texts += [text for key, text in sorted(catalog.items(), key=lambda kv: str(kv))
                          if key and isinstance(text, str) and 10 < len(text) < 400][:8]
    english = sentences(count)
    texts = texts[:count * 2 // 3]
    texts += english[:count - len(texts)]
    emoji = ["🙂", "👍🏽", "🇫🇷", "❤️", "🤖 ok", "家族👨‍👩‍👧"]
    return [text + " " + emoji[i % len(emoji)] if i % 7 == 0 else text
            for i, text in enumerate(texts)]


def byte_level_tokenizer(kind, path, vocab_size=400):
    """A tokenizer.json trained by the `tokenizers` library in the layout of Llama 3
    (split pattern, ignore_merges), Qwen2 (NFC, its pattern) or SmolLM2 (single digits,
    GPT-2's byte-level pattern), with chat special tokens; returns its path."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from tokenizers import trainers

    from tfllm.text import byte_level_bpe
    tokenizer = Tokenizer(models.BPE())
    if kind == "qwen2":
        tokenizer.normalizer = normalizers.NFC()
    if kind == "smollm2":
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)])
    else:
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(byte_level_bpe.KNOWN_PATTERNS[kind]), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(multilingual_sentences(), trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    spec = json.loads(tokenizer.to_str())
    spec["model"]["ignore_merges"] = kind == "llama3"
    with open(path, "w", encoding="utf-8") as f:
        json.dump(spec, f, ensure_ascii=False)
    return str(path)
