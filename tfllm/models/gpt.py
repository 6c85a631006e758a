"""GPT: a pre-LN causal transformer decoder and its tied-head language model.

Built from keras-hub layers (TransformerDecoder with normalize_first, its
key/value cache, ReversibleEmbedding, PositionEmbedding) in GPT-2's shape, so
that the `gpt2_small` preset has exactly GPT-2 124M's parameters.
"""

import keras
import keras_hub
from keras import ops

from tfllm.models import activations
from tfllm.models.base import (CausalLM, ConfiguredModel,
                               token_and_position_embeddings)

DECODER_INPUTS = ("token_ids", "padding_mask")


@keras.saving.register_keras_serializable(package="tfllm")
class GptBackbone(ConfiguredModel):
    """Token + learned position embeddings, N pre-LN causal blocks, final LayerNorm.

    Inputs: `token_ids` and `padding_mask` [batch, length]. Output: the final
    hidden states [batch, length, hidden].
    """

    input_names = DECODER_INPUTS

    def __init__(self, config, **kwargs):
        dtype = config.dtype
        init = activations.initializer(config)
        self.token_embedding, self.position_embedding = token_and_position_embeddings(config)
        self.embeddings_add = keras.layers.Add(dtype=dtype, name="embeddings_add")
        self.embeddings_dropout = keras.layers.Dropout(
            config.dropout, dtype=dtype, name="embeddings_dropout")
        self.transformer_layers = [
            keras_hub.layers.TransformerDecoder(
                intermediate_dim=config.intermediate_size, num_heads=config.num_heads,
                dropout=config.dropout, activation=activations.get(config.activation),
                layer_norm_epsilon=config.layer_norm_epsilon, kernel_initializer=init,
                normalize_first=True, dtype=dtype, name=f"transformer_layer_{i}")
            for i in range(config.num_layers)
        ]
        self.final_layer_norm = keras.layers.LayerNormalization(
            epsilon=config.layer_norm_epsilon, dtype=dtype, name="final_layer_norm")

        inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name)
                  for name in DECODER_INPUTS}
        tokens = self.token_embedding(inputs["token_ids"])
        x = self.embeddings_dropout(
            self.embeddings_add((tokens, self.position_embedding(tokens))))
        for block in self.transformer_layers:
            x = block(x, decoder_padding_mask=inputs["padding_mask"])
        super().__init__(inputs=inputs, outputs=self.final_layer_norm(x), dtype=dtype,
                         **kwargs)
        self.config = config


@keras.saving.register_keras_serializable(package="tfllm")
class GptCausalLM(CausalLM):
    """GPT with its LM head tied to the token embeddings; logits are float32.

    `call_with_cache` runs the same layers incrementally over a key/value cache
    (keras-hub's TransformerDecoder cache), so decoding costs one position per
    step instead of a full recomputation, with the same logits.
    """

    def call_with_cache(self, token_ids, cache, cache_update_index, padding_mask=None):
        """Runs `token_ids` [batch, n] as positions `cache_update_index`...+n-1.

        `padding_mask` [batch, max_length], if given, hides cache positions (for
        example left padding of short prompts). Returns (float32 logits
        [batch, n, vocab], hidden states, updated cache).
        """
        backbone = self.backbone
        tokens = backbone.token_embedding(token_ids)
        positions = backbone.position_embedding(tokens, start_index=cache_update_index)
        x = backbone.embeddings_add((tokens, positions))
        attention_mask = None
        if padding_mask is not None:
            key_mask = ops.cast(padding_mask, "int32")[:, None, :]
            attention_mask = ops.broadcast_to(
                key_mask, (ops.shape(x)[0], ops.shape(x)[1], ops.shape(padding_mask)[1]))
        next_caches = []
        for i, block in enumerate(backbone.transformer_layers):
            x, next_cache = block(
                x, decoder_attention_mask=attention_mask,
                self_attention_cache=cache[:, i, ...],
                self_attention_cache_update_index=cache_update_index, training=False)
            next_caches.append(next_cache)
        hidden = backbone.final_layer_norm(x)
        logits = self.float32_logits(backbone.token_embedding(hidden, reverse=True))
        return logits, hidden, ops.stack(next_caches, axis=1)
