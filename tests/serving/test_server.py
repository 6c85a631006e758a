"""tfllm.serve end to end: exported models, a real server process, REST and gRPC
clients on loopback; answers compared with the in-process models."""

import base64
import concurrent.futures
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import requests
import tensorflow as tf

from tests.serving.conftest import MAX_REQUEST_BYTES
from tests.serving.models import PAIRS, PROMPTS, QUESTIONS, TEXTS
from tfllm.export import modules
from tfllm.client import GrpcClient, RestClient, ServerError
from tfllm.export.saved_model import export_module
from tfllm.serving.process import ServerProcess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def clients(server):
    return [RestClient(f"127.0.0.1:{server.rest_port}"),
            GrpcClient(f"127.0.0.1:{server.grpc_port}")]


def post(server, path, body=None, data=None):
    response = requests.post(f"{server.rest}/v1/models/{path}", json=body, data=data, timeout=60)
    return response.status_code, response.json()


def test_classifier_over_rest_and_grpc_equals_the_keras_model(server, exported):
    module = exported[2]["bert_classifier"]
    expected = module.reference(TEXTS)["serving_default"]
    for client in clients(server):
        outputs = client.predict("bert_classifier", {"text": TEXTS})
        np.testing.assert_allclose(outputs["scores"], expected["scores"], atol=1e-5)
        assert list(outputs["label"]) == list(expected["label"])
        classified = client.classify("bert_classifier", TEXTS)
        for row, scores in zip(classified, expected["scores"]):
            assert [label for label, _ in row] == ["science", "work"]
            np.testing.assert_allclose([s for _, s in row], scores, atol=1e-5)
    # Row format with b64 values, as TF Serving documents it.
    status, body = post(server, "bert_classifier:predict", {"instances": [
        {"b64": base64.b64encode(t.encode()).decode()} for t in TEXTS]})
    assert status == 200
    np.testing.assert_allclose([p["scores"] for p in body["predictions"]], expected["scores"],
                               atol=1e-5)
    # The token-ids signature: variable-length rows, padded by the batcher when merged.
    ids, masks, _ = module.packer(module.tokenizer(tf.constant(TEXTS)))
    outputs = clients(server)[1].predict("bert_classifier", {
        "token_ids": ids.numpy().astype(np.int32), "padding_mask": masks.numpy().astype(np.int32)},
        signature="token_ids")
    np.testing.assert_allclose(outputs["scores"], expected["scores"], atol=1e-5)


def test_pair_classifier_and_regressor_over_rest_and_grpc_equal_the_keras_models(
        server, exported):
    classifier = exported[2]["bert_pair_classifier"].reference(PAIRS)["serving_default"]
    regressor = exported[2]["gpt_pair_regressor"].reference(PAIRS)["serving_default"]
    texts, pairs = PAIRS["text"], PAIRS["text_pair"]
    for client in clients(server):
        outputs = client.predict("bert_pair_classifier", PAIRS)
        np.testing.assert_allclose(outputs["scores"], classifier["scores"], atol=1e-5)
        classified = client.classify("bert_pair_classifier", texts, text_pairs=pairs)
        np.testing.assert_allclose([[s for _, s in row] for row in classified],
                                   classifier["scores"], atol=1e-5)
        np.testing.assert_allclose(client.predict("gpt_pair_regressor", PAIRS)["score"],
                                   regressor["score"], atol=1e-5)
        np.testing.assert_allclose(client.regress("gpt_pair_regressor", texts, text_pairs=pairs),
                                   regressor["score"], atol=1e-5)
    # The pair matters: swapping the second texts changes the answers.
    swapped = {"text": texts, "text_pair": pairs[::-1]}
    assert not np.allclose(clients(server)[0].predict("gpt_pair_regressor", swapped)["score"],
                           regressor["score"], atol=1e-5)
    status, answer = post(server, "gpt_pair_regressor:regress", {"examples": [{"text": "a"}]})
    assert status == 400 and "text_pair" in answer["error"], answer


