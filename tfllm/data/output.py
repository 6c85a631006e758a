"""Artifact directories that appear atomically, with a manifest, and re-runs.

A job writes into a temporary sibling and renames it into place when complete,
so a crashed job never leaves a directory that looks finished. A re-run with
the same fingerprint (inputs and flags) is skipped; a different one is refused
unless the user asks to overwrite.
"""

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


def read_manifest(directory):
    path = os.path.join(directory, MANIFEST)
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"{directory} has no {MANIFEST}: it is not a complete tfllm "
                          "artifact (was the job that wrote it interrupted?).") from None
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path} is not valid JSON: {error}.") from None


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


def commit(temporary, output_dir, manifest):
    """Writes the manifest last, then renames the directory into place."""
    output_dir = os.path.abspath(output_dir)
    with open(os.path.join(temporary, MANIFEST), "w") as f:
        json.dump(manifest, f, indent=2, sort_keys=True)
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
