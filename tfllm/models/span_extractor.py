"""Extractive question answering: a start and an end logit per position of a BERT
encoder's sequence output or a GPT backbone's hidden states (BERT's SQuAD head).
Padding positions get a logit far below any real one, so no span lands there."""

import keras
from keras import ops

from tfllm.models import activations
from tfllm.models.base import BackboneTask

PADDING_LOGIT = -1e4  # finite: float16 holds it, and softmax still gives padding 0


@keras.saving.register_keras_serializable(package="tfllm")
class SpanExtractor(BackboneTask):
    """Outputs float32 logits [batch, length, 2]: [..., 0] starts, [..., 1] ends."""

    def __init__(self, backbone, **kwargs):
        config = backbone.config
        inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name)
                  for name in backbone.input_names}
        encoded = backbone(inputs)
        features = encoded["sequence_output"] if config.family == "bert" else encoded
        self.span_head = keras.layers.Dense(
            2, kernel_initializer=activations.initializer(config), dtype=config.dtype,
            name="span_head")
        logits = keras.layers.Activation("linear", dtype="float32", name="float32_logits")(
            self.span_head(features))
        padding = ops.cast(ops.equal(inputs["padding_mask"], 0), "float32")[..., None]
        logits = logits + padding * PADDING_LOGIT
        super().__init__(inputs=inputs, outputs=logits, dtype=config.dtype, **kwargs)
        self.backbone = backbone