def test_tagger_over_rest_and_grpc_equals_the_keras_model(server, exported):
    texts = TEXTS + ["One-word"]
    expected = exported[2]["bert_tagger"].reference(texts)["serving_default"]
    for client in clients(server):
        outputs = {key: _as_text(value) for key, value in
                   client.predict("bert_tagger", {"text": texts}).items()}
        for key, value in expected.items():
            assert outputs[key] == _as_text(value), key
        assert [w for w in outputs["words"][2] if w] == ["One-word"]


def test_qa_over_rest_and_grpc_equals_the_keras_model(server, exported):
    module = exported[2]["bert_qa"]
    expected = module.reference(QUESTIONS)["serving_default"]
    windows = module.windows(tf.constant(QUESTIONS["question"]),
                             tf.constant(QUESTIONS["context"]))
    assert len(windows["example"]) > 4  # both contexts span several windows
    for client in clients(server):
        outputs = client.predict("bert_qa", QUESTIONS)
        assert [a.decode() if isinstance(a, bytes) else a for a in outputs["answer"]] == \
            [a.decode() for a in expected["answer"]]
        np.testing.assert_array_equal(outputs["start"], expected["start"])
        np.testing.assert_array_equal(outputs["end"], expected["end"])
        assert not np.asarray(outputs["no_answer"]).any()  # exported without no-answer
        for answer, start, end, context in zip(expected["answer"], outputs["start"],
                                               outputs["end"], QUESTIONS["context"]):
            assert answer and context[start:end] == answer.decode()  # character offsets


def _as_text(array):
    """Nested lists with bytes decoded (REST answers str, gRPC bytes)."""
    return [[v.decode() if isinstance(v, bytes) else v for v in row] for row in np.asarray(
        array).tolist()]


def test_generator_over_rest_and_grpc_equals_tfllm_generate(server, exported):
    module = exported[2]["gpt_generator"]
    greedy = module.reference(PROMPTS)["serving_default"]["text"]
    settings = {"max_new_tokens": np.array([5, 3], np.int32),
                "temperature": np.array([0.9, 0.0], np.float32),
                "top_k": np.array([20, 0], np.int32), "top_p": np.array([0.95, 1.0], np.float32),
                "seed": np.array([11, 0], np.int32)}
    sampled = _generate_in_process(module, PROMPTS, settings)
    for client in clients(server):
        assert list(client.predict("gpt_generator", {"prompt": PROMPTS})["text"]) == list(greedy)
        outputs = client.predict("gpt_generator", {"prompt": PROMPTS, **settings}, "generate")
        assert [t.decode() for t in outputs["text"]] == sampled["text"]
        assert list(outputs["num_tokens"]) == sampled["num_tokens"]
    assert clients(server)[0].predict("gpt_generator", {"prompt": PROMPTS}, label="stable")


def _generate_in_process(module, prompts, settings):
    """Python tokenization, `tfllm.generate`'s decoding loop (without XLA, as served)."""
    tokenizer, stops = module.python_tokenizer, module.stop_ids
    ids = tokenizer.tokenize(prompts)
    total = max(map(len, ids)) + int(settings["max_new_tokens"].max())
    tokens = np.zeros((len(ids), total), np.int32)
    mask = np.zeros_like(tokens)
    for row, prompt in enumerate(ids):
        tokens[row, :len(prompt)] = prompt
        mask[row, :len(prompt)] = 1
    out, generated = module.generator.decode(tf.constant(tokens), tf.constant(mask), {
        k: tf.constant(v) for k, v in settings.items()})
    out, generated = out.numpy(), generated.numpy().tolist()
    texts = [tokenizer.detokenize([t for t in out[r, len(p):len(p) + generated[r]]
                                   if t not in stops]) for r, p in enumerate(ids)]
    return {"text": texts, "num_tokens": generated}


STREAM_SETTINGS = [{"max_new_tokens": 12},
                   {"max_new_tokens": 12, "temperature": 0.9, "top_k": 20, "top_p": 0.95,
                    "seed": 11}]


