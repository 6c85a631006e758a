import dataclasses
import json

import pytest

from tfllm.errors import ConfigError
from tfllm.models import configs


def test_every_preset_is_valid_and_round_trips_through_json():
    for name, config in configs.PRESETS.items():
        restored = configs.from_dict(json.loads(json.dumps(config.to_dict())))
        assert restored == config, name


def test_override_converts_flag_strings_to_field_types():
    config = configs.override(configs.get_preset("bert_tiny"),
                              {"num_layers": "3", "dropout": "0.2", "dtype": "mixed_bfloat16"})
    assert (config.num_layers, config.dropout, config.dtype) == (3, 0.2, "mixed_bfloat16")
    assert config.hidden_size == configs.get_preset("bert_tiny").hidden_size


def test_preset_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        configs.get_preset("gpt_tiny").num_layers = 7


@pytest.mark.parametrize("overrides, message", [
    ({"num_layer": "3"}, "Unknown bert config field(s) num_layer"),
    ({"num_layers": "three"}, "'num_layers' (--num_layers) expects an integer, got 'three'"),
    ({"num_layers": "0"}, "'num_layers' must be a positive integer"),
    ({"num_heads": "3"}, "hidden_size=64 is not divisible by num_heads=3"),
    ({"dropout": "1.5"}, "'dropout' must be in [0, 1)"),
    ({"dtype": "float64"}, "'dtype' must be a Keras dtype policy"),
    ({"activation": "swish"}, "'activation' must be one of"),
])
def test_bad_overrides_name_the_field(overrides, message):
    with pytest.raises(ConfigError) as error:
        configs.override(configs.get_preset("bert_tiny"), overrides)
    assert message in str(error.value)


def test_unknown_preset_lists_the_known_ones():
    with pytest.raises(ConfigError, match="Unknown model preset 'bert_huge'.*bert_base"):
        configs.get_preset("bert_huge")


def test_from_dict_rejects_unknown_family_and_fields():
    with pytest.raises(ConfigError, match="unknown model family 't5'"):
        configs.from_dict({"family": "t5"})
    data = configs.get_preset("gpt_tiny").to_dict()
    with pytest.raises(ConfigError, match="Unknown gpt config field"):
        configs.from_dict({**data, "type_vocab_size": 2})
