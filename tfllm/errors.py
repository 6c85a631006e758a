"""User-facing errors.

Library code raises these for mistakes a user can fix (a bad flag, a bad input,
a missing file). The CLI boundary (`tfllm.cli`) prints them as one paragraph and
exits non-zero; anything else is a bug and keeps its traceback.
"""


class TfllmError(Exception):
    """Base class of errors whose message is meant for the user."""


class ConfigError(TfllmError, ValueError):
    """A configuration (preset, flag, flag file, config field) is invalid."""


class InputError(TfllmError, ValueError):
    """Data handed to a model or a job does not have the expected form."""


class CheckpointError(TfllmError):
    """A checkpoint could not be written (disk full, directory gone); earlier ones remain."""


class ClusterError(TfllmError):
    """A multi-worker job lost a worker; every worker must be re-run to resume."""
