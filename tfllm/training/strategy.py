"""tf.distribute strategy selection, in the spirit of Model Garden's distribute_utils."""

import json
import os

import tensorflow as tf

from tfllm.errors import ConfigError

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")


def split_cpu(replicas):
    """Splits the CPU into `replicas` logical devices (before TF initialises devices).

    On a CPU-only host this gives MirroredStrategy real replicas to synchronise.
    """
    cpus = tf.config.list_physical_devices("CPU")
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * replicas)
    except RuntimeError as error:
        raise ConfigError(f"--cpu_replicas={replicas} must be set before TensorFlow "
                          f"initialises its devices: {error}.") from None


def _check_tf_config():
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise ConfigError("--strategy=multi_worker needs the TF_CONFIG environment variable "
                          "(cluster and task of this worker).")
    try:
        config = json.loads(raw)
        workers = config["cluster"]["worker"]
        task = config["task"]
        if task["type"] not in ("worker", "chief") or not 0 <= int(task["index"]) < len(
                config["cluster"].get(task["type"], [])):
            raise ValueError("task type/index do not name a cluster member")
        if not workers or not all(isinstance(w, str) and ":" in w for w in workers):
            raise ValueError("workers must be host:port strings")
    except (ValueError, KeyError, TypeError) as error:
        raise ConfigError(f"TF_CONFIG is malformed ({error}); expected "
                          '{"cluster": {"worker": ["host:port", ...]}, '
                          '"task": {"type": "worker", "index": 0}}.') from None


def create_strategy(name, tpu="", cpu_replicas=0):
    """Returns the tf.distribute strategy named by `--strategy`."""
    if name not in STRATEGIES:
        raise ConfigError(f"Unknown --strategy={name!r}; choose one of {', '.join(STRATEGIES)}.")
    if cpu_replicas > 1:
        if name in ("tpu", "multi_worker"):
            raise ConfigError("--cpu_replicas applies to --strategy=mirrored or auto only.")
        split_cpu(cpu_replicas)
    if name == "auto":
        gpus = tf.config.list_physical_devices("GPU")
        name = "tpu" if tpu else "mirrored" if len(gpus) > 1 or cpu_replicas > 1 else "one_device"
    if name == "tpu":
        return _tpu_strategy(tpu)
    if name == "multi_worker":
        _check_tf_config()
        communication = tf.distribute.experimental.CommunicationOptions(
            implementation=tf.distribute.experimental.CommunicationImplementation.RING)
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=communication)
    if name == "mirrored":
        devices = None
        if not tf.config.list_physical_devices("GPU"):
            devices = [d.name for d in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices=devices)
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")


def _tpu_strategy(tpu):
    if not tpu:
        raise ConfigError("--strategy=tpu needs --tpu (a TPU name, or grpc://host:port).")
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise ConfigError(f"Cannot reach TPU {tpu!r}: {error}.") from None
    return tf.distribute.TPUStrategy(resolver)


def is_chief(strategy):
    """Only the chief writes checkpoints, summaries and reports."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    return resolver.task_type == "chief" or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())
