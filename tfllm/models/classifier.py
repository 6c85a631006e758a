"""A sequence classifier on a BERT encoder ([CLS] pooled output) or a GPT backbone
(the hidden state of the last real token)."""

import keras
from keras import ops

from tfllm.models import activations
from tfllm.models.base import BackboneTask


@keras.saving.register_keras_serializable(package="tfllm")
class SequenceClassifier(BackboneTask):
    def __init__(self, backbone, num_classes, **kwargs):
        config = backbone.config
        inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name)
                  for name in backbone.input_names}
        encoded = backbone(inputs)
        if config.family == "bert":
            features = encoded["pooled_output"]
        else:
            last = ops.sum(ops.cast(inputs["padding_mask"], "int32"), axis=1) - 1
            features = ops.take_along_axis(encoded, last[:, None, None], axis=1)[:, 0]
        self.head_dropout = keras.layers.Dropout(config.dropout, dtype=config.dtype,
                                                 name="head_dropout")
        self.classifier_head = keras.layers.Dense(
            num_classes, kernel_initializer=activations.initializer(config),
            dtype=config.dtype, name="classifier_head")
        logits = keras.layers.Activation("linear", dtype="float32", name="float32_logits")(
            self.classifier_head(self.head_dropout(features)))
        super().__init__(inputs=inputs, outputs=logits, dtype=config.dtype, **kwargs)
        self.backbone = backbone
        self.num_classes = num_classes

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}
