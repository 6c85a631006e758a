"""The tracked deployment files parse as what TF Serving and Kubernetes read, and
agree with each other."""

import os

import yaml
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2

from tfllm.serving import config as server_config

EXPORT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "export")


def test_models_config_is_a_valid_model_server_config():
    with open(os.path.join(EXPORT, "models.config")) as f:
        config = text_format.Parse(f.read(), model_server_config_pb2.ModelServerConfig())
    names = [c.name for c in config.model_config_list.config]
    assert names == ["bert_classifier", "bert_encoder", "gpt_generator"]
    for model in config.model_config_list.config:
        assert model.base_path == f"/models/{model.name}"
        assert model.model_platform == "tensorflow"
    server_config.check_model_server_config(config, "models.config")


def test_batching_and_monitoring_configs_parse():
    batching = server_config.read_text_proto(os.path.join(EXPORT, "batching.config"),
                                             server_config.BatchingParameters, "batching")
    assert batching.max_batch_size.value == 32 and batching.batch_timeout_micros.value > 0
    monitoring = server_config.read_text_proto(os.path.join(EXPORT, "monitoring.config"),
                                               server_config.MonitoringConfig, "monitoring")
    assert monitoring.prometheus_config.enable
    assert monitoring.prometheus_config.path == "/monitoring/prometheus/metrics"


def test_kubernetes_manifest_serves_the_config_files():
    with open(os.path.join(EXPORT, "kubernetes.yaml")) as f:
        documents = {d["kind"]: d for d in yaml.safe_load_all(f)}
    container = documents["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("tensorflow/serving")
    args = container["args"]
    for name in ("models.config", "batching.config", "monitoring.config"):
        assert any(arg.endswith(f"=/config/{name}") for arg in args), name
    assert {p["containerPort"] for p in container["ports"]} == {8500, 8501}
    assert {p["port"] for p in documents["Service"]["spec"]["ports"]} == {8500, 8501}
