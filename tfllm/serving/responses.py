"""The answers both front ends give, built once: status and metadata responses as
TF Serving's protos (REST sends their JSON form, as TF Serving's REST server
does), and `observed`, which times a call, records it in the metrics and turns
an unexpected fault into an INTERNAL error."""

import contextlib
import time

import grpc
from absl import logging
from google.protobuf import any_pb2, json_format
from tensorflow_serving.apis import get_model_metadata_pb2, get_model_status_pb2

from tfllm.serving.status import ServingError


@contextlib.contextmanager
def observed(metrics, model_name, api, entrypoint):
    """Records the call's latency and status; re-raises every failure as ServingError."""
    started = time.perf_counter()
    try:
        yield
    except ServingError as error:
        metrics.observe(model_name, api, entrypoint, error.code.name, started)
        raise
    except Exception as error:  # a server fault: answer, log, keep serving
        logging.exception("internal error in %s (%s)", api, entrypoint)
        metrics.observe(model_name, api, entrypoint, "INTERNAL", started)
        raise ServingError(grpc.StatusCode.INTERNAL, f"Internal error: {error}") from None
    metrics.observe(model_name, api, entrypoint, "OK", started)


def model_status(statuses):
    """GetModelStatusResponse for a list of `ModelVersionStatus`."""
    response = get_model_status_pb2.GetModelStatusResponse()
    for status in statuses:
        entry = response.model_version_status.add(version=status.version, state=status.state)
        entry.status.error_code = status.error_code.value[0]
        entry.status.error_message = status.message
    return response


def signature_def_map(servable):
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    for key, value in servable.signature_defs.items():
        signature_map.signature_def[key].CopyFrom(value)
    return signature_map


def model_metadata(servable):
    """GetModelMetadataResponse with the `signature_def` metadata."""
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.model_spec.name = servable.name
    response.model_spec.version.value = servable.version
    packed = any_pb2.Any()
    packed.Pack(signature_def_map(servable))
    response.metadata["signature_def"].CopyFrom(packed)
    return response


def to_json(message):
    """A response's REST form: field names as in the proto, defaults written out."""
    return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                     always_print_fields_with_no_presence=True)


def model_metadata_json(response):
    """TF Serving's REST metadata: the `Any` values unpacked."""
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signature_map)
    return {"model_spec": to_json(response.model_spec),
            "metadata": {"signature_def": json_format.MessageToDict(
                signature_map, preserving_proto_field_name=True)}}
