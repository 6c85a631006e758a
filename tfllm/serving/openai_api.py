"""An OpenAI-compatible API beside TF Serving's: `POST /v1/completions`,
`POST /v1/chat/completions` and `GET /v1/models`, on the same loaded SavedModels and
batcher (a tfllm generator's `generate` signature, and its `stream_start`/`stream_step`
for `stream: true`).

OpenAI's API is a wire contract many clients speak (the official `openai` package,
LangChain, vLLM's users); neither TF Serving nor keras-hub offers it. Requests are
bounded: the body by --max_request_bytes, `max_tokens` by the model's context, and the
generations running at once by --max_concurrent_generations (more get 429 with
Retry-After rather than a queue without end). A client that disconnects mid-stream
frees its slot at the next token. Errors come in OpenAI's JSON shape.
"""

import json
import os
import threading
import time
import uuid

import numpy as np
from absl import logging
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from tfllm.serving import inference
from tfllm.serving.layout import CHAT_FORMAT_FILE
from tfllm.serving.status import ServingError
from tfllm.serving.streaming import GenerationStream
from tfllm.text.chat_templates import ChatFormat, TemplateError

DEFAULT_MAX_TOKENS = 16  # OpenAI's default for completions
_MAX_STOPS = 4


class ApiError(Exception):
    """An error answered in OpenAI's shape: {"error": {message, type, param, code}}."""

    def __init__(self, status, message, param=None, code=None, headers=None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers or {}

    def response(self):
        kind = {400: "invalid_request_error", 404: "invalid_request_error",
                413: "invalid_request_error", 429: "rate_limit_exceeded"}.get(
            self.status, "server_error")
        return JSONResponse({"error": {"message": self.message, "type": kind,
                                       "param": self.param, "code": self.code}},
                            status_code=self.status, headers=self.headers)


def _from_serving(error):
    status = {404: 404, 413: 413}.get(error.http_status, 400 if error.http_status < 500 else 500)
    return ApiError(status, error.message, code="model_not_found" if status == 404 else None)


class Slots:
    """At most `limit` generations at once; the next is refused, not queued."""

    def __init__(self, limit):
        self._free = threading.BoundedSemaphore(limit)
        self.limit = limit

    def take(self):
        if not self._free.acquire(blocking=False):
            raise ApiError(429, f"The server is running its limit of {self.limit} "
                                "generations (--max_concurrent_generations); retry shortly.",
                           code="too_many_requests", headers={"Retry-After": "1"})

    def give_back(self):
        self._free.release()


def _number(body, name, default, low, high, integer=False):
    value = body.get(name, default)
    if value is None:
        value = default
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and (
        not integer or float(value).is_integer()) and low <= value <= high
    if not ok:
        kind = "an integer" if integer else "a number"
        raise ApiError(400, f"'{name}' must be {kind} from {low} to {high}; got {value!r:.40}.",
                       param=name)
    return int(value) if integer else float(value)


def _stops(body):
    stop = body.get("stop")
    stops = [] if stop is None else [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or len(stops) > _MAX_STOPS or not all(
            isinstance(s, str) and s for s in stops):
        raise ApiError(400, f"'stop' must be a string or a list of at most {_MAX_STOPS} "
                            "non-empty strings.", param="stop")
    return stops


class _Request:
    """A checked completion request: the prompt text and the sampling settings."""

    def __init__(self, body, prompt, extra_stops=()):
        if body.get("n", 1) not in (1, None):
            raise ApiError(400, "Only n=1 is supported.", param="n")
        if body.get("best_of", 1) not in (1, None) or body.get("echo") or body.get("logprobs"):
            raise ApiError(400, "best_of, echo and logprobs are not supported.")
        self.prompt = prompt
        self.stream = bool(body.get("stream", False))
        self.max_tokens = _number(body, "max_tokens", DEFAULT_MAX_TOKENS, 1, 1 << 20, True)
        self.stops = _stops(body) + [s for s in extra_stops if s]
        self.settings = {
            "max_new_tokens": self.max_tokens,
            "temperature": _number(body, "temperature", 1.0, 0.0, 2.0),
            "top_k": 0, "top_p": _number(body, "top_p", 1.0, 1e-6, 1.0),
            "seed": _number(body, "seed", int(np.random.randint(0, 2 ** 31 - 1)), 0,
                            2 ** 31 - 1, True)}


def _cut(text, stops):
    """(text up to the first stop string, whether one was found)."""
    ends = [text.find(stop) for stop in stops if stop in text]
    return (text[:min(ends)], True) if ends else (text, False)


class _StopFilter:
    """Streams text, holding back what could be the start of a stop string."""

    def __init__(self, stops):
        self.stops, self.text, self.sent, self.stopped = stops, "", 0, False

    def push(self, piece, final=False):
        self.text += piece
        cut, self.stopped = _cut(self.text, self.stops)
        safe = len(cut)
        if not (self.stopped or final):
            for stop in self.stops:  # a suffix that a stop string starts with
                for size in range(min(len(stop) - 1, len(cut)), 0, -1):
                    if cut.endswith(stop[:size]):
                        safe = min(safe, len(cut) - size)
                        break
        new = cut[self.sent:safe]
        self.sent = max(self.sent, safe)
        return new


def create_routes(manager, metrics, read_json, max_concurrent):
    """Starlette routes of the API. `read_json(request)` reads a bounded body."""
    slots = Slots(max_concurrent)
    chat_formats = {}  # servable path -> ChatFormat or None

    def servable_for(body):
        name = body.get("model")
        if not isinstance(name, str) or not name:
            raise ApiError(400, "'model' must name a served model (GET /v1/models lists "
                                "them).", param="model")
        try:
            servable = manager.resolve(name)
        except ServingError as error:
            raise ApiError(404, f"The model '{name}' does not exist or is not loaded "
                                f"({error.message}).", param="model",
                           code="model_not_found") from None
        if "generate" not in servable.signature_defs:
            raise ApiError(400, f"The model '{name}' is not a text generator (it has no "
                                "'generate' signature).", param="model")
        return servable

    def chat_format(servable):
        if servable.path not in chat_formats:
            path = os.path.join(servable.path, CHAT_FORMAT_FILE)
            chat = None
            if os.path.exists(path):
                with open(path, encoding="utf-8") as f:
                    chat = ChatFormat.from_json(f.read())
            chat_formats[servable.path] = chat
        return chat_formats[servable.path]

    def generate(servable, request):
        """(text, finish reason, prompt tokens or None, completion tokens)."""
        inputs = {"prompt": np.array([request.prompt], object),
                  **{name: np.array([value]) for name, value in request.settings.items()}}
        try:
            _, outputs = inference.predict(servable, "generate", inputs)
        except ServingError as error:
            raise _from_serving(error) from None
        text = outputs["text"][0]
        text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        generated = int(outputs["num_tokens"][0])
        text, stopped = _cut(text, request.stops)
        reason = "stop" if stopped or generated < request.max_tokens else "length"
        prompt_tokens = int(outputs["prompt_tokens"][0]) if "prompt_tokens" in outputs else None
        return text, reason, prompt_tokens, generated

    def usage(prompt_tokens, completion_tokens):
        if prompt_tokens is None:
            return None
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens}

    async def answer(request, chat):
        api = "ChatCompletions" if chat else "Completions"
        name = None
        try:
            try:
                body = await read_json(request)
            except ServingError as error:
                raise _from_serving(error) from None
            if not isinstance(body, dict):
                raise ApiError(400, "The request body must be a JSON object.")
            name = body.get("model") if isinstance(body.get("model"), str) else None
            servable = await run_in_threadpool(servable_for, body)
            if chat:
                prepared = _chat_request(body, chat_format(servable), name)
            else:
                prompt = body.get("prompt")
                if isinstance(prompt, list) and len(prompt) == 1:
                    prompt = prompt[0]
                if not isinstance(prompt, str) or not prompt:
                    raise ApiError(400, "'prompt' must be a non-empty string (one prompt "
                                        "per request).", param="prompt")
                prepared = _Request(body, prompt)
            slots.take()
        except ApiError as error:
            metrics.observe(name, api, "REST", "INVALID_ARGUMENT", time.perf_counter())
            return error.response()
        started = time.perf_counter()
        identity = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        created = int(time.time())
        if prepared.stream:
            return StreamingResponse(
                _stream(servable, prepared, chat, identity, created, name, api, started),
                media_type="text/event-stream", headers={"Cache-Control": "no-cache"})
        try:
            text, reason, prompt_tokens, generated = await run_in_threadpool(
                generate, servable, prepared)
        except ApiError as error:
            metrics.observe(name, api, "REST", "INVALID_ARGUMENT", started)
            return error.response()
        except Exception as error:  # a server fault: answer in OpenAI's shape, keep serving
            logging.exception("internal error in %s (REST)", api)
            metrics.observe(name, api, "REST", "INTERNAL", started)
            return ApiError(500, f"Internal error: {error}").response()
        finally:
            slots.give_back()
        metrics.observe(name, api, "REST", "OK", started)
        choice = ({"index": 0, "message": {"role": "assistant", "content": text},
                   "finish_reason": reason, "logprobs": None} if chat else
                  {"index": 0, "text": text, "finish_reason": reason, "logprobs": None})
        result = {"id": identity, "object": "chat.completion" if chat else "text_completion",
                  "created": created, "model": name, "choices": [choice]}
        counted = usage(prompt_tokens, generated)
        if counted:
            result["usage"] = counted
        return JSONResponse(result)

    async def _stream(servable, prepared, chat, identity, created, name, api, started):
        """Server-sent events: a chunk per new text, the finish reason, then [DONE]. A
        client that goes away cancels this generator, which ends the generation."""
        kind = "chat.completion.chunk" if chat else "text_completion"
        stream, outcome = None, "ERROR"

        def event(text=None, reason=None, role=False):
            if chat:
                delta = {"role": "assistant"} if role else {}
                if text is not None:
                    delta["content"] = text
                choice = {"index": 0, "delta": delta, "finish_reason": reason, "logprobs": None}
            else:
                choice = {"index": 0, "text": text or "", "finish_reason": reason,
                          "logprobs": None}
            payload = {"id": identity, "object": kind, "created": created, "model": name,
                       "choices": [choice]}
            return f"data: {json.dumps(payload)}\n\n"

        try:
            stream = await run_in_threadpool(GenerationStream, servable, prepared.prompt,
                                             prepared.settings)
            if chat:
                yield event(role=True)
            filtered, generated = _StopFilter(prepared.stops), 0
            while True:
                chunk = await run_in_threadpool(next, stream, None)
                if chunk is None:
                    break
                generated = chunk.num_tokens
                new = filtered.push(chunk.text, final=chunk.finished)
                if new:
                    yield event(new)
                if filtered.stopped or chunk.finished:
                    break
            reason = "stop" if filtered.stopped or generated < prepared.max_tokens else "length"
            yield event(reason=reason)
            yield "data: [DONE]\n\n"
            outcome = "OK"
        except ServingError as error:  # after the 200 header: reported as an event
            outcome = "INVALID_ARGUMENT"
            yield _error_event(error.message, "invalid_request_error")
        except Exception as error:
            logging.exception("internal error in %s (REST stream)", api)
            outcome = "INTERNAL"
            yield _error_event(f"Internal error: {error}", "server_error")
        finally:
            if stream is not None:
                stream.close()
            slots.give_back()
            metrics.observe(name, api, "REST", outcome, started)

    async def completions(request):
        return await answer(request, chat=False)

    async def chat_completions(request):
        return await answer(request, chat=True)

    async def models(request):
        loaded = await run_in_threadpool(manager.loaded)
        return JSONResponse({"object": "list", "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "tfllm"}
            for name in sorted(loaded)]})

    return [Route("/v1/completions", completions, methods=["POST"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
            Route("/v1/models", models, methods=["GET"])]


def _error_event(message, kind):
    error = {"message": message, "type": kind, "param": None, "code": None}
    return f"data: {json.dumps({'error': error})}\n\n"


def _chat_request(body, chat, name):
    if chat is None:
        raise ApiError(400, f"The model '{name}' has no chat template: export it with "
                            "`tfllm.export --chat_template=...` (chatml, llama3, gemma or a "
                            "file) to serve chat completions.", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list.", param="messages")
    try:
        prompt = chat.render(messages)
    except TemplateError as error:
        raise ApiError(400, str(error), param="messages") from None
    if "max_completion_tokens" in body and "max_tokens" not in body:
        body = {**body, "max_tokens": body["max_completion_tokens"]}
    return _Request(body, prompt, chat.stop)
