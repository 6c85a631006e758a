"""One exported model set and one running server for the serving tests."""

import os
import shutil

import pytest

from tests.serving.models import build
from tfllm.serving.process import ServerProcess

CONFIG = """model_config_list {{
  config {{ name: "bert_classifier" base_path: "{base}/bert_classifier"
           model_platform: "tensorflow" }}
  config {{ name: "bert_pair_classifier" base_path: "{base}/bert_pair_classifier"
           model_platform: "tensorflow" }}
  config {{ name: "gpt_pair_regressor" base_path: "{base}/gpt_pair_regressor"
           model_platform: "tensorflow" }}
  config {{ name: "bert_tagger" base_path: "{base}/bert_tagger" model_platform: "tensorflow" }}
  config {{ name: "bert_qa" base_path: "{base}/bert_qa" model_platform: "tensorflow" }}
  config {{ name: "bert_encoder" base_path: "{base}/bert_encoder" model_platform: "tensorflow" }}
  config {{ name: "gpt_generator" base_path: "{base}/gpt_generator" model_platform: "tensorflow"
           model_version_policy {{ all {{}} }} version_labels {{ key: "stable" value: 1 }} }}
  config {{ name: "hot" base_path: "{base}/hot" model_platform: "tensorflow" }}
  config {{ name: "broken" base_path: "{base}/broken" model_platform: "tensorflow" }}
}}
"""
BATCHING = """max_batch_size { value: 16 }
batch_timeout_micros { value: 20000 }
num_batch_threads { value: 2 }
pad_variable_length_inputs: true
allowed_batch_sizes: 4
allowed_batch_sizes: 16
tfllm_length_buckets: 40
"""
MAX_REQUEST_BYTES = 1 << 18


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("serving")
    base, built = build(root)
    shutil.copytree(f"{base}/bert_classifier/1", f"{base}/hot/1")
    os.makedirs(f"{base}/broken/1")
    with open(f"{base}/broken/1/saved_model.pb", "wb") as f:
        f.write(b"this is not a SavedModel")
    return root, base, built


@pytest.fixture(scope="session")
def server(exported):
    root, base, _ = exported
    config = root / "models.config"
    config.write_text(CONFIG.format(base=base))
    batching = root / "batching.config"
    batching.write_text(BATCHING)
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    process = ServerProcess(
        f"--model_config_file={config}", "--model_config_file_poll_wait_seconds=1",
        "--file_system_poll_wait_seconds=1", "--enable_batching",
        f"--batching_parameters_file={batching}",
        f"--monitoring_config_file={repo}/export/monitoring.config",
        f"--max_request_bytes={MAX_REQUEST_BYTES}")
    yield process
    process.stop()
