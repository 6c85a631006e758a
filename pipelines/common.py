"""What both pipelines share: flag files as flag lists, running and reporting."""

import os
import shlex

from tfllm.components import LocalRunner
from tfllm.errors import ConfigError


def read_flagfile(path, *overrides):
    """The flags a flag file holds (comments dropped) followed by `overrides`: the
    component's parameters, so editing a flag file invalidates the cache."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.strip() for line in f]
    except OSError as error:
        raise ConfigError(f"Cannot read flag file {path}: {error.strerror}.") from None
    flags = [flag for line in lines if line and not line.startswith("#")
             for flag in shlex.split(line)]
    return [*flags, *overrides]


def run_and_report(pipeline, log=print):
    """Runs the pipeline and prints a per-component summary; returns its artifacts.

    The runner records the run in `PIPELINE_ROOT/last_run.json`, which `python -m
    tfllm` reads to find what was trained, evaluated and pushed.
    """
    produced, summary = LocalRunner(log=log).run(pipeline)
    log(f"\n{pipeline.name}: {sum(1 for _, s, _ in summary if s == 'ran')} ran, "
        f"{sum(1 for _, s, _ in summary if s == 'cached')} cached")
    for component_id, state, seconds in summary:
        log(f"  {component_id:<28} {state:<7} {seconds:7.1f}s")
    log(f"artifacts and lineage: {pipeline.root} "
        f"({os.path.join(pipeline.root, 'metadata.sqlite')})")
    return produced
