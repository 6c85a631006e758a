"""TF Serving's REST API (`/v1/models/...`) as a Starlette app, served by uvicorn.

Handlers parse and answer JSON here; model work runs on a thread pool so the
event loop keeps accepting requests while TensorFlow computes.
"""

import json
import re
import time

import grpc
from google.protobuf import json_format
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from tensorflow_serving.apis import get_model_metadata_pb2

from tfllm.serving import inference, rest_json
from tfllm.serving.status import ServingError, invalid

_PATH = re.compile(
    r"(?i)^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<method>predict|classify|regress))?$")
_STATES = {10: "START", 20: "LOADING", 30: "AVAILABLE", 40: "UNLOADING", 50: "END"}


def _error(error):
    return JSONResponse({"error": error.message}, status_code=error.http_status)


async def _read_body(request, limit):
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _TooLarge(int(declared), limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _TooLarge(len(body), limit)
    return bytes(body)


class _TooLarge(Exception):
    def __init__(self, size, limit):
        super().__init__(f"The request body ({size:,} bytes or more) exceeds the "
                         f"server's limit of {limit:,} bytes (--max_request_bytes).")


def status_json(statuses):
    return {"model_version_status": [{
        "version": str(s.version), "state": _STATES.get(s.state, "UNKNOWN"),
        "status": {"error_code": s.error_code.name, "error_message": s.message}}
        for s in statuses]}


def signature_def_map(servable):
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, value in servable.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(value)
    return signature_map


def create_app(manager, metrics, max_request_bytes, metrics_path=None):
    def model_status(name, version, label):
        return status_json(manager.statuses(name, version, label))

    def model_metadata(name, version, label):
        servable = manager.resolve(name, version, label)
        return {"model_spec": {"name": name, "signature_name": "",
                               "version": str(servable.version)},
                "metadata": {"signature_def": json_format.MessageToDict(
                    signature_def_map(servable), preserving_proto_field_name=True)}}

    def predict(name, version, label, body):
        servable = manager.resolve(name, version, label)
        signature_name = body.get("signature_name", "") if isinstance(body, dict) else ""
        _, signature_def = servable.signature(signature_name)
        signature_name, inputs, row_format = rest_json.parse_predict(
            body, list(signature_def.inputs))
        _, outputs = inference.predict(servable, signature_name, inputs)
        return rest_json.format_predict(outputs, row_format)

    def classify(name, version, label, body):
        servable = manager.resolve(name, version, label)
        signature_name, features = rest_json.parse_classify(body)
        examples = [inference.example_from_features(f).SerializeToString() for f in features]
        _, results = inference.classify(servable, signature_name, examples)
        return {"result": [[[label, score] for label, score in row] for row in results]}

    async def models(request):
        started = time.perf_counter()
        match = _PATH.match(request.url.path)
        name = match["name"] if match else None
        api = "unknown"
        try:
            if not match or (request.method == "GET") == bool(match["method"]):
                raise invalid(f"Malformed request: {request.method} {request.url.path}")
            version, label = match["version"], match["label"]
            if request.method == "GET":
                api = "GetModelMetadata" if match["metadata"] else "GetModelStatus"
                handler = model_metadata if match["metadata"] else model_status
                result = await run_in_threadpool(handler, name, version, label)
            else:
                api = match["method"].capitalize()
                try:
                    body = json.loads(await _read_body(request, max_request_bytes))
                except (json.JSONDecodeError, UnicodeDecodeError) as error:
                    raise invalid(f"The request body is not valid JSON: {error}.") from None
                handler = {"predict": predict, "classify": classify}.get(match["method"].lower())
                if handler is None:
                    raise ServingError(grpc.StatusCode.UNIMPLEMENTED,
                                       "Regress is not supported: tfllm exports no regression "
                                       "signatures.")
                result = await run_in_threadpool(handler, name, version, label, body)
        except _TooLarge as error:
            metrics.observe(name, api, "REST", "RESOURCE_EXHAUSTED", started)
            return JSONResponse({"error": str(error)}, status_code=413)
        except ServingError as error:
            metrics.observe(name, api, "REST", error.code.name, started)
            return _error(error)
        except Exception as error:  # a server fault: answer, log, keep serving
            print(f"tfllm.serve: internal error on {request.url.path}: {error!r}", flush=True)
            metrics.observe(name, api, "REST", "INTERNAL", started)
            return _error(ServingError(grpc.StatusCode.INTERNAL, f"Internal error: {error}"))
        metrics.observe(name, api, "REST", "OK", started)
        return JSONResponse(result)

    async def prometheus(request):
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    routes = [Route("/v1/models/{rest:path}", models, methods=["GET", "POST"])]
    if metrics_path:
        routes.append(Route(metrics_path, prometheus, methods=["GET"]))
    return Starlette(routes=routes)
