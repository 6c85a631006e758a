"""BERT: a post-LN transformer encoder, and its MLM + NSP pretraining model.

Built from keras-hub layers (TransformerEncoder, ReversibleEmbedding,
PositionEmbedding, MaskedLMHead); follows google-research/bert's architecture so
that the `bert_base` preset has exactly BERT-base's parameters.
"""

import keras
import keras_hub

from tfllm.models import activations
from tfllm.models.base import (BackboneTask, ConfiguredModel,
                               token_and_position_embeddings)

ENCODER_INPUTS = ("token_ids", "segment_ids", "padding_mask")


@keras.saving.register_keras_serializable(package="tfllm")
class BertEncoder(ConfiguredModel):
    """Token + segment + position embeddings, LayerNorm, dropout, N post-LN blocks.

    Inputs: `token_ids`, `segment_ids`, `padding_mask` (1 for real tokens), each
    [batch, length]. Outputs: `sequence_output` [batch, length, hidden] and
    `pooled_output` [batch, hidden] (tanh dense on the [CLS] position).
    """

    input_names = ENCODER_INPUTS

    def __init__(self, config, **kwargs):
        dtype = config.dtype
        init = activations.initializer(config)
        self.token_embedding, self.position_embedding = token_and_position_embeddings(config)
        self.segment_embedding = keras.layers.Embedding(
            config.type_vocab_size, config.hidden_size, embeddings_initializer=init,
            dtype=dtype, name="segment_embedding")
        self.embeddings_layer_norm = keras.layers.LayerNormalization(
            epsilon=config.layer_norm_epsilon, dtype=dtype, name="embeddings_layer_norm")
        self.embeddings_dropout = keras.layers.Dropout(
            config.dropout, dtype=dtype, name="embeddings_dropout")
        self.transformer_layers = [
            keras_hub.layers.TransformerEncoder(
                intermediate_dim=config.intermediate_size, num_heads=config.num_heads,
                dropout=config.dropout, activation=activations.get(config.activation),
                layer_norm_epsilon=config.layer_norm_epsilon, kernel_initializer=init,
                normalize_first=False, dtype=dtype, name=f"transformer_layer_{i}")
            for i in range(config.num_layers)
        ]
        self.pooler = keras.layers.Dense(
            config.hidden_size, activation="tanh", kernel_initializer=init, dtype=dtype,
            name="pooler")

        inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name)
                  for name in ENCODER_INPUTS}
        tokens = self.token_embedding(inputs["token_ids"])
        x = keras.layers.Add(dtype=dtype, name="embeddings_add")((
            tokens, self.position_embedding(tokens),
            self.segment_embedding(inputs["segment_ids"])))
        x = self.embeddings_dropout(self.embeddings_layer_norm(x))
        for block in self.transformer_layers:
            x = block(x, padding_mask=inputs["padding_mask"])
        pooled = self.pooler(x[:, 0, :])
        super().__init__(inputs=inputs,
                         outputs={"sequence_output": x, "pooled_output": pooled},
                         dtype=dtype, **kwargs)
        self.config = config


@keras.saving.register_keras_serializable(package="tfllm")
class BertPretrainer(BackboneTask):
    """BERT with the masked-LM and next-sentence-prediction heads.

    The MLM head (dense + LayerNorm + projection tied to the token embeddings,
    plus a bias) runs only at `mask_positions` [batch, num_masked], as in
    google-research/bert. keras-hub has no NSP head, so it is a dense layer on
    the pooled output here (`cls/seq_relationship` in the original). Logits are
    float32 under any dtype policy so losses stay stable in mixed precision.
    """

    extra_input_names = ("mask_positions",)

    def __init__(self, backbone, **kwargs):
        config = backbone.config
        init = activations.initializer(config)
        self.mlm_head = keras_hub.layers.MaskedLMHead(
            token_embedding=backbone.token_embedding,
            intermediate_activation=activations.get(config.mlm_head_activation or
                                                    config.activation),
            layer_norm_epsilon=config.mlm_head_layer_norm_epsilon or config.layer_norm_epsilon,
            kernel_initializer=init,
            dtype=config.dtype, name="mlm_head")
        self.nsp_head = keras.layers.Dense(2, kernel_initializer=init, dtype=config.dtype,
                                           name="nsp_head")

        inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name)
                  for name in (*ENCODER_INPUTS, "mask_positions")}
        encoded = backbone({name: inputs[name] for name in ENCODER_INPUTS})
        mlm_logits = self.mlm_head(encoded["sequence_output"],
                                   mask_positions=inputs["mask_positions"])
        nsp_logits = self.nsp_head(encoded["pooled_output"])
        to_float32 = keras.layers.Activation("linear", dtype="float32", name="float32_logits")
        super().__init__(inputs=inputs,
                         outputs={"mlm_logits": to_float32(mlm_logits),
                                  "nsp_logits": to_float32(nsp_logits)},
                         dtype=config.dtype, **kwargs)
        self.backbone = backbone
