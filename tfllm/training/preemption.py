"""Stopping cleanly: SIGTERM on one host, TF's coordinated preemption handler on many."""

import contextlib
import signal

import tensorflow as tf
from absl import logging


class StopRequest:
    """Set by SIGTERM while installed: the loop saves a checkpoint and stops at the
    end of the current step."""

    def __init__(self):
        self.requested = False

    def _handle(self, signum, frame):
        del frame
        logging.warning("signal %d: saving a checkpoint and stopping", signum)
        self.requested = True

    @contextlib.contextmanager
    def installed(self, enabled=True):
        if not enabled:
            yield self
            return
        previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._handle)
        try:
            yield self
        finally:
            signal.signal(signal.SIGTERM, previous)


def multi_worker_handler(strategy, manager, exit_fn):
    """TF's coordinated handler for multi-worker jobs, where one worker stopping alone
    would leave the others blocked in a collective; None for other strategies."""
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return None
    return tf.distribute.experimental.PreemptionCheckpointHandler(
        strategy.cluster_resolver, manager,
        termination_config=tf.distribute.experimental.TerminationConfig(exit_fn=exit_fn))
