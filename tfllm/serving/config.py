"""The server's configuration files, in TF Serving's text-proto formats.

ModelServerConfig comes from tensorflow-serving-api. That package does not ship
`BatchingParameters` (session_bundle_config.proto) or `MonitoringConfig`
(monitoring_config.proto), so the fields tfllm reads are declared here with TF
Serving's names and numbers; the same files work with the real server, except
for tfllm's one addition, `tfllm_length_buckets` (README, "Batching").
"""

import os

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    text_format,
    wrappers_pb2,
)
from tensorflow_serving.config import model_server_config_pb2

from tfllm.errors import ConfigError
from tfllm.serving.versions import check_model_name


def _declare_messages():
    proto = descriptor_pb2.FileDescriptorProto(
        name="tfllm/serving_config.proto", package="tensorflow.serving", syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"])
    field = descriptor_pb2.FieldDescriptorProto
    optional, repeated = field.LABEL_OPTIONAL, field.LABEL_REPEATED

    def message(name, fields, extra=()):
        """Fields numbered from 1 (None leaves a number out), then (number, field) pairs."""
        described = proto.message_type.add(name=name)
        numbered = [*enumerate(fields, 1), *extra]
        for number, (field_name, kind, type_name, label) in numbered:
            if field_name:
                described.field.add(name=field_name, number=number, type=kind, label=label,
                                    type_name=type_name)

    wrapper = field.TYPE_MESSAGE
    message("BatchingParameters", [
        ("max_batch_size", wrapper, ".google.protobuf.Int64Value", optional),
        ("batch_timeout_micros", wrapper, ".google.protobuf.Int64Value", optional),
        ("max_enqueued_batches", wrapper, ".google.protobuf.Int64Value", optional),
        ("num_batch_threads", wrapper, ".google.protobuf.Int64Value", optional),
        ("thread_pool_name", wrapper, ".google.protobuf.StringValue", optional),
        ("allowed_batch_sizes", field.TYPE_INT64, None, repeated),
        ("pad_variable_length_inputs", field.TYPE_BOOL, None, optional),
        (None, None, None, None),
        ("enable_large_batch_splitting", wrapper, ".google.protobuf.BoolValue", optional),
        ("max_execution_batch_size", wrapper, ".google.protobuf.Int64Value", optional)],
        # tfllm's own: length bucket bounds (far from TF Serving's field numbers)
        extra=[(1000, ("tfllm_length_buckets", field.TYPE_INT64, None, repeated))])
    message("PrometheusConfig", [("enable", field.TYPE_BOOL, None, optional),
                                 ("path", field.TYPE_STRING, None, optional)])
    message("MonitoringConfig", [("prometheus_config", field.TYPE_MESSAGE,
                                  ".tensorflow.serving.PrometheusConfig", optional)])
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(descriptor_pb2.FileDescriptorProto.FromString(
        wrappers_pb2.DESCRIPTOR.serialized_pb).SerializeToString())
    pool.Add(proto)
    return {name: message_factory.GetMessageClass(
        pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
        for name in ("BatchingParameters", "MonitoringConfig")}


_MESSAGES = _declare_messages()
BatchingParameters = _MESSAGES["BatchingParameters"]
MonitoringConfig = _MESSAGES["MonitoringConfig"]


def read_text_proto(path, message_class, flag):
    """Parses a text-proto file, naming the flag and the problem when it cannot."""
    try:
        with open(path, encoding="utf-8") as f:
            return text_format.Parse(f.read(), message_class())
    except OSError as error:
        raise ConfigError(f"Cannot read {flag} file {path}: {error.strerror}.") from None
    except text_format.ParseError as error:
        raise ConfigError(f"{flag} file {path} is not a valid {message_class.DESCRIPTOR.name} "
                          f"text proto: {error}.") from None


def check_model_server_config(config, source):
    """Names unique and safe, base paths absolute, platform tensorflow."""
    if config.WhichOneof("config") != "model_config_list":
        raise ConfigError(f"{source}: only model_config_list is supported.")
    seen = set()
    for model in config.model_config_list.config:
        check_model_name(model.name)
        if model.name in seen:
            raise ConfigError(f"{source}: model {model.name!r} is configured twice.")
        seen.add(model.name)
        if not os.path.isabs(model.base_path):
            raise ConfigError(f"{source}: model {model.name!r} needs an absolute base_path; "
                              f"got {model.base_path!r}.")
        if model.model_platform not in ("", "tensorflow"):
            raise ConfigError(f"{source}: model {model.name!r} has platform "
                              f"{model.model_platform!r}; only 'tensorflow' is served.")
    return config


def model_server_config(model_config_file=None, model_name=None, model_base_path=None):
    """The config from `--model_config_file`, or one model from `--model_name` and
    `--model_base_path` (TF Serving's two ways); relative base paths become absolute
    for the single-model form."""
    if model_config_file:
        if model_base_path:
            raise ConfigError("Give either --model_config_file or --model_base_path, not both.")
        config = read_text_proto(model_config_file, model_server_config_pb2.ModelServerConfig,
                                 "--model_config_file")
        return check_model_server_config(config, model_config_file)
    if not model_base_path:
        raise ConfigError("Give --model_base_path (with --model_name) or --model_config_file.")
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.config.add(name=model_name or "default",
                                        base_path=os.path.abspath(model_base_path),
                                        model_platform="tensorflow")
    return check_model_server_config(config, "--model_base_path")
