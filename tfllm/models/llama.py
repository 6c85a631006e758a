"""The Llama decoder family: Llama 2/3, TinyLlama, SmolLM2, Qwen2, Mistral and Gemma.

Pre-RMSNorm causal blocks with rotary positions, a gated feed-forward (SwiGLU or
GeGLU) and grouped-query attention whose key/value cache holds only the key/value
heads. keras-hub's `RotaryEmbedding`, `ReversibleEmbedding` (tied or untied head) and
`EinsumDense` are used as they are. keras-hub's own Llama/Mistral/Gemma layers are one
copy per vendor and live in its private `src` tree (no public API to build on), so the
attention, the block and the norm are written here once, covering every variant by
config; the tests check them against those keras-hub models with the same weights.
"""

import math

import keras
import keras_hub
from keras import ops

from tfllm.models import activations
from tfllm.models.base import CausalLM, ConfiguredModel

DECODER_INPUTS = ("token_ids", "padding_mask")


@keras.saving.register_keras_serializable(package="tfllm")
class RMSNorm(keras.layers.Layer):
    """x / rms(x) * (offset + scale), computed in float32. Keras's
    LayerNormalization(rms_scaling=True) has no offset form (Gemma stores scale - 1)."""

    def __init__(self, epsilon=1e-6, offset=0.0, **kwargs):
        super().__init__(**kwargs)
        self.epsilon, self.offset = epsilon, offset

    def build(self, input_shape):
        self.scale = self.add_weight(name="scale", shape=(input_shape[-1],),
                                     initializer="zeros" if self.offset else "ones")

    def call(self, x):
        x = ops.cast(x, "float32")
        x = x * ops.rsqrt(ops.mean(ops.square(x), axis=-1, keepdims=True) + self.epsilon)
        return ops.cast(x * (self.offset + ops.cast(self.scale, "float32")),
                        self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "offset": self.offset}


@keras.saving.register_keras_serializable(package="tfllm")
class Llama3RotaryEmbedding(keras_hub.layers.RotaryEmbedding):
    """keras-hub's RotaryEmbedding with Llama 3.1's frequency scaling (long wavelengths
    divided by the factor, short ones kept, a smooth ramp between), which the public
    layer lacks."""

    def __init__(self, low_freq_factor=1.0, high_freq_factor=4.0,
                 original_max_length=8192, **kwargs):
        super().__init__(**kwargs)
        self.low_freq_factor, self.high_freq_factor = low_freq_factor, high_freq_factor
        self.original_max_length = original_max_length

    def _get_inverse_freq(self, rotary_dim):
        exponents = ops.arange(0, rotary_dim, 2, dtype="float32") / rotary_dim
        inverse = 1.0 / ops.power(float(self.max_wavelength), exponents)
        wavelength = 2 * math.pi / inverse
        smooth = ((self.original_max_length / wavelength - self.low_freq_factor)
                  / (self.high_freq_factor - self.low_freq_factor))
        smoothed = (1 - smooth) * inverse / self.scaling_factor + smooth * inverse
        low, high = (self.original_max_length / f
                     for f in (self.low_freq_factor, self.high_freq_factor))
        return ops.where(wavelength > low, inverse / self.scaling_factor,
                         ops.where(wavelength < high, inverse, smoothed))

    def get_config(self):
        return {**super().get_config(), "low_freq_factor": self.low_freq_factor,
                "high_freq_factor": self.high_freq_factor,
                "original_max_length": self.original_max_length}


def rotary_embedding(config):
    if config.rope_scaling == "llama3":
        return Llama3RotaryEmbedding(
            max_wavelength=config.rope_theta, scaling_factor=config.rope_scaling_factor,
            low_freq_factor=config.rope_low_freq_factor,
            high_freq_factor=config.rope_high_freq_factor,
            original_max_length=config.rope_original_max_length, dtype=config.dtype,
            name="rotary_embedding")
    return keras_hub.layers.RotaryEmbedding(
        max_wavelength=config.rope_theta,
        scaling_factor=config.rope_scaling_factor if config.rope_scaling else 1.0,
        dtype=config.dtype, name="rotary_embedding")


def attention_mask(query_positions, key_positions, key_padding_mask, sliding_window):
    """[batch, queries, keys] booleans: a query sees real keys at or before it (and, with
    a sliding window of N, the last N positions only, itself included)."""
    queries, keys = query_positions[:, :, None], key_positions[:, None, :]
    allowed = keys <= queries
    if sliding_window:
        allowed = ops.logical_and(allowed, keys > queries - sliding_window)
    return ops.logical_and(allowed, ops.cast(key_padding_mask, "bool")[:, None, :])


