"""The tracked TF Serving config files parse as the protos TF Serving reads."""

import os

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

EXPORT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "export")


def test_models_config_is_a_valid_model_server_config():
    with open(os.path.join(EXPORT, "models.config")) as f:
        config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    names = [c.name for c in config.model_config_list.config]
    assert names == ["bert_classifier", "gpt_generator"]
    for model in config.model_config_list.config:
        assert model.base_path == f"/models/{model.name}"
        assert model.model_platform == "tensorflow"
