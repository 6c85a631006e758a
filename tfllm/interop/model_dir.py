"""A converted model directory, like a trained one to every tfllm command:
config.json (the architecture, the kind, the tokenizer), checkpoints/, the
tokenizer's files under tokenizer/, and converted_from.json (where it came from).
Written under a temporary name and renamed into place, so a failed conversion
leaves nothing behind."""

import contextlib
import datetime
import hashlib
import json
import os
import shutil
import tempfile

import tensorflow as tf

from tfllm import tasks
from tfllm.errors import ConfigError
from tfllm.text import tokenizers

TOKENIZER_DIR = "tokenizer"
SOURCE_FILE = "converted_from.json"


def check_output(path, overwrite):
    if os.path.exists(path) and os.listdir(path) and not overwrite:
        raise ConfigError(f"{path} already exists and is not empty; choose another directory "
                          "or pass --overwrite.")


def write_wordpiece(vocabulary, directory, lowercase, strip_accents):
    with open(os.path.join(directory, tokenizers.WORDPIECE_FILE), "w", encoding="utf-8") as f:
        f.write("".join(f"{token}\n" for token in vocabulary))
    with open(os.path.join(directory, tokenizers.OPTIONS_FILE), "w") as f:
        json.dump({"lowercase": bool(lowercase), "strip_accents": bool(strip_accents)}, f)


def _digest(path):
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


@contextlib.contextmanager
def written_atomically(output, overwrite=False):
    """Yields a temporary directory beside `output` that replaces `output` when the
    block succeeds and is removed when it fails."""
    check_output(output, overwrite)
    parent = os.path.dirname(os.path.abspath(output))
    os.makedirs(parent, exist_ok=True)
    temporary = tempfile.mkdtemp(prefix=f".{os.path.basename(output)}.tmp-", dir=parent)
    try:
        yield temporary
        if os.path.exists(output):
            shutil.rmtree(output)
        os.rename(temporary, output)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise


def write(output, model, write_tokenizer, source, overwrite=False):
    """Writes the converted model at `output`; `write_tokenizer(directory)` writes the
    tokenizer's files and returns the vocabulary's name. Returns the tokenizer."""
    with written_atomically(output, overwrite) as temporary:
        os.makedirs(os.path.join(temporary, TOKENIZER_DIR))
        vocabulary = write_tokenizer(os.path.join(temporary, TOKENIZER_DIR))
        tokenizer = tokenizers.load_tokenizer(os.path.join(temporary, TOKENIZER_DIR, vocabulary))
        if tokenizer.vocab_size > model.config.vocab_size:
            raise ConfigError(f"The tokenizer has {tokenizer.vocab_size} tokens but the model's "
                              f"embedding only {model.config.vocab_size}; nothing was "
                              "converted.")
        tf.train.Checkpoint(model=model).save(os.path.join(temporary, "checkpoints", "ckpt"))
        described = {"file": f"{TOKENIZER_DIR}/{vocabulary}", "vocab_size": tokenizer.vocab_size,
                     "family": tokenizer.family}
        with open(os.path.join(temporary, "config.json"), "w") as f:
            json.dump({"model": model.config.to_dict(),
                       "kind": tasks.pretraining_kind(model.config.family),
                       "tokenizer": described}, f, indent=2)
        files = {name: _digest(os.path.join(source["path"], name))
                 for name in sorted(os.listdir(source["path"]))
                 if os.path.isfile(os.path.join(source["path"], name))}
        with open(os.path.join(temporary, SOURCE_FILE), "w") as f:
            json.dump({**source, "path": os.path.abspath(source["path"]), "sha256": files,
                       "converted_at": datetime.datetime.now(datetime.timezone.utc).isoformat(
                           timespec="seconds")}, f, indent=2)
    return tokenizer
