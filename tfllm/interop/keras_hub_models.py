"""Copying weights between keras-hub backbones and tfllm models, for the converters'
pairings. Hand-written because keras-hub maps only into its own models."""

import numpy as np

from tfllm.errors import ConfigError
from tfllm.interop.tensor_names import identity


def copy_layers(pairs, to_tfllm):
    """Copies each (keras-hub layer, tfllm layer) pair's weights one way, checking shapes:
    for layers built alike, weight for weight."""
    for theirs, ours in pairs:
        source, target = (theirs, ours) if to_tfllm else (ours, theirs)
        weights = source.get_weights()
        expected = [tuple(w.shape) for w in target.get_weights()]
        if [tuple(w.shape) for w in weights] != expected:
            raise ConfigError(f"Layer {source.name}: weights of shapes "
                              f"{[w.shape for w in weights]} do not fit {expected}.")
        target.set_weights(weights)


def copy_variables(pairs, to_tfllm=True):
    """Copies (keras-hub variable, tfllm variable[, theirs -> ours, ours -> theirs])
    pairs one way, checking shapes."""
    for theirs, ours, *changes in pairs:
        to_ours, to_theirs = changes or (identity, identity)
        source, target, change = (theirs, ours, to_ours) if to_tfllm else (
            ours, theirs, to_theirs)
        value = change(np.asarray(source))
        if tuple(value.shape) != tuple(target.shape):
            raise ConfigError(f"Weight {source.path} of shape {tuple(source.shape)} does not fit "
                              f"{target.path} of shape {tuple(target.shape)}.")
        target.assign(value)
