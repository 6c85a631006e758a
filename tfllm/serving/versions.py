"""TF Serving's base-path layout: `BASE/NAME/VERSION/` with increasing integer versions.

A version directory is written under a hidden temporary name and renamed into
place when complete, so a server polling the base path never loads half a model
(TF Serving ignores names that are not integers).
"""

import os
import re
import shutil
import uuid

from tfllm.errors import ConfigError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_model_name(name):
    """Model names become path components: no separators, dots-only or hidden names."""
    if not _NAME.match(name or "") or set(name) == {"."}:
        raise ConfigError(f"Model name {name!r} is not allowed: use 1-64 letters, digits, "
                          "'_', '-' or '.', starting with a letter or digit.")
    return name


def versions(model_base):
    """The complete versions under a model's base path, ascending."""
    if not os.path.isdir(model_base):
        return []
    return sorted(int(entry) for entry in os.listdir(model_base) if entry.isdigit())


def begin_version(export_base, name):
    """(temporary directory to write into, the version it will become)."""
    model_base = os.path.join(export_base, check_model_name(name))
    os.makedirs(model_base, exist_ok=True)
    for stale in os.listdir(model_base):
        if stale.startswith(".tmp-"):  # left by an interrupted export
            shutil.rmtree(os.path.join(model_base, stale), ignore_errors=True)
    version = (versions(model_base) or [0])[-1] + 1
    temporary = os.path.join(model_base, f".tmp-{version}-{uuid.uuid4().hex[:8]}")
    os.makedirs(temporary)
    return temporary, version


def commit_version(temporary, version):
    """Renames the finished export into place; refuses to replace an existing version."""
    final = os.path.join(os.path.dirname(temporary), str(version))
    if os.path.exists(final):
        shutil.rmtree(temporary, ignore_errors=True)
        raise ConfigError(f"Version {final} appeared while exporting; export again.")
    os.rename(temporary, final)
    return final
