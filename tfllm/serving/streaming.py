"""Streamed generation, shared by the gRPC and REST front ends.

A stream drives an exported generator's `stream_start` and `stream_step`
signatures (`GeneratorModule`): the decoding state stays in TensorFlow tensors
between calls and each step yields the text produced so far, so the stream is the
`generate` signature's loop, one position at a time, with the same tokens for the
same settings and seed. Hand-written because TF Serving has no streaming API.
"""

import collections

import tensorflow as tf

from tfllm.serving.status import invalid

DEFAULTS = {"max_new_tokens": 32, "temperature": 0.0, "top_k": 0, "top_p": 1.0, "seed": 0}
_DTYPES = {"max_new_tokens": tf.int32, "temperature": tf.float32, "top_k": tf.int32,
           "top_p": tf.float32, "seed": tf.int32}
_SIGNATURES = ("stream_start", "stream_step")
_INCOMPLETE = "\ufffd"  # a multi-byte character whose remaining bytes are still to come

Chunk = collections.namedtuple("Chunk", ["text", "num_tokens", "finished"])


def settings_from(given):
    """The sampling settings of a request ({name: value}, absent ones at DEFAULTS)."""
    unknown = set(given) - set(DEFAULTS)
    if unknown:
        raise invalid(f"Unknown generation settings {sorted(unknown)}; the settings are "
                      f"{', '.join(DEFAULTS)}.")
    settings = {**DEFAULTS, **given}
    for name, value in settings.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or (_DTYPES[name].is_integer and value != int(value)):
            kind = "an integer" if _DTYPES[name].is_integer else "a number"
            raise invalid(f"Generation setting {name} must be {kind}; got {value!r:.40}.")
    return settings


class GenerationStream:
    """Iterates `Chunk`s of one prompt's continuation. Creating it runs the prefill,
    so a bad request fails before anything is sent; `close()` (or leaving the
    iteration) ends the generation."""

    def __init__(self, servable, prompt, settings, on_close=None):
        missing = [name for name in _SIGNATURES if name not in servable.signature_defs]
        if missing:
            raise invalid(f"Model {servable.name} version {servable.version} cannot stream: it "
                          f"has no {' and '.join(missing)} signature (tfllm exports them for "
                          "GPT generators).")
        if not isinstance(prompt, str) or not prompt:
            raise invalid("Streamed generation needs a non-empty prompt string.")
        self.servable = servable
        self._settings = {name: tf.constant([value], _DTYPES[name])
                          for name, value in settings_from(settings).items()}
        self._state = servable.call("stream_start", {"prompt": tf.constant([prompt]),
                                                     **self._settings})
        self._state_names = list(servable.signature_defs["stream_step"].inputs)
        self._sent = ""
        self._finished = False
        self._outcome = "cancelled"  # until the last step ran (or one failed)
        self._on_close = on_close

    def __iter__(self):
        return self

    def __next__(self):
        if self._finished:  # (stream_start never finishes: a prompt leaves room)
            raise StopIteration
        inputs = {name: self._state[name] for name in self._state_names
                  if name not in self._settings}
        try:
            state = self.servable.call("stream_step", {**inputs, **self._settings})
        except Exception:
            self._outcome = "error"
            raise
        # Read from `state`: a client that went away may close the stream meanwhile.
        self._state, finished = state, bool(state["finished"])
        if finished:
            self._outcome = "finished"
        text = state["text"].numpy()[0].decode("utf-8", "replace")
        # A trailing replacement character may be a character still being spelled
        # out byte by byte: it is sent once the text after it exists, or at the end.
        stable = text if finished else text.rstrip(_INCOMPLETE)
        new = stable[len(self._sent):] if stable.startswith(self._sent) else ""
        self._sent += new
        self._finished = finished
        return Chunk(new, int(state["generated"].numpy()[0]), finished)

    def close(self):
        """Ends the generation; `on_close` learns how: finished, cancelled or error."""
        if self._on_close:
            self._on_close(self._outcome)
            self._on_close = None
        self._finished = True
        self._state = None
