"""`python -m tfllm.serve --model_config_file=export/models.config`: a model server
wire-compatible with TF Serving (same flags, REST and gRPC APIs, config files).

For development, tests and small deployments where the real
`tensorflow_model_server` cannot be installed; the exported models and the
config files serve unchanged with the real one (README, "Deployment"). It logs
through absl logging (stderr), with TF Serving's lines for startup.
"""

import threading
import time

import uvicorn
from absl import flags, logging

from tfllm import cli
from tfllm.errors import ConfigError
from tfllm.serving import config as server_config
from tfllm.serving.batching import Batcher, BatchingOptions
from tfllm.serving.grpc_service import create_server
from tfllm.serving.metrics import ServingMetrics
from tfllm.serving.rest import create_app
from tfllm.serving.servables import ModelManager

flags.DEFINE_integer("port", 8500, "gRPC port.")
flags.DEFINE_integer("rest_api_port", 8501, "REST port (0: no REST API).")
flags.DEFINE_string("bind_address", "127.0.0.1", "Address both APIs listen on; 0.0.0.0 "
                    "exposes them to the network (tfllm's default is loopback only).")
flags.DEFINE_string("model_name", "default", "Name of the single model (--model_base_path).")
flags.DEFINE_string("model_base_path", "", "Base path of a single model's versions.")
flags.DEFINE_string("model_config_file", "", "ModelServerConfig text proto for many models.")
flags.DEFINE_integer("model_config_file_poll_wait_seconds", 0,
                     "Re-read --model_config_file this often (0: never).")
flags.DEFINE_integer("file_system_poll_wait_seconds", 1,
                     "Look for new versions under the base paths this often.")
flags.DEFINE_boolean("enable_batching", False, "Batch concurrent requests on the server.")
flags.DEFINE_string("batching_parameters_file", "", "BatchingParameters text proto.")
flags.DEFINE_string("monitoring_config_file", "", "MonitoringConfig text proto (Prometheus).")
flags.DEFINE_boolean("enable_model_warmup", True, "Replay assets.extra warmup requests on load.")
flags.DEFINE_integer("max_request_bytes", 16 << 20, "Largest request body or gRPC message.")
flags.DEFINE_integer("grpc_max_threads", 16, "gRPC worker threads.")
flags.DEFINE_integer("max_concurrent_generations", 8, "OpenAI-compatible API: generations "
                     "running at once; more are answered 429 with Retry-After.")
FLAGS = flags.FLAGS


def _attach_batchers(options, metrics):
    """on_load hook: a Batcher for each signature whose inputs all have a batch axis."""
    def attach(servable):
        for name, signature in servable.signature_defs.items():
            shapes = [info.tensor_shape for info in signature.inputs.values()]
            if shapes and all(not s.unknown_rank and s.dim and s.dim[0].size == -1
                              for s in shapes):
                servable.batchers[name] = Batcher(
                    lambda inputs, name=name: servable.run(name, inputs), options,
                    on_batch=lambda rows: metrics.batch(servable.name, rows))
    return attach


def _watch_config_file(path, interval, manager):
    """Applies --model_config_file again whenever its content changes."""
    def loop():
        with open(path, "rb") as f:
            last = f.read()
        while True:
            time.sleep(interval)
            try:
                with open(path, "rb") as f:
                    content = f.read()
                if content != last:
                    manager.apply_config(server_config.model_server_config(path))
                    last = content
                    logging.info("applied the new %s", path)
            except Exception as error:  # keep serving the last good config
                logging.warning("ignoring %s: %s", path, error)

    threading.Thread(target=loop, name="tfllm-config", daemon=True).start()


def main(argv):
    for flag in ("port", "rest_api_port"):
        if not 0 <= FLAGS[flag].value < 65536:
            raise ConfigError(f"--{flag} must be a port number; got {FLAGS[flag].value}.")
    if FLAGS.max_request_bytes < 1024:
        raise ConfigError("--max_request_bytes must be at least 1024.")
    if FLAGS.max_concurrent_generations < 1:
        raise ConfigError("--max_concurrent_generations must be at least 1; got "
                          f"{FLAGS.max_concurrent_generations}.")
    models = server_config.model_server_config(
        FLAGS.model_config_file, FLAGS.model_name, FLAGS.model_base_path)
    metrics = ServingMetrics()
    metrics_path = None
    if FLAGS.monitoring_config_file:
        monitoring = server_config.read_text_proto(
            FLAGS.monitoring_config_file, server_config.MonitoringConfig,
            "--monitoring_config_file")
        if monitoring.prometheus_config.enable:
            metrics_path = monitoring.prometheus_config.path or "/monitoring/prometheus/metrics"
    on_load = None
    if FLAGS.enable_batching:
        parameters = server_config.BatchingParameters()
        if FLAGS.batching_parameters_file:
            parameters = server_config.read_text_proto(
                FLAGS.batching_parameters_file, server_config.BatchingParameters,
                "--batching_parameters_file")
        on_load = _attach_batchers(BatchingOptions(parameters), metrics)
    elif FLAGS.batching_parameters_file:
        raise ConfigError("--batching_parameters_file needs --enable_batching.")

    manager = ModelManager(models, warmup=FLAGS.enable_model_warmup, on_load=on_load,
                           metrics=metrics)
    manager.run_polling(max(FLAGS.file_system_poll_wait_seconds, 1))
    if FLAGS.model_config_file and FLAGS.model_config_file_poll_wait_seconds > 0:
        _watch_config_file(FLAGS.model_config_file, FLAGS.model_config_file_poll_wait_seconds,
                           manager)
    grpc_server, port = create_server(manager, metrics, f"{FLAGS.bind_address}:{FLAGS.port}",
                                      FLAGS.max_request_bytes, FLAGS.grpc_max_threads)
    logging.info("Running gRPC ModelServer at %s:%d ...", FLAGS.bind_address, port)
    try:
        if FLAGS.rest_api_port:
            app = create_app(manager, metrics, FLAGS.max_request_bytes, metrics_path,
                             FLAGS.max_concurrent_generations)
            server = uvicorn.Server(uvicorn.Config(
                app, host=FLAGS.bind_address, port=FLAGS.rest_api_port, log_level="warning",
                lifespan="off", timeout_graceful_shutdown=5))
            threading.Thread(target=_announce, args=(server,), daemon=True).start()
            server.run()
        else:
            grpc_server.wait_for_termination()
    finally:
        manager.stop()
        grpc_server.stop(grace=2)


def _announce(server):
    while not server.started:
        time.sleep(0.05)
    logging.info("Exporting HTTP/REST API at:%s:%d ...", FLAGS.bind_address, FLAGS.rest_api_port)


if __name__ == "__main__":
    cli.run(main)
