"""The task registry: the one place that maps a kind (--kind, a manifest's "kind") to
the Task that owns it.

A kind is one module here with a `Task` subclass and a line in `BUILT_IN`. A kind
defined in another package registers with `@tasks.register` when imported, and every
tfllm command finds it through the `tfllm.tasks` entry-point group (in that package's
pyproject.toml: `[project.entry-points."tfllm.tasks"] mykind = "mypackage.tasks:MyTask"`).
Modules are imported on first use, so the registry costs nothing until a kind is
asked for.
"""

import importlib
import importlib.metadata

from tfllm.errors import ConfigError

BUILT_IN = {"bert": "masked_lm", "gpt": "causal_lm", "classify": "classification",
            "regress": "regression", "tag": "tagging", "qa": "question_answering"}
ENTRY_POINTS = "tfllm.tasks"
_REGISTERED = {}


def _plugins():
    return {point.name: point for point in importlib.metadata.entry_points(group=ENTRY_POINTS)}


def register(task_class):
    """Class decorator: makes `task_class.kind` a kind every job knows."""
    _REGISTERED[task_class.kind] = task_class
    return task_class


def kinds():
    """Every known kind: built-in ones first, then registered and installed ones."""
    known = dict.fromkeys([*BUILT_IN, *_REGISTERED, *_plugins()])
    return tuple(known)


def get(kind):
    """The Task class of `kind`."""
    if kind not in _REGISTERED and kind in BUILT_IN:
        importlib.import_module(f"tfllm.tasks.{BUILT_IN[kind]}")
    elif kind not in _REGISTERED and kind in _plugins():
        loaded = _plugins()[kind].load()  # a module that registers, or the Task class
        if isinstance(loaded, type) and getattr(loaded, "kind", None) == kind:
            register(loaded)
    if kind not in _REGISTERED:
        raise ConfigError(f"Unknown task kind {kind!r}; expected one of "
                          f"{', '.join(kinds())}.")
    return _REGISTERED[kind]


def all_tasks():
    """Every known Task class."""
    return [get(kind) for kind in kinds()]


def pretraining_kind(family):
    """The kind a model family pretrains on (a converted model's stand-in data kind)."""
    return next(task.kind for task in all_tasks() if family in task.model_families)


def for_manifest(manifest):
    """The task of a data manifest's kind, made for that data."""
    return get(manifest.kind)(manifest)
