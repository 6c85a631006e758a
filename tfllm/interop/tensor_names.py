"""The building blocks of the converters' name tables: one tfllm variable under its
published name, with the layout change each way, for the Keras layers tfllm's models
are made of (Dense, LayerNorm, multi-head attention's EinsumDense, GPT-2's fused
query/key/value). Hand-written because keras-hub's Transformers loaders read only
into keras-hub's own backbones, one way."""

import numpy as np


def identity(x):
    return x


def matrix(x):
    """HF's [out, in] Linear weight <-> a Keras [in, out] kernel."""
    return np.transpose(x)


class Entry:
    """One tfllm variable and its published tensor: `to_tfllm(published) -> array`,
    `to_published(array)`. An `optional` entry (a head the file may lack) keeps its
    initial value when absent; `aliases` are other names the same tensor is saved under."""

    def __init__(self, name, variable, to_tfllm=identity, to_published=identity,
                 optional=False, aliases=()):
        self.name, self.variable = name, variable
        self.to_tfllm, self.to_published = to_tfllm, to_published
        self.optional, self.aliases = optional, tuple(aliases)


class Fused(Entry):
    """One published tensor holding several tfllm variables side by side (GPT-2's
    c_attn: query, key and value in one [hidden, 3 hidden] tensor)."""

    def __init__(self, name, variables, split_axis, aliases=()):
        super().__init__(name, None, aliases=aliases)
        self.variables, self.split_axis = variables, split_axis

    def split(self, fused):
        """The parts, each in its variable's shape, or None when the tensor does not fit."""
        if fused.shape[self.split_axis] % len(self.variables):
            return None
        parts = np.split(fused, len(self.variables), axis=self.split_axis)
        try:
            return [p.reshape(tuple(v.shape)) for p, v in zip(parts, self.variables)]
        except ValueError:
            return None

    def join(self, arrays):
        width = arrays[0].shape[0] if self.split_axis else None
        flat = [a.reshape(width, -1) if self.split_axis else a.reshape(-1) for a in arrays]
        return np.concatenate(flat, axis=self.split_axis)


def dense(name, layer, transpose=True, optional=False, aliases=()):
    """A Dense layer: HF Linear weights are [out, in], Keras kernels [in, out];
    GPT-2's Conv1D weights are already [in, out]."""
    flip = matrix if transpose else identity
    return [Entry(f"{name}.weight", layer.kernel, flip, flip, optional,
                  [f"{a}.weight" for a in aliases]),
            Entry(f"{name}.bias", layer.bias, optional=optional,
                  aliases=[f"{a}.bias" for a in aliases])]


def layer_norm(name, layer, optional=False, aliases=()):
    return [Entry(f"{name}.weight", layer.gamma, optional=optional,
                  aliases=[f"{a}.weight" for a in aliases]),
            Entry(f"{name}.bias", layer.beta, optional=optional,
                  aliases=[f"{a}.bias" for a in aliases])]


def attention_projection(name, layer, transpose, output=False):
    """An EinsumDense of multi-head attention: kernels [hidden, heads, head] (query,
    key, value) or [heads, head, hidden] (output), published as [hidden, hidden]."""
    shape = tuple(layer.kernel.shape)
    flip = matrix if transpose else identity
    if output:
        kernel = Entry(f"{name}.weight", layer.kernel, lambda x: flip(x).reshape(shape),
                       lambda x: flip(x.reshape(shape[0] * shape[1], shape[2])))
        bias = Entry(f"{name}.bias", layer.bias)
    else:
        kernel = Entry(f"{name}.weight", layer.kernel, lambda x: flip(x).reshape(shape),
                       lambda x: flip(x.reshape(shape[0], shape[1] * shape[2])))
        bias_shape = tuple(layer.bias.shape)
        bias = Entry(f"{name}.bias", layer.bias, lambda x: x.reshape(bias_shape),
                     lambda x: x.reshape(-1))
    return [kernel, bias]
