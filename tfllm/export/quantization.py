"""int8 weights for serving, through Keras's own quantization (`Model.quantize`), which
survives SavedModel export: the int8 kernels and their per-channel scales are
variables of the exported graph, so TF Serving loads a model a quarter the size.

Two modes, measured side by side in `benchmarks.quantize`:
- `int8`: Keras's default int8, weights per output channel and activations per token
  (dynamic, abs-max), so projections run as int8 x int8 matmuls;
- `int8_weights`: weights only (`Int8QuantizationConfig(activation_quantizer=None)`);
  activations stay float, the kernels are scaled back per call.
"""

import math

import keras
from keras.quantizers import Int8QuantizationConfig

from tfllm.errors import ConfigError

MODES = ("int8", "int8_weights")
# The layers Keras can quantize. keras-hub's ReversibleEmbedding (the token embedding,
# also the tied output head) subclasses Keras's and is refused by Keras's exact-type
# check; its int8 path is Keras's own, so the check is lifted (`type_check=False`) for
# exactly these types.
_QUANTIZABLE = (keras.layers.Dense, keras.layers.EinsumDense, keras.layers.Embedding)


def check_mode(mode):
    if mode not in MODES:
        raise ConfigError(f"--quantize must be one of {', '.join(MODES)} (or empty for "
                          f"float); got {mode!r}.")


def quantize(model, mode):
    """Quantizes `model`'s projections and embeddings in place; returns how many
    weights became int8."""
    check_mode(mode)
    config = Int8QuantizationConfig(activation_quantizer=None if mode == "int8_weights"
                                    else "default")
    model.quantize(config=config, filters=lambda layer: isinstance(layer, _QUANTIZABLE),
                   type_check=False)
    return sum(math.prod(w.shape) for w in model.weights if str(w.dtype) == "int8")
