"""A token tagger: one tag distribution per position of a BERT encoder's sequence
output or a GPT backbone's hidden states (the loss reads only first word pieces)."""

import keras

from tfllm.models import activations
from tfllm.models.base import BackboneTask


@keras.saving.register_keras_serializable(package="tfllm")
class TokenTagger(BackboneTask):
    def __init__(self, backbone, num_tags, **kwargs):
        config = backbone.config
        inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name)
                  for name in backbone.input_names}
        encoded = backbone(inputs)
        features = encoded["sequence_output"] if config.family == "bert" else encoded
        self.head_dropout = keras.layers.Dropout(config.dropout, dtype=config.dtype,
                                                 name="head_dropout")
        self.tagger_head = keras.layers.Dense(
            num_tags, kernel_initializer=activations.initializer(config), dtype=config.dtype,
            name="tagger_head")
        logits = keras.layers.Activation("linear", dtype="float32", name="float32_logits")(
            self.tagger_head(self.head_dropout(features)))
        super().__init__(inputs=inputs, outputs=logits, dtype=config.dtype, **kwargs)
        self.backbone = backbone
        self.num_tags = num_tags

    def get_config(self):
        return {**super().get_config(), "num_tags": self.num_tags}
