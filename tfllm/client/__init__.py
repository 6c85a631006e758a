"""A small client of TF Serving's REST and gRPC APIs (works with `tfllm.serve`
and with the real `tensorflow_model_server`).

    client = RestClient("localhost:8501")         # or GrpcClient("localhost:8500")
    client.predict("bert_classifier", {"text": ["Hello"]})   # {"label": ..., "scores": ...}
    client.classify("bert_classifier", ["Hello"])           # [[("label", score), ...]]
    client.regress("sts", ["A cat."], text_pairs=["A dog."])  # [score, ...]
    for piece in client.generate_stream("gpt", "Once", max_new_tokens=16):  # tfllm.serve only
        print(piece["text"], end="", flush=True)
"""

import base64
import json

import grpc
import numpy as np
import requests
import tensorflow as tf
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tfllm.errors import TfllmError


def _features(texts, text_pairs=None):
    """tf.Example features of texts (and their pairs) for Classify and Regress."""
    if text_pairs is None:
        return [{"text": t} for t in texts]
    return [{"text": t, "text_pair": p} for t, p in zip(texts, text_pairs)]
from tfllm.serving.protos import generation_pb2, generation_pb2_grpc


class ServerError(TfllmError):
    """The server answered with an error (`status`: HTTP status or gRPC code name)."""

    def __init__(self, status, message):
        super().__init__(f"The server answered {status}: {message}")
        self.status, self.message = status, message


def _columns(outputs):
    """JSON outputs as numpy arrays, text as UTF-8 bytes (what gRPC returns)."""
    arrays = {}
    for key, value in outputs.items():
        array = np.asarray(value)
        if np.issubdtype(array.dtype, np.str_):
            array = np.vectorize(lambda s: s.encode("utf-8"), otypes=[object])(array)
        arrays[key] = array
    return arrays


def _json_value(value):
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind in "SU":
        return [_json_value(v) for v in array] if array.ndim else (
            {"b64": base64.b64encode(value).decode()} if isinstance(value, bytes) else str(value))
    return array.tolist()


class RestClient:
    def __init__(self, server, timeout=60.0):
        self.base = f"http://{server}/v1/models"
        self.timeout = timeout
        self.session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_maxsize=64)  # one per concurrent caller
        self.session.mount("http://", adapter)
        self._outputs = {}  # (model, version, label, signature) -> output names

    def _url(self, model, version, label):
        if version is not None:
            return f"{self.base}/{model}/versions/{version}"
        return f"{self.base}/{model}/labels/{label}" if label else f"{self.base}/{model}"

    def _call(self, method, url, body=None):
        try:
            response = self.session.request(method, url, json=body, timeout=self.timeout)
        except requests.RequestException as error:
            raise TfllmError(f"Cannot reach the REST server at {self.base}: {error}.") from None
        try:
            payload = response.json()
        except ValueError:
            payload = {"error": response.text[:200]}
        if response.status_code != 200:
            raise ServerError(response.status_code, payload.get("error", payload))
        return payload

    def predict(self, model, inputs, signature="", version=None, label=None):
        """Columnar request; returns {output: numpy array}."""
        body = {"inputs": {k: _json_value(v) for k, v in inputs.items()}}
        if signature:
            body["signature_name"] = signature
        outputs = self._call("POST", self._url(model, version, label) + ":predict", body)["outputs"]
        if not isinstance(outputs, dict):  # one output: TF Serving drops its name
            key = (model, version, label, signature or "serving_default")
            if key not in self._outputs:
                self._outputs[key] = self.signatures(model, version, label)[key[-1]]["outputs"]
            outputs = {self._outputs[key][0]: outputs}
        return _columns(outputs)

    def classify(self, model, texts, signature="classify", version=None, label=None,
                 text_pairs=None):
        body = {"signature_name": signature, "examples": _features(texts, text_pairs)}
        result = self._call("POST", self._url(model, version, label) + ":classify", body)
        return [[(label_, score) for label_, score in row] for row in result["result"]]

    def regress(self, model, texts, signature="regress", version=None, label=None,
                text_pairs=None):
        body = {"signature_name": signature, "examples": _features(texts, text_pairs)}
        return self._call("POST", self._url(model, version, label) + ":regress", body)["result"]

    def status(self, model, version=None, label=None):
        return self._call("GET", self._url(model, version, label))["model_version_status"]

    def generate_stream(self, model, prompt, version=None, label=None, **settings):
        """Yields {"text", "num_tokens", "finished"} as tfllm.serve's `:generateStream`
        sends them (server-sent events); closing the generator hangs up."""
        url = self._url(model, version, label) + ":generateStream"
        try:
            response = self.session.post(url, json={"prompt": prompt, **settings},
                                         timeout=self.timeout, stream=True)
        except requests.RequestException as error:
            raise TfllmError(f"Cannot reach the REST server at {self.base}: {error}.") from None
        with response:
            if response.status_code != 200:
                raise ServerError(response.status_code, response.json().get("error"))
            event = None
            for line in response.iter_lines(chunk_size=None, decode_unicode=True):
                if line.startswith("event: "):
                    event = line[len("event: "):]
                elif line.startswith("data: "):
                    payload = json.loads(line[len("data: "):])
                    if event == "error":
                        raise ServerError(payload["code"], payload["error"])
                    yield payload
                    event = None

    def signatures(self, model, version=None, label=None):
        """{signature: {"inputs": [...], "outputs": [...]}} from the model's metadata."""
        metadata = self._call("GET", self._url(model, version, label) + "/metadata")
        defs = metadata["metadata"]["signature_def"]["signature_def"]
        return {name: {"inputs": sorted(d.get("inputs", {})),
                       "outputs": sorted(d.get("outputs", {}))} for name, d in defs.items()}


