"""Functional Keras models that are built from, and serialise as, a config dataclass."""

import keras
import keras_hub

from tfllm.errors import InputError
from tfllm.models import activations, configs
from tfllm.models.inputs import check_token_inputs, guard_length


class ConfiguredModel(keras.Model):
    """A backbone whose whole architecture is `self.config`.

    Keras's default `get_config` for functional models returns the layer graph,
    which cannot be passed back to a subclass constructor; the config dataclass
    can, and it is the same JSON saved next to every artifact.
    """

    input_names = ()

    def __call__(self, inputs, *args, **kwargs):
        # Checked before Keras's own input-spec checks, whose messages are vaguer.
        check_token_inputs(inputs, self.input_names, self.config.max_sequence_length,
                           type(self).__name__)
        return super().__call__({key: inputs[key] for key in self.input_names}, *args, **kwargs)

    def call(self, inputs, training=None, mask=None):
        inputs = dict(inputs)
        inputs["token_ids"] = guard_length(keras.ops.convert_to_tensor(inputs["token_ids"]),
                                           self.config.max_sequence_length, type(self).__name__)
        return super().call(inputs, training=training, mask=mask)

    def get_config(self):
        return {"config": self.config.to_dict(), "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(configs.from_dict(config.pop("config")), **config)


class BackboneTask(keras.Model):
    """A model made of a backbone plus heads; serialises the backbone inside it."""

    extra_input_names = ()

    def __call__(self, inputs, *args, **kwargs):
        names = (*self.backbone.input_names, *self.extra_input_names)
        check_token_inputs(inputs, names, self.config.max_sequence_length, type(self).__name__)
        return super().__call__({key: inputs[key] for key in names}, *args, **kwargs)

    def get_config(self):
        return {"backbone": keras.saving.serialize_keras_object(self.backbone),
                "name": self.name, "trainable": self.trainable}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        backbone = keras.saving.deserialize_keras_object(config.pop("backbone"))
        return cls(backbone, **config)

    @property
    def config(self):
        return self.backbone.config


class CausalLM(BackboneTask):
    """A decoder backbone and its LM head (the token embedding reversed); logits are
    float32. Subclasses add `call_with_cache` for their blocks; the cache is
    [batch, layers, 2 (key, value), max_length, key/value heads, head size]."""

    def __init__(self, backbone, **kwargs):
        inputs = {name: keras.Input(shape=(None,), dtype="int32", name=name)
                  for name in backbone.input_names}
        hidden = backbone(inputs)
        self.float32_logits = keras.layers.Activation(
            "linear", dtype="float32", name="float32_logits")
        logits = self.float32_logits(backbone.token_embedding(hidden, reverse=True))
        super().__init__(inputs=inputs, outputs=logits, dtype=backbone.config.dtype,
                         **kwargs)
        self.backbone = backbone

    def empty_cache(self, batch_size, max_length):
        """A zero cache for `batch_size` rows of `max_length` positions."""
        config = self.config
        if isinstance(max_length, int) and max_length > config.max_sequence_length:
            raise InputError(f"A cache of {max_length} positions exceeds the model's "
                             f"max_sequence_length of {config.max_sequence_length}.")
        shape = (batch_size, config.num_layers, 2, max_length, config.key_value_heads,
                 config.head_size)
        return keras.ops.zeros(shape, dtype=self.backbone.compute_dtype)


def token_and_position_embeddings(config):
    """The learned token (reversible, for tied heads) and position embeddings."""
    init = activations.initializer(config)
    token = keras_hub.layers.ReversibleEmbedding(
        config.vocab_size, config.hidden_size, embeddings_initializer=init,
        dtype=config.dtype, name="token_embedding")
    position = keras_hub.layers.PositionEmbedding(
        config.max_sequence_length, initializer=init, dtype=config.dtype,
        name="position_embedding")
    return token, position