@pytest.mark.parametrize("settings", STREAM_SETTINGS, ids=["greedy", "seeded_sampling"])
def test_streamed_generation_equals_the_generate_signature(server, settings):
    """Over both front ends the pieces arrive one by one and add up to the answer the
    `generate` signature gives for the same settings and seed."""
    full = {**{"max_new_tokens": 32, "temperature": 0.0, "top_k": 0, "top_p": 1.0, "seed": 0},
            **settings}
    answer = clients(server)[1].predict("gpt_generator", {
        "prompt": [PROMPTS[0]], **{k: np.array([v]) for k, v in full.items()}}, "generate")
    expected = answer["text"][0].decode()
    for client in clients(server):
        pieces = list(client.generate_stream("gpt_generator", PROMPTS[0], **settings))
        assert "".join(p["text"] for p in pieces) == expected
        assert [p["finished"] for p in pieces] == [False] * (len(pieces) - 1) + [True]
        assert [p["num_tokens"] for p in pieces] == list(range(1, len(pieces) + 1))
        assert pieces[-1]["num_tokens"] == answer["num_tokens"][0] and len(pieces) > 1
        assert {p["version"] for p in pieces} == {"1"}


def _stream_ends(server):
    metrics = requests.get(f"{server.rest}/monitoring/prometheus/metrics", timeout=10).text
    ends = {}
    for line in metrics.splitlines():
        if line.startswith(":tfllm:serving:generate_stream_count_total{"):
            labels, value = line.rsplit(" ", 1)
            ends[labels.split('end="')[1].split('"')[0]] = float(value)
    return ends


def test_a_client_that_hangs_up_stops_its_generation(server):
    """After the first piece the client goes away: the server counts the stream as
    cancelled (it stopped generating) and answers the next request."""
    for client in clients(server):
        before = _stream_ends(server).get("cancelled", 0)
        stream = client.generate_stream("gpt_generator", PROMPTS[1], max_new_tokens=30)
        first = next(stream)
        assert not first["finished"]
        stream.close()
        assert _wait_for(lambda: _stream_ends(server).get("cancelled", 0) == before + 1)
        assert client.predict("gpt_generator", {"prompt": PROMPTS})["text"].shape == (2,)


def test_bad_stream_requests_get_tf_serving_codes(server):
    rest, grpc_client = clients(server)
    for prompt, model, settings, code, message in [
            (PROMPTS[0], "nothing", {}, ("NOT_FOUND", 404), "Servable not found"),
            (PROMPTS[0], "bert_classifier", {}, ("INVALID_ARGUMENT", 400), "cannot stream"),
            (PROMPTS[0], "gpt_generator", {"max_new_tokens": 0}, ("INVALID_ARGUMENT", 400),
             "max_new_tokens must be at least 1"),
            (PROMPTS[0], "gpt_generator", {"top_p": 2.0}, ("INVALID_ARGUMENT", 400),
             "top_p must be in (0, 1]"),
            ("a " * 40, "gpt_generator", {}, ("INVALID_ARGUMENT", 400), "no room"),
            ("", "gpt_generator", {}, ("INVALID_ARGUMENT", 400), "non-empty prompt")]:
        for client, status in ((grpc_client, code[0]), (rest, code[1])):
            with pytest.raises(ServerError) as error:
                next(client.generate_stream(model, prompt, **settings))
            assert error.value.status == status and message in error.value.message, error.value
    for body, message in [({"prompt": "a", "beams": 3}, "Unknown generation settings"),
                          ({"prompt": "a", "seed": 1.5}, "seed must be an integer"),
                          ({"text": "a"}, '"prompt" string')]:
        status, answer = post(server, "gpt_generator:generateStream", body)
        assert status == 400 and message in answer["error"], answer
    status, answer = post(server, "gpt_generator:generateStream", data=b"{oops")
    assert status == 400 and "not valid JSON" in answer["error"]


