"""The component contract: declared inputs, outputs and parameters, and `execute`."""

import collections
import os
import re
import subprocess
import sys

from tfllm.errors import TfllmError

_ABSL_LOG = re.compile(r"^(WARNING: All log messages|[IWE]\d{4} |WARNING:root:apitools)")


class ComponentError(TfllmError):
    """A component could not produce its outputs; the message says why."""


class Channel:
    """An output of an upstream component, used as another component's input."""

    def __init__(self, producer, name, type_name):
        self.producer, self.name, self.type = producer, name, type_name


class Component:
    """Subclasses set OUTPUTS ({name: artifact type}) and implement `execute`.

    `parameters` enter the cache key; `options` (Beam runner options, verbosity) do
    not, because they change where work runs, not what it produces.
    """

    OUTPUTS = {}

    def __init__(self, component_id, inputs=None, parameters=None, options=None):
        self.id = component_id
        self.inputs = {name: channel for name, channel in (inputs or {}).items()
                       if channel is not None}
        self.parameters = parameters or {}
        self.options = options or {}
        self.outputs = {name: Channel(self, name, type_name)
                        for name, type_name in self.OUTPUTS.items()}

    def execute(self, inputs, outputs, context):
        """inputs: {name: Artifact}; outputs: {name: directory to create}. Returns
        {output name: properties dict} recorded with the artifacts."""
        raise NotImplementedError


def run_module(module, args, context, tail_lines=40):
    """Runs `python -m module args` as a child process, streaming its output as
    progress; a failure raises ComponentError with the end of what it printed."""
    context.log(f"$ python -m {module} {' '.join(args)}")
    process = subprocess.Popen(
        [sys.executable, "-m", module, *args], stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, bufsize=1,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")})
    tail = collections.deque(maxlen=tail_lines)
    for line in process.stdout:
        line = line.rstrip("\n")
        if not line.strip() or _ABSL_LOG.match(line):  # TF/absl log noise, not progress
            continue
        tail.append(line)
        context.log(f"  | {line}")
    if process.wait() != 0:
        errors = [line for line in tail if line.startswith("error:")]
        detail = " ".join(errors) if errors else " / ".join(list(tail)[-5:])
        raise ComponentError(f"python -m {module} failed (exit {process.returncode}): {detail}")
