"""TF Serving's gRPC services from the tensorflow-serving-api stubs:
PredictionService (Predict, Classify, Regress, GetModelMetadata) and ModelService
(GetModelStatus, HandleReloadConfigRequest); and tfllm's GenerationService
(GenerateStream, protos/generation.proto)."""

from concurrent import futures

import grpc
import tensorflow as tf
from absl import logging
from tensorflow_serving.apis import (
    classification_pb2,
    model_management_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)

from tfllm.errors import TfllmError
from tfllm.serving import inference, responses
from tfllm.serving.config import check_model_server_config
from tfllm.serving.protos import generation_pb2, generation_pb2_grpc
from tfllm.serving.status import ServingError, invalid
from tfllm.serving.streaming import DEFAULTS, GenerationStream


def _version(spec):
    """(version, label) of a ModelSpec (either may be None)."""
    choice = spec.WhichOneof("version_choice")
    if choice == "version":
        return spec.version.value, None
    if choice == "version_label":
        return None, spec.version_label
    return None, None


def _answered_by(response, servable, signature_name):
    """Fills a response's model_spec with the version and signature that answered."""
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    response.model_spec.signature_name = signature_name


def _serialized_examples(request_input):
    """Serialized tf.Examples of an Input proto; context features merged into each."""
    which = request_input.WhichOneof("kind")
    if which == "example_list":
        return [e.SerializeToString() for e in request_input.example_list.examples]
    if which == "example_list_with_context":
        listed = request_input.example_list_with_context
        merged = []
        for example in listed.examples:
            combined = tf.train.Example()
            combined.CopyFrom(listed.context)
            combined.MergeFrom(example)
            merged.append(combined.SerializeToString())
        return merged
    raise invalid("Input is empty: give example_list or example_list_with_context.")


class _Observed:
    """Runs a handler through `responses.observed`; a failure becomes the gRPC status."""

    def __init__(self, metrics):
        self._metrics = metrics

    def __call__(self, api, model_name, context, handler):
        try:
            with responses.observed(self._metrics, model_name, api, "GRPC"):
                return handler()
        except ServingError as error:
            context.abort(error.code, error.message)


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, manager, metrics):
        self._manager = manager
        self._observed = _Observed(metrics)

    def _resolve(self, spec):
        return self._manager.resolve(spec.name, *_version(spec))

    def Predict(self, request, context):
        def handle():
            servable = self._resolve(request.model_spec)
            inputs = {key: tf.make_ndarray(value) for key, value in request.inputs.items()}
            name, outputs = inference.predict(servable, request.model_spec.signature_name,
                                              inputs, list(request.output_filter))
            response = predict_pb2.PredictResponse()
            _answered_by(response, servable, name)
            for key, value in outputs.items():
                response.outputs[key].CopyFrom(tf.make_tensor_proto(value))
            return response
        return self._observed("Predict", request.model_spec.name, context, handle)

    def Classify(self, request, context):
        def handle():
            servable = self._resolve(request.model_spec)
            name, results = inference.classify(servable, request.model_spec.signature_name,
                                               _serialized_examples(request.input))
            response = classification_pb2.ClassificationResponse()
            _answered_by(response, servable, name)
            for row in results:
                classifications = response.result.classifications.add()
                for label, score in row:
                    classifications.classes.add(label=label, score=score)
            return response
        return self._observed("Classify", request.model_spec.name, context, handle)

    def GetModelMetadata(self, request, context):
        def handle():
            if list(request.metadata_field) != ["signature_def"]:
                raise invalid("Metadata field signature_def is the one supported; asked for "
                              f"{list(request.metadata_field)}.")
            return responses.model_metadata(self._resolve(request.model_spec))
        return self._observed("GetModelMetadata", request.model_spec.name, context, handle)

    def Regress(self, request, context):
        def handle():
            servable = self._resolve(request.model_spec)
            name, results = inference.regress(servable, request.model_spec.signature_name,
                                              _serialized_examples(request.input))
            response = regression_pb2.RegressionResponse()
            _answered_by(response, servable, name)
            for value in results:
                response.result.regressions.add(value=value)
            return response
        return self._observed("Regress", request.model_spec.name, context, handle)

    def MultiInference(self, request, context):
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "MultiInference is not supported.")


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, manager, metrics):
        self._manager = manager
        self._observed = _Observed(metrics)

    def GetModelStatus(self, request, context):
        def handle():
            return responses.model_status(self._manager.statuses(
                request.model_spec.name, *_version(request.model_spec)))
        return self._observed("GetModelStatus", request.model_spec.name, context, handle)

    def HandleReloadConfigRequest(self, request, context):
        def handle():
            try:
                self._manager.apply_config(check_model_server_config(request.config,
                                                                     "ReloadConfigRequest"))
            except TfllmError as error:
                raise invalid(str(error)) from None
            return model_management_pb2.ReloadConfigResponse()
        return self._observed("HandleReloadConfigRequest", "", context, handle)


class GenerationService(generation_pb2_grpc.GenerationServiceServicer):
    def __init__(self, manager, metrics):
        self._manager = manager
        self._metrics = metrics
        self._observed = _Observed(metrics)

    def GenerateStream(self, request, context):
        """Yields the continuation as it comes; stops when the client goes away."""
        def start():
            version = request.version if request.HasField("version") else None
            servable = self._manager.resolve(request.model_name, version,
                                             request.version_label or None)
            settings = {name: getattr(request, name) for name in DEFAULTS
                        if request.HasField(name)}
            return GenerationStream(servable, request.prompt, settings, on_close=lambda end:
                                    self._metrics.stream_ended(request.model_name, end))

        stream = self._observed("GenerateStream", request.model_name, context, start)
        try:
            for chunk in stream:
                if not context.is_active():
                    break
                yield generation_pb2.GenerateResponse(
                    text=chunk.text, num_tokens=chunk.num_tokens, finished=chunk.finished,
                    version=stream.servable.version)
        except ServingError as error:
            context.abort(error.code, error.message)
        except Exception as error:  # a server fault mid-stream: report, log, keep serving
            logging.exception("internal error in GenerateStream (GRPC)")
            context.abort(grpc.StatusCode.INTERNAL, f"Internal error: {error}")
        finally:
            stream.close()


def create_server(manager, metrics, address, max_message_bytes, max_workers=16):
    """A started gRPC server on `address`; returns (server, bound port)."""
    options = [("grpc.max_receive_message_length", max_message_bytes),
               ("grpc.max_send_message_length", max_message_bytes),
               ("grpc.so_reuseport", 0)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers), options=options)
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(
        PredictionService(manager, metrics), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(manager, metrics),
                                                              server)
    generation_pb2_grpc.add_GenerationServiceServicer_to_server(
        GenerationService(manager, metrics), server)
    port = server.add_insecure_port(address)
    if port == 0:
        raise TfllmError(f"gRPC cannot listen on {address} (in use or not allowed).")
    server.start()
    return server, port
