"""Artifact directories that appear atomically, with a manifest, and re-runs.

A job writes into a temporary sibling and renames it into place when complete,
so a crashed job never leaves a directory that looks finished. A re-run with
the same fingerprint (inputs and flags) is skipped; a different one is refused
unless the user asks to overwrite. The manifest is read here, once, into a typed
`Manifest`: nothing else parses manifest.json.
"""

import dataclasses
import glob
import hashlib
import json
import os
import shutil
import uuid

from tfllm.errors import ConfigError

MANIFEST = "manifest.json"


def fingerprint(data):
    """A stable digest of JSON-serialisable inputs and parameters."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode("utf-8")).hexdigest()


@dataclasses.dataclass(frozen=True)
class TokenizerInfo:
    family: str  # bert (WordPiece) or gpt (SentencePiece, GPT-2 BPE)
    vocab_size: int
    special_ids: dict = dataclasses.field(default_factory=dict)
    file: str = ""  # beside the manifest (or in the converted model's directory)


@dataclasses.dataclass(frozen=True)
class Split:
    files: list  # names beside the manifest
    examples: int


@dataclasses.dataclass(frozen=True)
class Manifest:
    """What a data directory holds: the task kind, the feature schema, the tokenizer,
    labels, splits and how it was made. A converted model's stand-in (no data of its
    own) has only `kind`, `tokenizer` and `converted`."""

    kind: str
    tokenizer: TokenizerInfo
    schema: dict = dataclasses.field(default_factory=dict)  # {feature: (dtype, length)}
    labels: list = dataclasses.field(default_factory=list)
    splits: dict = dataclasses.field(default_factory=dict)  # {split: Split}
    config: dict = dataclasses.field(default_factory=dict)  # the job's config, as JSON
    task: dict = dataclasses.field(default_factory=dict)  # the kind's own facts
    statistics: dict = dataclasses.field(default_factory=dict)  # every counter
    clean_corpus: dict = dataclasses.field(default_factory=dict)
    inputs: list = dataclasses.field(default_factory=list)
    beam_args: list = dataclasses.field(default_factory=list)
    fingerprint: str = ""
    tfllm_version: str = ""
    elapsed_seconds: float = 0.0
    documents_per_second: float = 0.0
    converted: bool = False
    directory: str = ""  # where it was read from; not written

    @property
    def examples(self):
        """The example maker's settings as the job wrote them."""
        return self.config.get("examples", {})

    @property
    def source(self):
        return self.config.get("source", {})

    def files(self, split):
        """The split's TFRecord files as paths."""
        return [os.path.join(self.directory, name) for name in self.splits[split].files]

    def to_json(self):
        """The manifest.json layout (the kind's own facts under the kind's name)."""
        data = {
            "kind": self.kind, "fingerprint": self.fingerprint,
            "tfllm_version": self.tfllm_version,
            "schema": {name: {"dtype": dtype, "length": length}
                       for name, (dtype, length) in self.schema.items()},
            "tokenizer": dataclasses.asdict(self.tokenizer), "labels": list(self.labels),
            "splits": {name: dataclasses.asdict(split) for name, split in self.splits.items()},
            "clean_corpus": self.clean_corpus, "statistics": self.statistics,
            "config": self.config, "beam_args": self.beam_args, "inputs": self.inputs,
            "elapsed_seconds": self.elapsed_seconds,
            "documents_per_second": self.documents_per_second}
        if self.task:
            data[self.kind] = self.task
        return data

    @classmethod
    def from_json(cls, data, directory=""):
        return cls(
            kind=data["kind"], tokenizer=TokenizerInfo(**data["tokenizer"]),
            schema={name: (spec["dtype"], spec["length"])
                    for name, spec in data.get("schema", {}).items()},
            labels=list(data.get("labels", [])),
            splits={name: Split(**split) for name, split in data.get("splits", {}).items()},
            config=data.get("config", {}), task=data.get(data["kind"], {}),
            statistics=data.get("statistics", {}), clean_corpus=data.get("clean_corpus", {}),
            inputs=data.get("inputs", []), beam_args=data.get("beam_args", []),
            fingerprint=data.get("fingerprint", ""),
            tfllm_version=data.get("tfllm_version", ""),
            elapsed_seconds=data.get("elapsed_seconds", 0.0),
            documents_per_second=data.get("documents_per_second", 0.0),
            converted=data.get("converted", False), directory=directory)


def read_manifest(directory):
    """The `Manifest` of an artifact directory."""
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{directory} has no {MANIFEST}: it is not a complete tfllm "
                          "artifact (was the job that wrote it interrupted?).") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON: {error}.") from None
    try:
        return Manifest.from_json(data, directory)
    except (KeyError, TypeError) as error:
        raise ConfigError(f"{path} is not a tfllm data manifest ({type(error).__name__}: "
                          f"{error}).") from None


def begin(output_dir, digest, overwrite):
    """Returns a fresh temporary directory to write into, or None if up to date."""
    output_dir = os.path.abspath(output_dir)
    for stale in glob.glob(f"{glob.escape(output_dir)}.tmp-*"):
        shutil.rmtree(stale, ignore_errors=True)  # left by a crashed run
    if os.path.exists(output_dir):
        manifest_path = os.path.join(output_dir, MANIFEST)
        if os.path.exists(manifest_path) and not overwrite:
            with open(manifest_path) as f:
                if json.load(f).get("fingerprint") == digest:
                    return None
        if not overwrite:
            raise ConfigError(f"Output {output_dir} already exists and was made from other "
                              "inputs or flags; pass --overwrite to replace it or choose "
                              "another --output_dir.")
    parent = os.path.dirname(output_dir)
    try:
        os.makedirs(parent, exist_ok=True)
        temporary = f"{output_dir}.tmp-{uuid.uuid4().hex[:8]}"
        os.makedirs(temporary)
    except OSError as error:
        raise ConfigError(f"Cannot write under {parent}: {error.strerror}.") from None
    return temporary


def write_manifest(directory, manifest):
    with open(os.path.join(directory, MANIFEST), "w") as f:
        json.dump(manifest.to_json(), f, indent=2, sort_keys=True)


def commit(temporary, output_dir, manifest):
    """Writes the `Manifest` last, then renames the directory into place."""
    output_dir = os.path.abspath(output_dir)
    write_manifest(temporary, manifest)
    previous = None
    if os.path.exists(output_dir):
        previous = f"{output_dir}.old-{uuid.uuid4().hex[:8]}"
        os.rename(output_dir, previous)
    os.rename(temporary, output_dir)
    if previous:
        shutil.rmtree(previous, ignore_errors=True)


def abort(temporary):
    if temporary:
        shutil.rmtree(temporary, ignore_errors=True)
