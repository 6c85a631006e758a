"""The compatibility claim, checked where the real binary exists: the same exported
models and clients against `tensorflow_model_server` (skipped when it is not on
PATH, as on the project's CI machine; run with `-m real_tf_serving`)."""

import shutil

import numpy as np
import pytest

from tests.serving.models import PROMPTS, TEXTS
from tfllm.client import GrpcClient, RestClient, ServerError
from tfllm.serving.process import ServerProcess

BINARY = shutil.which("tensorflow_model_server")
pytestmark = [pytest.mark.real_tf_serving,
              pytest.mark.skipif(BINARY is None, reason="tensorflow_model_server not on PATH")]


@pytest.fixture(scope="module")
def real_server(exported):
    root, base, _ = exported
    config = root / "real_models.config"
    config.write_text("model_config_list {\n" + "".join(
        f'  config {{ name: "{name}" base_path: "{base}/{name}" model_platform: "tensorflow" }}\n'
        for name in ("bert_classifier", "gpt_generator", "bert_encoder")) + "}\n")
    process = ServerProcess(f"--model_config_file={config}", command=(BINARY,))
    yield process
    process.stop()


def test_round_trips_match_the_in_process_models(real_server, exported):
    built = exported[2]
    scores = built["bert_classifier"].reference(TEXTS)["serving_default"]["scores"]
    greedy = built["gpt_generator"].reference(PROMPTS)["serving_default"]["text"]
    for client in (RestClient(f"127.0.0.1:{real_server.rest_port}"),
                   GrpcClient(f"127.0.0.1:{real_server.grpc_port}")):
        np.testing.assert_allclose(client.predict("bert_classifier", {"text": TEXTS})["scores"],
                                   scores, atol=1e-5)
        assert [s for _, s in client.classify("bert_classifier", TEXTS)[0]] == \
            pytest.approx(list(scores[0]), abs=1e-5)
        assert list(client.predict("gpt_generator", {"prompt": PROMPTS})["text"]) == list(greedy)
        with pytest.raises(ServerError):
            client.predict("bert_classifier", {"txt": TEXTS})
