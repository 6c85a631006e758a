"""Checkpoints that survive a bad disk.

Each checkpoint is checked after it is written (its index reads and its data
files hold the bytes its tensors need), so a bad write fails at the step that
made it. On resume the newest checkpoint that restores is used: a damaged one
(flipped bytes, truncation, a missing file) is reported in one line and moved to
`checkpoints/corrupt/`, and the checkpoint state file is rewritten to the intact
ones (names relative to the directory, so a model_dir can be moved), so
`tf.train.latest_checkpoint` and every later stage agree with the trainer.
"""

import glob
import os
import re
import shutil

import numpy as np
import tensorflow as tf

from tfllm.errors import CheckpointError

_PREFIX = "ckpt"
_NUMBERED = re.compile(rf"^{_PREFIX}-(\d+)\.(index|data-\d+-of-\d+)$")


def _first_line(error):
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)  # TF's "{{function_node ...}}" prefix
    return text.strip().splitlines()[0].split("[Op:")[0].strip().rstrip(".")


def checkpoint_numbers(directory):
    """The numbers of the checkpoints with any file in `directory`, ascending (from the
    files themselves: the state file may be stale or damaged)."""
    return sorted(_checkpoint_files(directory))


def _checkpoint_files(directory):
    """{number: [file paths]} of the checkpoints in `directory`."""
    files = {}
    for name in os.listdir(directory) if os.path.isdir(directory) else ():
        match = _NUMBERED.match(name)
        if match:
            files.setdefault(int(match.group(1)), []).append(os.path.join(directory, name))
    return files


def _newest_first(directory):
    """Checkpoint prefixes, the most recently written first. Written order, not the
    number: TF's preemption handler numbers its saves by a counter, not by step."""
    files = _checkpoint_files(directory)
    # The index is written last in a save; a checkpoint without one dates from its data.
    recency = {n: max(os.path.getmtime(f) for f in paths if f.endswith(".index") or
                      not any(g.endswith(".index") for g in paths))
               for n, paths in files.items()}
    return [os.path.join(directory, f"{_PREFIX}-{n}")
            for n in sorted(files, key=lambda n: (recency[n], n), reverse=True)]


def unreadable_reason(path):
    """Why the checkpoint at `path` cannot be read, or None.

    Cheap (no tensor is read): the index must parse, every data shard it names must
    exist, and the shards must hold at least the bytes of the fixed-size tensors.
    """
    try:
        reader = tf.train.load_checkpoint(path)
    except (tf.errors.OpError, ValueError) as error:
        return f"its index does not read ({_first_line(error)})"
    shards = glob.glob(f"{glob.escape(path)}.data-*-of-*")
    if not shards:
        return "its data file is missing"
    expected = int(shards[0].rsplit("-of-", 1)[1])
    if len(shards) != expected:
        return f"{expected - len(shards)} of its {expected} data files are missing"
    shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    needed = sum(int(np.prod(shapes[name])) * dtypes[name].size for name in shapes
                 if dtypes[name] != tf.string)
    held = sum(os.path.getsize(shard) for shard in shards)
    if held < needed:
        return f"its data files hold {held:,} bytes, fewer than the {needed:,} its tensors need"
    return None


def _restore_error(checkpoint, path):
    """None when `checkpoint` restored from `path`, else the reason in a few words."""
    reason = unreadable_reason(path)
    if reason:
        return reason
    try:
        checkpoint.restore(path)
    except (tf.errors.OpError, ValueError) as error:
        return _first_line(error)
    return None


def _files_of(path):
    return glob.glob(f"{glob.escape(path)}.index") + glob.glob(f"{glob.escape(path)}.data-*")


def _write_state(directory, paths):
    """The checkpoint state file listing `paths` (oldest first), relative to `directory`
    so the model directory can be moved; removed when there are none."""
    names = [os.path.basename(p) for p in paths]
    if names:  # an absolute directory: a relative one would prefix the names with "../"
        tf.compat.v1.train.update_checkpoint_state(os.path.abspath(directory), names[-1],
                                                   names)
    elif os.path.exists(os.path.join(directory, "checkpoint")):
        os.remove(os.path.join(directory, "checkpoint"))