def test_generated_grpc_code_matches_generation_proto(tmp_path):
    """tfllm/serving/protos/*_pb2*.py are protoc's output for generation.proto."""
    proto = "tfllm/serving/protos/generation.proto"
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", f"-I{REPO}",
                    f"--python_out={tmp_path}", f"--grpc_python_out={tmp_path}",
                    f"{REPO}/{proto}"], check=True, cwd=REPO)
    for name in ("generation_pb2.py", "generation_pb2_grpc.py"):
        with open(f"{REPO}/tfllm/serving/protos/{name}") as shipped:
            assert (tmp_path / "tfllm/serving/protos" / name).read_text() == shipped.read(), (
                f"regenerate {name}: see tfllm/serving/protos/__init__.py")


def test_encoder_embeddings_and_fill_mask(server, exported):
    module = exported[2]["bert_encoder"]
    expected = module.reference(TEXTS)["serving_default"]
    for client in clients(server):
        outputs = client.predict("bert_encoder", {"text": TEXTS})
        np.testing.assert_allclose(outputs["pooled_output"], expected["pooled_output"],
                                   atol=1e-4)
        filled = client.predict("bert_encoder", {"text": ["the [MASK] is fast ."]}, "fill_mask")
        assert b"[MASK]" not in filled["text"][0] and filled["top_tokens"].shape == (1, 1, 3)
        assert np.all(np.diff(filled["top_scores"][0, 0]) <= 0)


def test_text_signatures_run_at_the_longest_text_and_equal_full_length(exported):
    """A short call runs the model at its own length, not max_sequence_length; padding is
    masked, so every answer equals full-length packing and does not depend on the batch."""
    classifier, encoder = exported[2]["bert_classifier"], exported[2]["bert_encoder"]
    short, long = "Work is fun.", " ".join(TEXTS * 3)
    full_length = encoder.model.config.max_sequence_length
    packed = modules._packed_batch([short], encoder.python_tokenizer, full_length)
    real = int(packed["padding_mask"].sum())
    outputs = encoder.serving_default(tf.constant([short]))
    assert outputs["padding_mask"].shape[1] == real < full_length
    full = encoder.model.backbone(packed, training=False)
    np.testing.assert_allclose(outputs["pooled_output"], full["pooled_output"], atol=1e-5)
    np.testing.assert_allclose(outputs["sequence_output"], full["sequence_output"][:, :real],
                               atol=1e-5)
    both = encoder.serving_default(tf.constant([short, long]))
    assert both["padding_mask"].shape[1] == full_length  # the long text fills the context
    np.testing.assert_allclose(both["pooled_output"][:1], outputs["pooled_output"], atol=1e-5)

    scores = classifier.serving_default(tf.constant([short, long]))["scores"]
    np.testing.assert_allclose(scores, classifier.reference([short, long])["serving_default"][
        "scores"], atol=1e-5)
    np.testing.assert_allclose(classifier.serving_default(tf.constant([short]))["scores"],
                               scores[:1], atol=1e-5)

    masked = "the [MASK] is fast ."
    alone, batched = (encoder.fill_mask(tf.constant(texts)) for texts in ([masked],
                                                                          [masked, long]))
    np.testing.assert_array_equal(alone["top_tokens"], batched["top_tokens"][:1, :1])
    np.testing.assert_allclose(alone["top_scores"], batched["top_scores"][:1, :1], atol=1e-5)


