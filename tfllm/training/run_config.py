"""`model_dir/config.json`: the resolved settings of the run, and what a resumed run
changed. A model_dir belongs to one architecture; the batch layout may change."""

import dataclasses
import json
import os

from tfllm.errors import ConfigError

# Resuming may change how a step's examples are split; the position is kept in examples.
_LAYOUT = ("global_batch_size", "grad_accum_steps", "replicas", "input_pipelines")


def resolved(model_config, config, strategy, input_pipelines):
    return {"model": model_config.to_dict(), "train": dataclasses.asdict(config),
            "strategy": type(strategy).__name__,
            "replicas": strategy.num_replicas_in_sync, "input_pipelines": input_pipelines}


def _layout(run):
    return {"global_batch_size": run["train"]["global_batch_size"],
            "grad_accum_steps": run["train"]["grad_accum_steps"],
            "replicas": run.get("replicas"), "input_pipelines": run.get("input_pipelines", 1)}


def write(model_dir, run):
    """Saves `run` as config.json; returns the previous run's, or None. A different
    architecture is refused."""
    path = os.path.join(model_dir, "config.json")
    previous = None
    if os.path.exists(path):
        with open(path) as f:
            previous = json.load(f)
        saved = previous["model"]
        if saved != run["model"]:
            changed = sorted(k for k in saved if saved.get(k) != run["model"].get(k))
            raise ConfigError(f"{model_dir} holds a model with a different architecture "
                              f"({', '.join(changed)} differ); use another --model_dir.")
    try:
        os.makedirs(model_dir, exist_ok=True)
        with open(path, "w") as f:
            json.dump(run, f, indent=2, sort_keys=True)
    except OSError as error:
        raise ConfigError(f"Cannot write to --model_dir {model_dir}: {error.strerror}.") from None
    return previous


def layout_changes(previous, run):
    """'name a -> b' for each batch-layout setting the resumed run changed."""
    if previous is None:
        return []
    before, after = _layout(previous), _layout(run)
    return [f"{name} {before[name]} -> {after[name]}" for name in _LAYOUT
            if before[name] is not None and before[name] != after[name]]