class GrpcClient:
    def __init__(self, server, timeout=60.0, max_message_bytes=16 << 20):
        self.server = server
        self.timeout = timeout
        self.channel = grpc.insecure_channel(server, options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes)])
        self.prediction = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)
        self.generation = generation_pb2_grpc.GenerationServiceStub(self.channel)

    def _spec(self, spec, model, signature="", version=None, label=None):
        spec.name = model
        spec.signature_name = signature
        if version is not None:
            spec.version.value = int(version)
        elif label:
            spec.version_label = label

    def _call(self, method, request):
        try:
            return method(request, timeout=self.timeout)
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNAVAILABLE:
                raise TfllmError(f"Cannot reach the gRPC server at {self.server}: "
                                 f"{error.details()}.") from None
            raise ServerError(error.code().name, error.details()) from None

    def predict(self, model, inputs, signature="", version=None, label=None):
        request = predict_pb2.PredictRequest()
        self._spec(request.model_spec, model, signature, version, label)
        for key, value in inputs.items():
            array = np.asarray(value)
            if np.issubdtype(array.dtype, np.str_):
                array = np.vectorize(lambda s: s.encode("utf-8"), otypes=[object])(array)
            request.inputs[key].CopyFrom(tf.make_tensor_proto(array))
        response = self._call(self.prediction.Predict, request)
        return {key: tf.make_ndarray(value) for key, value in response.outputs.items()}

    def _examples(self, request, model, signature, version, label, texts, text_pairs):
        self._spec(request.model_spec, model, signature, version, label)
        for features in _features(texts, text_pairs):
            example = request.input.example_list.examples.add()
            for key, text in features.items():
                example.features.feature[key].bytes_list.value.append(text.encode("utf-8"))
        return request

    def classify(self, model, texts, signature="classify", version=None, label=None,
                 text_pairs=None):
        request = self._examples(classification_pb2.ClassificationRequest(), model, signature,
                                 version, label, texts, text_pairs)
        response = self._call(self.prediction.Classify, request)
        return [[(c.label, c.score) for c in row.classes]
                for row in response.result.classifications]

    def regress(self, model, texts, signature="regress", version=None, label=None,
                text_pairs=None):
        request = self._examples(regression_pb2.RegressionRequest(), model, signature,
                                 version, label, texts, text_pairs)
        response = self._call(self.prediction.Regress, request)
        return [r.value for r in response.result.regressions]

    def status(self, model, version=None, label=None):
        request = get_model_status_pb2.GetModelStatusRequest()
        self._spec(request.model_spec, model, "", version, label)
        response = self._call(self.models.GetModelStatus, request)
        states = get_model_status_pb2.ModelVersionStatus.State
        return [{"version": str(s.version), "state": states.Name(s.state),
                 "status": {"error_code": _code(s.status.error_code).name,
                            "error_message": s.status.error_message}}
                for s in response.model_version_status]

    def generate_stream(self, model, prompt, version=None, label=None, **settings):
        """Yields {"text", "num_tokens", "finished"} from tfllm's GenerationService;
        closing the generator cancels the call (the server stops generating)."""
        request = generation_pb2.GenerateRequest(model_name=model, prompt=prompt,
                                                 version_label=label or "", **settings)
        if version is not None:
            request.version = int(version)
        call = self.generation.GenerateStream(request, timeout=self.timeout)
        try:
            for response in call:
                yield {"text": response.text, "num_tokens": response.num_tokens,
                       "finished": response.finished, "version": str(response.version)}
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNAVAILABLE:
                raise TfllmError(f"Cannot reach the gRPC server at {self.server}: "
                                 f"{error.details()}.") from None
            raise ServerError(error.code().name, error.details()) from None
        finally:
            call.cancel()

    def signatures(self, model, version=None, label=None):
        request = get_model_metadata_pb2.GetModelMetadataRequest(metadata_field=["signature_def"])
        self._spec(request.model_spec, model, "", version, label)
        response = self._call(self.prediction.GetModelMetadata, request)
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        response.metadata["signature_def"].Unpack(signature_map)
        return {name: {"inputs": sorted(d.inputs), "outputs": sorted(d.outputs)}
                for name, d in signature_map.signature_def.items()}


def _code(number):
    return next(code for code in grpc.StatusCode if code.value[0] == number)