def test_status_metadata_versions_and_labels(server):
    rest, grpc_client = clients(server)
    for client in (rest, grpc_client):
        (status,) = client.status("bert_classifier")
        assert status["state"] == "AVAILABLE" and status["status"]["error_code"] == "OK"
        signatures = client.signatures("bert_classifier", version=1)
        assert signatures["classify"] == {"inputs": ["inputs"], "outputs": ["classes", "scores"]}
        assert client.status("gpt_generator", label="stable")[0]["version"] == "1"
    assert requests.get(f"{server.rest}/v1/models/bert_classifier/versions/1",
                        timeout=10).status_code == 200
    for path, code, message in [
            ("bert_classifier/versions/9", 404, "Could not find version 9"),
            ("bert_classifier/labels/canary", 400, "Unrecognized servable version label"),
            ("missing", 404, "Servable not found"),
            ("bert_classifier/versions/x1", 400, "Malformed request")]:
        response = requests.get(f"{server.rest}/v1/models/{path}", timeout=10)
        assert response.status_code == code and message in response.json()["error"], path
    with pytest.raises(ServerError, match="NOT_FOUND"):
        grpc_client.predict("bert_classifier", {"text": TEXTS}, version=9)


@pytest.mark.parametrize("path, body, data, code, message", [
    ("bert_classifier:predict", None, b"{not json", 400, "not valid JSON"),
    ("bert_classifier:predict", {"instances": ["a"], "inputs": ["a"]}, None, 400, "exactly one"),
    ("bert_classifier:predict", {"signature_name": "serving_default"}, None, 400, "exactly one"),
    ("bert_classifier:predict", {"inputs": {"txt": ["a"]}}, None, 400, "takes inputs ['text']"),
    ("bert_classifier:predict", {"inputs": [1, 2]}, None, 400, "expects strings"),
    ("bert_classifier:predict", {"inputs": {"b64": "%%%"}}, None, 400, "not valid base64"),
    ("bert_classifier:predict", {"signature_name": "nope", "inputs": ["a"]}, None, 400,
     "not found in signature def"),
    ("bert_classifier:predict", {"signature_name": "token_ids", "inputs": {
        "token_ids": [[1, 2], [3]], "padding_mask": [[1, 1], [1]]}}, None, 400, "rectangular"),
    ("bert_classifier:classify", {"examples": [{"text": "a"}]}, None, 400,
     "Expected classification signature"),
    ("bert_classifier:regress", {"examples": [{"text": "a"}]}, None, 400,
     "not found in signature def"),
    ("bert_classifier/labels/nope:predict", {"inputs": ["a"]}, None, 400, "Unrecognized"),
    ("unknown:predict", {"inputs": ["a"]}, None, 404, "Servable not found"),
    ("broken:predict", {"inputs": ["a"]}, None, 404, "Servable not found"),
    ("gpt_generator:predict", {"inputs": {"prompt": ["a " * 40]}}, None, 400, "no room"),
    ("gpt_generator:predict", {"signature_name": "generate", "instances": [{
        "prompt": "a", "max_new_tokens": 2, "temperature": -1.0, "top_k": 0, "top_p": 1.0,
        "seed": 0}]}, None, 400, "temperature must be >= 0"),
    ("bert_classifier:predict", None, b'{"inputs": ["' + b"x" * MAX_REQUEST_BYTES + b'"]}',
     413, "exceeds the server's limit"),
])
def test_bad_rest_requests_get_tf_serving_errors(server, path, body, data, code, message):
    status, answer = post(server, path, body, data)
    assert status == code and message in answer["error"], answer
    assert post(server, "bert_classifier:predict", {"inputs": TEXTS})[0] == 200


def test_bad_grpc_requests_get_status_codes(server):
    client = clients(server)[1]
    cases = [(lambda: client.predict("bert_classifier", {"text": np.array([1, 2])}),
              "INVALID_ARGUMENT"),
             (lambda: client.predict("bert_classifier", {"text": ["x" * MAX_REQUEST_BYTES]}),
              "RESOURCE_EXHAUSTED"),
             (lambda: client.predict("nope", {"text": TEXTS}), "NOT_FOUND"),
             (lambda: client.classify("bert_classifier", TEXTS, signature="serving_default"),
              "INVALID_ARGUMENT")]
    for call, code in cases:
        with pytest.raises(ServerError) as raised:
            call()
        assert raised.value.status == code
    assert client.predict("bert_classifier", {"text": TEXTS})["label"].shape == (2,)


