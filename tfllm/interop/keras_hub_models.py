"""tfllm models <-> keras-hub's BertBackbone / GPT2Backbone (and their heads).

tfllm's models are built from the same keras-hub layers, layer for layer, so the
bridge copies each layer's weights to its counterpart. Hand-written because
keras-hub has no mapping into models other than its own; every other format goes
through keras-hub's loaders first, so this is the one hand-written mapping of the
backbones.
"""

import keras_hub

from tfllm.errors import ConfigError
from tfllm.models import configs
from tfllm.models.bert import BertEncoder, BertPretrainer
from tfllm.models.gpt import GptBackbone, GptCausalLM

# (keras-hub layer name, tfllm layer name) besides the transformer blocks.
_LAYERS = {
    "bert": [("token_embedding", "token_embedding"), ("position_embedding", "position_embedding"),
             ("segment_embedding", "segment_embedding"),
             ("embeddings_layer_norm", "embeddings_layer_norm"), ("pooled_dense", "pooler")],
    "gpt": [("token_embedding", "token_embedding"), ("position_embedding", "position_embedding"),
            ("layer_norm", "final_layer_norm")],
}
# What keras-hub's models fix rather than configure (its BERT encoder's GELU is the
# tanh approximation; its BertMaskedLM head uses exact GELU and LayerNorm's 1e-5).
FIXED = {"bert": {"activation": "gelu_approximate", "layer_norm_epsilon": 1e-12,
                  "mlm_head_activation": "gelu", "mlm_head_layer_norm_epsilon": 1e-5},
         "gpt": {"activation": "gelu_approximate", "layer_norm_epsilon": 1e-5}}


def family_of(backbone):
    if isinstance(backbone, keras_hub.models.BertBackbone):
        return "bert"
    if isinstance(backbone, keras_hub.models.GPT2Backbone):
        return "gpt"
    raise ConfigError(f"keras-hub backbone {type(backbone).__name__} is not supported; tfllm "
                      "converts BertBackbone and GPT2Backbone.")


def config_from_keras_hub(backbone):
    """The tfllm config of a keras-hub backbone."""
    family = family_of(backbone)
    fields = {"vocab_size": backbone.vocabulary_size, "hidden_size": backbone.hidden_dim,
              "num_layers": backbone.num_layers, "num_heads": backbone.num_heads,
              "intermediate_size": backbone.intermediate_dim,
              "max_sequence_length": backbone.max_sequence_length,
              "dropout": float(backbone.dropout), **FIXED[family]}
    if family == "bert":
        fields["type_vocab_size"] = backbone.num_segments
    return configs.CONFIG_CLASSES[family](**fields)


def keras_hub_backbone(config):
    """An empty keras-hub backbone shaped like a tfllm config (for export)."""
    shape = dict(vocabulary_size=config.vocab_size, num_layers=config.num_layers,
                 num_heads=config.num_heads, hidden_dim=config.hidden_size,
                 intermediate_dim=config.intermediate_size, dropout=config.dropout,
                 max_sequence_length=config.max_sequence_length)
    if config.family == "bert":
        return keras_hub.models.BertBackbone(num_segments=config.type_vocab_size, **shape)
    return keras_hub.models.GPT2Backbone(**shape)


def _pairs(source, target, family, to_tfllm):
    names = _LAYERS[family]
    pairs = [(source.get_layer(a if to_tfllm else b), target.get_layer(b if to_tfllm else a))
             for a, b in names]
    pairs += list(zip(source.transformer_layers, target.transformer_layers))
    return pairs


def copy_backbone(source, target, to_tfllm):
    """Copies every weight of `source` into `target` (keras-hub -> tfllm when
    `to_tfllm`, else back), checking each shape."""
    family = family_of(source if to_tfllm else target)
    for from_layer, to_layer in _pairs(source, target, family, to_tfllm):
        weights = from_layer.get_weights()
        expected = [tuple(w.shape) for w in to_layer.get_weights()]
        if [tuple(w.shape) for w in weights] != expected:
            raise ConfigError(f"Layer {from_layer.name}: weights of shapes "
                              f"{[w.shape for w in weights]} do not fit {expected}.")
        to_layer.set_weights(weights)


def tfllm_model(backbone, masked_lm_head=None):
    """The tfllm pretraining model (BertPretrainer / GptCausalLM) of a keras-hub
    backbone, with the MLM head's weights when given (keras-hub's MaskedLMHead)."""
    config = config_from_keras_hub(backbone)
    if config.family == "gpt":
        model = GptCausalLM(GptBackbone(config))
    else:
        model = BertPretrainer(BertEncoder(config))
    copy_backbone(backbone, model.backbone, to_tfllm=True)
    if masked_lm_head is not None:
        copy_mlm_head(masked_lm_head, model.mlm_head)
    return model


def copy_mlm_head(source, target):
    """MaskedLMHead -> MaskedLMHead: its own weights (its projection is the tied
    token embedding, copied with the backbone)."""
    def own(head):
        tied = {id(v) for v in head.token_embedding.weights}
        return [v for v in head.weights if id(v) not in tied]

    for from_variable, to_variable in zip(own(source), own(target), strict=True):
        if tuple(from_variable.shape) != tuple(to_variable.shape):
            raise ConfigError(f"MLM head weight {from_variable.path} of shape "
                              f"{from_variable.shape} does not fit {to_variable.shape}.")
        to_variable.assign(from_variable)
