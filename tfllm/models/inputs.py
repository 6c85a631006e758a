"""Checks on the token tensors handed to a model.

Keras would otherwise cast floats to ints silently, or fail deep inside the
position embedding with a slicing error when a sequence is too long. These
checks name the input and the problem instead.
"""

import numpy as np
import tensorflow as tf

from tfllm.errors import InputError


def _dtype_of(value):
    dtype = getattr(value, "dtype", None)
    return tf.as_dtype(dtype if dtype is not None else np.asarray(value).dtype)


def check_token_inputs(inputs, required, max_sequence_length, model_name):
    """Validates a dict of [batch, length] integer tensors; returns it unchanged.

    Static shapes are checked in Python; a length unknown until run time gets a
    run-time assertion with the same message.
    """
    if not isinstance(inputs, dict):
        raise InputError(f"{model_name} expects a dict with keys {', '.join(required)}; "
                         f"got a {type(inputs).__name__}.")
    missing = [name for name in required if name not in inputs]
    if missing:
        raise InputError(f"{model_name} is missing input(s) {', '.join(missing)}; "
                         f"it takes {', '.join(required)}.")
    first_shape = None
    for name in required:
        value = inputs[name]
        shape = tuple(value.shape) if hasattr(value, "shape") else np.shape(value)
        if len(shape) != 2:
            raise InputError(f"{model_name} input '{name}' must have rank 2 "
                             f"[batch, sequence]; got shape {tuple(shape)}.")
        dtype = _dtype_of(value)
        if not (dtype.is_integer or dtype.is_bool):
            raise InputError(f"{model_name} input '{name}' must hold integers; "
                             f"got dtype {dtype.name}.")
        if first_shape is None:
            first_shape = shape
            length = shape[1]
            if length is not None and length > max_sequence_length:
                raise InputError(f"{model_name} input '{name}' has {length} positions but "
                                 f"the model's max_sequence_length is {max_sequence_length}.")
        if name != "mask_positions" and shape != first_shape and None not in shape + first_shape:
            raise InputError(f"{model_name} inputs disagree in shape: '{required[0]}' is "
                             f"{first_shape} but '{name}' is {shape}.")
    return inputs


def guard_length(token_ids, max_sequence_length, model_name):
    """Run-time twin of the static length check, for graphs with unknown lengths.

    Returns `token_ids` behind the assertion, so nothing downstream runs first.
    """
    if token_ids.shape[1] is not None:
        return token_ids
    check = tf.debugging.assert_less_equal(
        tf.shape(token_ids)[1], max_sequence_length,
        message=f"{model_name}: sequence longer than max_sequence_length="
                f"{max_sequence_length}")
    with tf.control_dependencies([check]):
        return tf.identity(token_ids)