@pytest.mark.parametrize("path", [
    "..%2F..%2Fetc%2Fpasswd:predict", "%2E%2E:predict", "bert_classifier%2F..%2Fhot:predict",
    "bert_classifier/versions/..%2F1:predict", "bert_classifier/versions/-1:predict",
    "bert_classifier/labels/..%2F..:predict"])
def test_path_traversal_in_model_names_and_versions_is_rejected(server, path):
    status, answer = post(server, path, {"inputs": TEXTS})
    assert status in (400, 404) and answer["error"], (path, status, answer)
    with pytest.raises(ServerError) as raised:
        clients(server)[1].predict("../bert_classifier", {"text": TEXTS})
    assert raised.value.status == "NOT_FOUND"


def test_a_model_that_fails_to_load_is_reported_and_the_others_serve(server):
    (status,) = clients(server)[0].status("broken")
    assert status["state"] == "END" and status["status"]["error_code"] == "UNKNOWN"
    assert "Failed to load" in status["status"]["error_message"]
    assert clients(server)[0].predict("bert_classifier", {"text": TEXTS})["label"].shape == (2,)
    assert server.process.poll() is None


def test_concurrent_clients_with_malformed_requests_interleaved(server, exported):
    expected = exported[2]["bert_classifier"].reference(TEXTS)["serving_default"]["scores"]
    rest, grpc_client = clients(server)

    def worker(index):
        if index % 3 == 2:
            status, answer = post(server, "bert_classifier:predict", {"inputs": [index]})
            return status == 400 and "error" in answer
        client = rest if index % 2 else grpc_client
        outputs = client.predict("bert_classifier", {"text": TEXTS})
        return np.allclose(outputs["scores"], expected, atol=1e-5)

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        assert all(pool.map(worker, range(96)))
    metrics = requests.get(f"{server.rest}/monitoring/prometheus/metrics", timeout=10).text
    assert ':tensorflow:serving:request_count_total{model_name="bert_classifier",status="OK"}' \
        in metrics
    sums = [float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(
        ":tensorflow:serving:batching_session:processed_batch_size_sum")]
    counts = [float(line.split()[-1]) for line in metrics.splitlines() if line.startswith(
        ":tensorflow:serving:batching_session:processed_batch_size_count")]
    assert sum(sums) > sum(counts)  # some batches merged more than one request's rows


def _wait_for(condition, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.25)
    return False


def test_new_version_is_hot_loaded_while_requests_continue(server, exported):
    import keras

    from tests.serving.models import LABELS
    from tfllm.models.bert import BertEncoder
    from tfllm.models.classifier import SequenceClassifier

    root, base, built = exported
    rest = clients(server)[0]
    # A half-written version (no saved_model.pb yet) and an export in progress.
    os.makedirs(f"{base}/hot/7/variables")
    shutil.copytree(f"{base}/bert_classifier/1", f"{base}/hot/.tmp-8-abcd")
    errors, answered, stop = [], [], threading.Event()

    def keep_asking():
        while not stop.is_set():
            try:
                answered.append(rest.predict("hot", {"text": TEXTS})["scores"])
            except Exception as error:  # recorded: none may happen
                errors.append(error)

    thread = threading.Thread(target=keep_asking)
    thread.start()
    try:
        time.sleep(3)  # several polls: neither directory may be picked up
        assert [s["version"] for s in rest.status("hot")] == ["1"]
        shutil.rmtree(f"{base}/hot/7")
        old = built["bert_classifier"]
        keras.utils.set_random_seed(99)
        new = modules.TaskModule(SequenceClassifier(
            BertEncoder(old.model.config), num_classes=len(LABELS)), old.python_tokenizer, LABELS)
        # The next version number; the stale temporary directory is cleaned up.
        assert export_module(new, base, "hot", TEXTS).endswith("/hot/2")
        assert not os.path.exists(f"{base}/hot/.tmp-8-abcd")
        states = lambda: {s["version"]: s["state"] for s in rest.status("hot")}  # noqa: E731
        assert _wait_for(lambda: states() == {"2": "AVAILABLE", "1": "END"})
    finally:
        stop.set()
        thread.join()
    assert not errors and len(answered) > 5
    np.testing.assert_allclose(rest.predict("hot", {"text": TEXTS})["scores"],
                               new.reference(TEXTS)["serving_default"]["scores"], atol=1e-5)