class Checkpoints:
    """The run's checkpoints in `directory`: restore the newest intact one, save and
    verify new ones, keep the last `keep`.

    In a multi-worker job only the chief's directory holds the real checkpoints; the
    other workers write theirs to a scratch `directory` (the saves are collective) and
    restore from the chief's, `read_from`, so that every worker resumes at the same
    step with the same state. Only the chief moves damaged checkpoints aside.
    """

    def __init__(self, checkpoint, directory, keep, report, read_from=None):
        self.checkpoint = checkpoint
        self.directory = directory
        self.keep = keep
        self.report = report
        self.read_from = read_from
        self.manager = None  # made by `restore`, once the state file is right

    def restore(self):
        """Restores the newest checkpoint that reads; returns its path, or None when
        there is none (a fresh run). When every one is damaged: CheckpointError."""
        source = self.read_from or self.directory
        candidates = _newest_first(source)
        damaged, restored = {}, None
        for path in candidates:
            reason = _restore_error(self.checkpoint, path)
            if reason is None:
                restored = path
                break
            damaged[path] = reason
        if damaged and restored is None:
            raise CheckpointError(
                f"No checkpoint in {source} can be restored: " + "; ".join(
                    f"{os.path.basename(p)}: {r}" for p, r in damaged.items())
                + ". No checkpoint was moved or deleted. To start over, move the directory "
                "away or use another --model_dir; to keep its settings, delete only "
                f"{source}.")
        if self.read_from:
            # This worker's own saves from an earlier run are stale: the chief's count.
            shutil.rmtree(self.directory, ignore_errors=True)
        else:
            self._set_aside(damaged, restored)
            intact = candidates[len(damaged):]
            state = tf.train.get_checkpoint_state(self.directory)
            if damaged or not restored or state is None or \
                    os.path.basename(state.model_checkpoint_path) != os.path.basename(restored):
                _write_state(self.directory, intact[::-1])
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.directory,
                                                  max_to_keep=self.keep,
                                                  checkpoint_name=_PREFIX)
        return restored

    def _set_aside(self, damaged, restored):
        if not damaged:
            return
        quarantine = os.path.join(self.directory, "corrupt")
        os.makedirs(quarantine, exist_ok=True)
        for path, reason in damaged.items():
            for name in _files_of(path):
                shutil.move(name, os.path.join(quarantine, os.path.basename(name)))
            self.report(f"checkpoint {path} is damaged ({reason}): moved to {quarantine}, "
                        f"resuming from {os.path.basename(restored)}")

    @property
    def latest(self):
        return self.manager.latest_checkpoint

    def save(self, step):
        """Writes and verifies the checkpoint of `step`; a write that fails or reads back
        wrong is a CheckpointError that leaves the earlier checkpoints as they were."""
        try:
            path = self.manager.save(checkpoint_number=step)
        except (tf.errors.OpError, OSError) as error:
            shutil.rmtree(os.path.join(self.directory, f"{_PREFIX}-{step}_temp"),
                          ignore_errors=True)
            reason = getattr(error, "message", None) or str(error)
            raise self._write_error(step, reason.rsplit(";", 1)[-1].split("[Op:")[0].strip(),
                                    self.latest) from None
        reason = unreadable_reason(path)
        if reason:
            for name in _files_of(path):
                os.remove(name)
            # The manager already removed the oldest beyond --keep_checkpoints.
            earlier = [p for p in self.manager.checkpoints if p != path]
            _write_state(self.directory, earlier)
            raise self._write_error(step, f"it does not read back: {reason}; it was removed",
                                    earlier[-1] if earlier else None) from None
        return path

    def _write_error(self, step, reason, latest):
        kept = (f"The previous checkpoints are intact (latest: {latest}); free space or fix "
                "the disk and re-run the same command to resume from it." if latest else
                "No earlier checkpoint is left (--keep_checkpoints=1 keeps only the newest, or "
                "none was written yet); free space or fix the disk and re-run the same command.")
        return CheckpointError(f"Cannot write a checkpoint to {self.directory} at step "
                               f"{step}: {reason}. {kept}")
