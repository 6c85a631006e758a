"""TF Serving's REST API (`/v1/models/...`) as a Starlette app, served by uvicorn,
plus tfllm's `:generateStream` (server-sent events) and, on the same port, the
OpenAI-compatible API (`openai_api`).

Handlers parse and answer JSON here; model work runs on a thread pool so the
event loop keeps accepting requests while TensorFlow computes.
"""

import json
import re

import grpc
from absl import logging
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tfllm.serving import inference, openai_api, responses, rest_json
from tfllm.serving.status import ServingError, invalid
from tfllm.serving.streaming import GenerationStream

_PATH = re.compile(
    r"(?i)^/v1/models/(?P<name>[^/:]+)(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<method>predict|classify|regress|generateStream))?$")
_API = {"predict": "Predict", "classify": "Classify", "regress": "Regress",
        "generatestream": "GenerateStream"}


def _error(error):
    return JSONResponse({"error": error.message}, status_code=error.http_status)


async def _read_json(request, limit):
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise _too_large(len(body), limit)
    try:
        return json.loads(bytes(body))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise invalid(f"The request body is not valid JSON: {error}.") from None


def _too_large(size, limit):
    return ServingError(grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"The request body ({size:,} bytes or more) exceeds the server's limit "
                        f"of {limit:,} bytes (--max_request_bytes).", http_status=413)


def _event(payload, event=None):
    """One server-sent event."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(payload)}\n\n"


def create_app(manager, metrics, max_request_bytes, metrics_path=None,
               max_concurrent_generations=8):
    def model_status(name, version, label):
        return responses.to_json(responses.model_status(manager.statuses(name, version, label)))

    def model_metadata(name, version, label):
        servable = manager.resolve(name, version, label)
        return responses.model_metadata_json(responses.model_metadata(servable))

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

    def regress(name, version, label, body):
        servable = manager.resolve(name, version, label)
        signature_name, features = rest_json.parse_classify(body)
        examples = [inference.example_from_features(f).SerializeToString() for f in features]
        _, results = inference.regress(servable, signature_name, examples)
        return {"result": results}

    def start_stream(name, version, label, body):
        if not isinstance(body, dict) or not isinstance(body.get("prompt"), str):
            raise invalid('generateStream takes a JSON object with a "prompt" string and '
                          'optional max_new_tokens, temperature, top_k, top_p and seed.')
        settings = {key: value for key, value in body.items() if key != "prompt"}
        return GenerationStream(manager.resolve(name, version, label), body["prompt"], settings,
                                on_close=lambda end: metrics.stream_ended(name, end))

    async def events(stream):
        """Sends each chunk as it is produced; a client that goes away cancels this
        generator (Starlette watches for the disconnect), which ends the generation.
        The call was observed when the stream started (its prefill, as a latency)."""
        version = str(stream.servable.version)
        try:
            while True:
                chunk = await run_in_threadpool(next, stream, None)
                if chunk is None:
                    break
                yield _event({"text": chunk.text, "num_tokens": chunk.num_tokens,
                              "finished": chunk.finished, "version": version})
        except ServingError as error:  # after the 200 header: reported as an event
            yield _event({"error": error.message, "code": error.code.name}, "error")
        except Exception as error:  # a server fault mid-stream: report, log, keep serving
            logging.exception("internal error in GenerateStream (REST)")
            yield _event({"error": f"Internal error: {error}", "code": "INTERNAL"}, "error")
        finally:
            stream.close()

    handlers = {"predict": predict, "classify": classify, "regress": regress,
                "generatestream": start_stream}

    async def models(request):
        match = _PATH.match(request.url.path)
        name = match["name"] if match else None
        method = (match["method"] or "").lower() if match else ""
        api = "GetModelMetadata" if match and match["metadata"] else (
            _API.get(method, "GetModelStatus") if match else "unknown")
        try:
            with responses.observed(metrics, name, api, "REST"):
                if not match or (request.method == "GET") == bool(method):
                    raise invalid(f"Malformed request: {request.method} {request.url.path}")
                version, label = match["version"], match["label"]
                if request.method == "GET":
                    handler = model_metadata if match["metadata"] else model_status
                    result = await run_in_threadpool(handler, name, version, label)
                else:
                    body = await _read_json(request, max_request_bytes)
                    result = await run_in_threadpool(handlers[method], name, version, label,
                                                     body)
        except ServingError as error:
            return _error(error)
        if isinstance(result, GenerationStream):
            return StreamingResponse(events(result), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache"})
        return JSONResponse(result)

    async def prometheus(request):
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4")

    routes = [Route("/v1/models/{rest:path}", models, methods=["GET", "POST"]),
              *openai_api.create_routes(manager, metrics,
                                        lambda request: _read_json(request, max_request_bytes),
                                        max_concurrent_generations)]
    if metrics_path:
        routes.append(Route(metrics_path, prometheus, methods=["GET"]))
    return Starlette(routes=routes)
