"""Activations referenced by name in configs, registered so saved models reload."""

import keras


@keras.saving.register_keras_serializable(package="tfllm")
def gelu_approximate(x):
    """GPT-2's tanh approximation of GELU."""
    return keras.activations.gelu(x, approximate=True)


def get(name):
    """Maps a config's activation name to a Keras activation."""
    if name == "gelu_approximate":
        return gelu_approximate
    return keras.activations.get(name)


def initializer(config):
    """The truncated-normal initializer that BERT and GPT-2 both use."""
    return keras.initializers.TruncatedNormal(stddev=config.initializer_range)