class GroupedQueryAttention(keras.layers.Layer):
    """Causal attention with `num_key_value_heads` key/value heads shared by groups of
    query heads, rotary positions on queries and keys, and a cache of keys and values
    [batch, 2, length, kv_heads, head_size]."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        heads, kv_heads, size = config.num_heads, config.key_value_heads, config.head_size
        init = activations.initializer(config)
        bias = "uh" if config.attention_bias else None

        def projection(heads, name, bias_axes):
            return keras.layers.EinsumDense(
                "btm,muh->btuh", output_shape=(None, heads, size), bias_axes=bias_axes,
                kernel_initializer=init, dtype=self.dtype_policy, name=name)

        self._query_dense = projection(heads, "query", bias)
        self._key_dense = projection(kv_heads, "key", bias)
        self._value_dense = projection(kv_heads, "value", bias)
        self._output_dense = keras.layers.EinsumDense(
            "btuh,uhm->btm", output_shape=(None, config.hidden_size),
            kernel_initializer=init, dtype=self.dtype_policy, name="attention_output")
        self._rotary = rotary_embedding(config)
        self._dropout = keras.layers.Dropout(config.dropout, dtype=self.dtype_policy)

    def build(self, input_shape):
        size = self.config.head_size
        self._query_dense.build(input_shape)
        self._key_dense.build(input_shape)
        self._value_dense.build(input_shape)
        self._output_dense.build((None, None, self.config.num_heads, size))

    def call(self, x, mask, positions, cache=None, cache_update_index=None, training=None,
             return_weights=False):
        """`mask` [batch, queries, keys]; `positions` [batch, queries] (rotary). With a
        `cache`, the new keys and values are written at `cache_update_index` and the
        queries attend over the whole cache; returns (output, cache) then. With
        `return_weights`, (output, attention probabilities [batch, heads, queries, keys])."""
        query = self._rotary(self._query_dense(x), positions=positions)
        key = self._rotary(self._key_dense(x), positions=positions)
        value = self._value_dense(x)
        if cache is not None:
            start = [0, cache_update_index, 0, 0]
            key = ops.slice_update(cache[:, 0], start, ops.cast(key, cache.dtype))
            value = ops.slice_update(cache[:, 1], start, ops.cast(value, cache.dtype))
            cache = ops.stack((key, value), axis=1)
        groups = self.config.num_heads // self.config.key_value_heads
        key, value = (ops.repeat(t, groups, axis=2) for t in (key, value))
        scores = ops.einsum("bquh,bkuh->buqk", query, key)
        scores = ops.cast(scores, "float32") / math.sqrt(self.config.head_size)
        scores = ops.where(mask[:, None], scores, ops.full_like(scores, -1e9))
        weights = self._dropout(ops.cast(ops.softmax(scores, axis=-1), self.compute_dtype),
                                training=training)
        output = self._output_dense(ops.einsum("buqk,bkuh->bquh", weights, value))
        if return_weights:
            return output, weights
        return output if cache is None else (output, cache)


class LlamaBlock(keras.layers.Layer):
    """x + attention(norm(x)), then + down(act(gate(norm(x))) * up(norm(x)))."""

    def __init__(self, config, **kwargs):
        super().__init__(**kwargs)
        self.config = config
        init = activations.initializer(config)
        dtype = self.dtype_policy

        def norm(name):
            return RMSNorm(config.layer_norm_epsilon, config.norm_scale_offset, dtype=dtype,
                           name=name)

        def dense(units, name):
            return keras.layers.Dense(units, use_bias=False, kernel_initializer=init,
                                      dtype=dtype, name=name)

        self._self_attention_layernorm = norm("attention_norm")
        self._self_attention_layer = GroupedQueryAttention(config, dtype=dtype,
                                                           name="attention")
        self._feedforward_layernorm = norm("feedforward_norm")
        self._feedforward_gate_dense = dense(config.intermediate_size, "gate")
        self._feedforward_intermediate_dense = dense(config.intermediate_size, "up")
        self._feedforward_output_dense = dense(config.hidden_size, "down")
        self._activation = activations.get(config.activation)
        self._dropout = keras.layers.Dropout(config.dropout, dtype=dtype)

    def build(self, input_shape):
        for layer in (self._self_attention_layernorm, self._self_attention_layer,
                      self._feedforward_layernorm, self._feedforward_gate_dense,
                      self._feedforward_intermediate_dense):
            layer.build(input_shape)
        self._feedforward_output_dense.build((*input_shape[:-1], self.config.intermediate_size))

    def call(self, x, mask, positions, cache=None, cache_update_index=None, training=None):
        attended = self._self_attention_layer(
            self._self_attention_layernorm(x), mask, positions, cache=cache,
            cache_update_index=cache_update_index, training=training)
        if cache is not None:
            attended, cache = attended
        x = x + self._dropout(attended, training=training)
        h = self._feedforward_layernorm(x)
        h = (self._activation(self._feedforward_gate_dense(h))
             * self._feedforward_intermediate_dense(h))
        x = x + self._dropout(self._feedforward_output_dense(h), training=training)
        return x if cache is None else (x, cache)


@keras.saving.register_keras_serializable(package="tfllm")
class LlamaBackbone(ConfiguredModel):
    """Token embeddings (times sqrt(hidden) for Gemma), N causal blocks, a final RMSNorm.

    Inputs: `token_ids` and `padding_mask` [batch, length]. Output: the final hidden
    states [batch, length, hidden]. Positions count from each row's first real token, so
    left-padded rows read as they would alone.
    """

    input_names = DECODER_INPUTS

    def __init__(self, config, **kwargs):
        dtype = config.dtype
        self.token_embedding = keras_hub.layers.ReversibleEmbedding(
            config.vocab_size, config.hidden_size, tie_weights=config.tie_word_embeddings,
            embeddings_initializer=activations.initializer(config), dtype=dtype,
            name="token_embedding")
        # A layer, not `x * scale`: Keras 3.15 marks that product of a symbolic tensor
        # sparse, and the functional graph then fails to build.
        self.embedding_scale = keras.layers.Rescaling(
            math.sqrt(config.hidden_size), dtype=dtype,
            name="embedding_scale") if config.scale_embeddings else None
        self.transformer_layers = [LlamaBlock(config, dtype=dtype, name=f"transformer_layer_{i}")
                                   for i in range(config.num_layers)]
        self.final_norm = RMSNorm(config.layer_norm_epsilon, config.norm_scale_offset,
                                  dtype=dtype, name="final_norm")
        inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name)
                  for name in DECODER_INPUTS}
        x = self.embed(inputs["token_ids"])
        padding = inputs["padding_mask"]
        positions = real_positions(padding)
        mask = attention_mask(positions, positions, padding, config.sliding_window)
        for block in self.transformer_layers:
            x = block(x, mask, positions)
        super().__init__(inputs=inputs, outputs=self.final_norm(x), dtype=dtype, **kwargs)
        self.config = config

    def embed(self, token_ids):
        x = self.token_embedding(token_ids)
        if self.embedding_scale is not None:
            x = self.embedding_scale(x)
        return x


def real_positions(padding_mask):
    """Each token's position counted from its row's first real token (0 before it)."""
    real = ops.cast(padding_mask, "int32")
    return ops.maximum(ops.cumsum(real, axis=1) - 1, 0)


@keras.saving.register_keras_serializable(package="tfllm")
class LlamaCausalLM(CausalLM):
    """The backbone and its LM head (the embedding reversed, or its own matrix when
    untied); logits are float32.

    `call_with_cache` runs the same layers incrementally over a key/value cache of the
    key/value heads only, so decoding costs one position per step with the same logits.
    """

    def call_with_cache(self, token_ids, cache, cache_update_index, padding_mask=None):
        """Runs `token_ids` [batch, n] as cache positions `cache_update_index`...+n-1.

        `padding_mask` [batch, max_length], if given, hides cache positions (left padding
        of short prompts); rotary positions then count real tokens only, as in the full
        pass. Returns (float32 logits [batch, n, vocab], hidden states, updated cache).
        """
        backbone, config = self.backbone, self.config
        batch, length = ops.shape(token_ids)[0], ops.shape(token_ids)[1]
        max_length = ops.shape(cache)[3]
        slots = ops.broadcast_to(ops.arange(max_length)[None, :], (batch, max_length))
        if padding_mask is None:  # every slot holds a real token: positions are slots
            padding_mask = ops.ones((batch, max_length), "int32")
            key_positions = slots
        else:
            key_positions = real_positions(padding_mask)
        query_slots = cache_update_index + ops.arange(length)
        query_positions = ops.take(key_positions, query_slots, axis=1)
        # Masks compare cache slots; rotary angles use the real-token positions.
        mask = attention_mask(ops.broadcast_to(query_slots[None, :], (batch, length)), slots,
                              padding_mask, 0)
        if config.sliding_window:
            window = (key_positions[:, None, :]
                      > query_positions[:, :, None] - config.sliding_window)
            mask = ops.logical_and(mask, window)
        x = backbone.embed(token_ids)
        caches = []
        for i, block in enumerate(backbone.transformer_layers):
            x, layer_cache = block(x, mask, query_positions, cache=cache[:, i],
                                   cache_update_index=cache_update_index, training=False)
            caches.append(layer_cache)
        hidden = backbone.final_norm(x)
        logits = self.float32_logits(backbone.token_embedding(hidden, reverse=True))
        return logits, hidden, ops.stack(caches, axis=1)