def test_model_config_file_is_polled(server, exported):
    root, base, _ = exported
    config = root / "models.config"
    original = config.read_text()
    config.write_text(original.replace("model_config_list {", (
        'model_config_list {\n  config { name: "late" base_path: "%s/bert_classifier" '
        'model_platform: "tensorflow" }' % base)))
    try:
        assert _wait_for(lambda: requests.get(f"{server.rest}/v1/models/late",
                                              timeout=10).status_code == 200)
    finally:
        config.write_text(original)
    assert _wait_for(lambda: requests.get(f"{server.rest}/v1/models/late",
                                          timeout=10).status_code == 404)


def test_listens_on_loopback_only_by_default(server):
    loopback = {"0100007F", "0000000000000000FFFF00000100007F",
                "00000000000000000000000001000000"}
    addresses = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A":  # LISTEN
                    address, port = fields[1].split(":")
                    addresses.setdefault(int(port, 16), set()).add(address)
    for port in (server.rest_port, server.grpc_port):
        assert addresses[port] and addresses[port] <= loopback, (port, addresses[port])


def test_client_command_over_rest_and_grpc(server):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for address in (f"--server=127.0.0.1:{server.rest_port}",
                    f"--grpc=127.0.0.1:{server.grpc_port}"):
        result = subprocess.run(
            [sys.executable, "-m", "tfllm.client", address, "--model=bert_classifier",
             f"--text={TEXTS[0]}"], cwd=REPO, env=env, capture_output=True, text=True,
            timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        assert TEXTS[0] in result.stdout and "label: science" in result.stdout
        result = subprocess.run(
            [sys.executable, "-m", "tfllm.client", address, "--model=gpt_generator",
             f"--text={PROMPTS[0]}", "--temperature=0.8", "--seed=2", "--max_new_tokens=3"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0 and "num_tokens: 3" in result.stdout, result.stderr
        result = subprocess.run(
            [sys.executable, "-m", "tfllm.client", address, "--model=gpt_generator",
             f"--text={PROMPTS[0]}", "--stream", "--max_new_tokens=4"],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.startswith(PROMPTS[0]) and "(4 tokens, version 1)" in result.stdout
    result = subprocess.run([sys.executable, "-m", "tfllm.client", "--server=127.0.0.1:1",
                             "--model=x", "--text=a"], cwd=REPO, env=env, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2 and "Cannot reach the REST server" in result.stderr


def test_serve_rejects_bad_configuration(tmp_path):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    bad = tmp_path / "batching.config"
    bad.write_text("max_batch_size { value: oops }")
    for flags, message in [
            ([], "--model_base_path"),
            ([f"--model_base_path={tmp_path}", "--enable_batching",
              f"--batching_parameters_file={bad}"], "--batching_parameters_file"),
            ([f"--model_config_file={tmp_path}/none.config"], "Cannot read --model_config_file"),
            ([f"--model_base_path={tmp_path}", f"--batching_parameters_file={bad}"],
             "needs --enable_batching")]:
        result = subprocess.run([sys.executable, "-m", "tfllm.serve", *flags], cwd=REPO,
                                env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 2 and message in result.stderr, result.stderr


def test_single_model_flags_serve_the_latest_version(exported):
    _, base, _ = exported
    process = ServerProcess(f"--model_base_path={base}/bert_classifier", "--model_name=clf",
                            "--enable_model_warmup=false")
    try:
        assert RestClient(f"127.0.0.1:{process.rest_port}").predict(
            "clf", {"text": TEXTS})["label"].shape == (2,)
    finally:
        process.stop()
