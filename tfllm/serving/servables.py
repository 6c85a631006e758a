"""Loaded model versions and the manager that keeps them in step with the base paths.

TF Serving's lifecycle, in small: each model's base path is polled; integer
directories chosen by the version policy are loaded (warmed up, then published),
versions the policy drops are unpublished. A version is published by swapping
one dictionary entry, and a request holds its own reference to the version it
resolved, so loads and unloads never interrupt requests in flight.
"""

import os
import re
import threading
import time

import grpc
import tensorflow as tf
from absl import logging
import tensorflow_text  # noqa: F401  registers the tokenizer ops exported models use
from tensorflow.python.saved_model import loader_impl
from tensorflow_serving.apis import get_model_status_pb2, prediction_log_pb2

from tfllm.serving.layout import WARMUP_FILE
from tfllm.serving.status import invalid, not_found

State = get_model_status_pb2.ModelVersionStatus.State
MAX_WARMUP_REQUESTS = 1000  # TF Serving's limit


class Servable:
    """One loaded SavedModel version: its signatures, callable and described."""

    def __init__(self, name, version, path):
        self.name, self.version, self.path = name, version, path
        self.model = tf.saved_model.load(path)
        meta_graph = loader_impl.parse_saved_model(path).meta_graphs[0]
        self.signature_defs = {key: value for key, value in meta_graph.signature_def.items()
                               if not key.startswith("__")}
        self.batchers = {}

    def signature(self, name):
        name = name or "serving_default"
        if name not in self.signature_defs:
            raise invalid(f"Serving signature name: \"{name}\" not found in signature def "
                          f"(model {self.name} version {self.version} has "
                          f"{', '.join(sorted(self.signature_defs))}).")
        return name, self.signature_defs[name]

    def call(self, signature_name, tensors):
        """Runs a signature on tensors; returns its output tensors (a bad input is
        INVALID_ARGUMENT with the graph's own message)."""
        try:
            return self.model.signatures[signature_name](**tensors)
        except (tf.errors.InvalidArgumentError, ValueError, TypeError) as error:
            raise invalid(_readable(getattr(error, "message", str(error)))) from None

    def run(self, signature_name, inputs):
        """Runs a signature on numpy inputs; returns numpy outputs."""
        outputs = self.call(signature_name, {key: tf.constant(value)
                                             for key, value in inputs.items()})
        return {key: value.numpy() for key, value in outputs.items()}

    def close(self):
        """Called when unpublished: batch threads finish their queue, then stop."""
        for batcher in self.batchers.values():
            batcher.close()


def _readable(message):
    """The useful line of a TensorFlow error: an in-graph assertion's own message."""
    # "assertion failed: [message] [Condition ...] ...": the message may hold brackets.
    asserted = re.search(r"assertion failed: \[(.*?)\](?= \[|\s*\n|\s*$)", message)
    if asserted:
        return asserted.group(1)
    lines = [re.sub(r"^\{\{function_node [^}]*\}\}\s*|\s*\[Op:\w+\]$", "", line.strip())
             for line in message.splitlines() if line.strip()]
    meaningful = [line for line in lines if line and not line.startswith((
        "Graph execution error", "Detected at node", "File ", "[[{{node"))]
    return (meaningful or lines or ["Invalid argument."])[-1][:500]


class ModelVersionStatus:
    """What GetModelStatus reports for one version."""

    def __init__(self, version, state, error_code=grpc.StatusCode.OK, message=""):
        self.version, self.state, self.error_code, self.message = (version, state, error_code,
                                                                   message)


def _ready(path):
    """A version directory looks complete: TF Serving would otherwise fail on a copy
    still in progress (tfllm's own exports appear by rename, already complete)."""
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        return False
    variables = os.path.join(path, "variables")
    return not os.path.isdir(variables) or os.path.isfile(
        os.path.join(variables, "variables.index"))


def available_versions(base_path):
    """Integer version directories inside the base path (symlinks leading out of it
    are ignored: nothing is loaded from outside the configured base paths)."""
    if not os.path.isdir(base_path):
        return {}
    root = os.path.realpath(base_path)
    found = {}
    for entry in os.listdir(base_path):
        path = os.path.join(base_path, entry)
        if entry.isdigit() and os.path.isdir(path) and \
                os.path.commonpath([root, os.path.realpath(path)]) == root:
            found[int(entry)] = path
    return found


def select_versions(policy, versions):
    """TF Serving's version policies: latest N (default 1), all, specific."""
    chosen = policy.WhichOneof("policy_choice") if policy is not None else None
    if chosen == "all":
        return set(versions)
    if chosen == "specific":
        return set(policy.specific.versions) & set(versions)
    count = policy.latest.num_versions if chosen == "latest" and policy.latest.num_versions \
        else 1
    return set(sorted(versions)[-count:])


class ModelManager:
    """Keeps the configured models' versions loaded; resolves requests to versions."""

    def __init__(self, model_server_config, warmup=True, on_load=None, metrics=None):
        self._lock = threading.Lock()
        self._models = {}  # name -> ModelConfig proto
        self._servables = {}  # name -> {version: Servable}
        self._statuses = {}  # name -> {version: ModelVersionStatus}
        self._failed = {}  # (name, version) -> mtime of the directory that failed
        self._warmup = warmup
        self._on_load = on_load
        self._metrics = metrics
        self._stop = threading.Event()
        self.apply_config(model_server_config)

    # -- configuration and polling ------------------------------------------------

    def apply_config(self, model_server_config):
        """Sets the served models (a reload drops models no longer listed) and loads."""
        models = {m.name: m for m in model_server_config.model_config_list.config}
        with self._lock:
            for name in set(self._models) - set(models):
                for servable in self._servables.pop(name, {}).values():
                    servable.close()
                self._statuses.pop(name, None)
            self._models = models
        self.poll()

    def poll(self):
        """One pass over every base path: load what the policy wants, drop the rest."""
        for name, model in list(self._models.items()):
            # Candidates: complete directories that have not failed to load as they
            # are now, so a half-copied or broken newest version never displaces the
            # version being served.
            on_disk = {version: path for version, path in
                       available_versions(model.base_path).items()
                       if _ready(path) and not self._failed_before(name, version, path)}
            wanted = select_versions(model.model_version_policy, on_disk)
            loaded = self._servables.get(name, {})
            for version in sorted(wanted - set(loaded), reverse=True):
                self._load(name, version, on_disk[version])
            if wanted - set(self._servables.get(name, {})):  # a load failed just now:
                wanted |= set(loaded)  # keep serving what was there
            with self._lock:
                current = dict(self._servables.get(name, {}))
                for version in set(current) - wanted:
                    current.pop(version).close()  # requests holding it finish undisturbed
                    self._set_status(name, version, State.END)
                self._servables[name] = current

    def _failed_before(self, name, version, path):
        """Failed to load and unchanged since (retried once the directory changes)."""
        return self._failed.get((name, version)) == os.path.getmtime(path)

    def _load(self, name, version, path):
        mtime = os.path.getmtime(path)
        self._set_status(name, version, State.LOADING)
        started = time.perf_counter()
        try:
            servable = Servable(name, version, path)
            if self._warmup:
                self._run_warmup(servable)
            if self._on_load:
                self._on_load(servable)
        except Exception as error:  # any load failure is reported, never fatal
            self._failed[(name, version)] = mtime
            message = f"Failed to load {path}: {str(error).strip().splitlines()[0]}"
            self._set_status(name, version, State.END, grpc.StatusCode.UNKNOWN, message)
            if self._metrics:
                self._metrics.load_attempt(path, "error")
            logging.error("%s", message)
            return
        with self._lock:
            self._servables.setdefault(name, {})[version] = servable
            self._set_status(name, version, State.AVAILABLE)
        if self._metrics:
            self._metrics.load_attempt(path, "success")
        logging.info("loaded %s version %d from %s in %.1fs", name, version, path,
                     time.perf_counter() - started)

    def _run_warmup(self, servable):
        path = os.path.join(servable.path, WARMUP_FILE)
        if not os.path.exists(path):
            return
        for count, record in enumerate(tf.data.TFRecordDataset(path)):
            if count >= MAX_WARMUP_REQUESTS:
                break
            log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
            if log.WhichOneof("log_type") == "predict_log":
                request = log.predict_log.request
                signature, _ = servable.signature(request.model_spec.signature_name)
                servable.run(signature, {k: tf.make_ndarray(v)
                                         for k, v in request.inputs.items()})

    def _set_status(self, name, version, state, code=grpc.StatusCode.OK, message=""):
        self._statuses.setdefault(name, {})[version] = ModelVersionStatus(
            version, state, code, message)

    def run_polling(self, interval_seconds):
        """Polls every `interval_seconds` on a daemon thread until `stop()`."""
        def loop():
            while not self._stop.wait(interval_seconds):
                try:
                    self.poll()
                except Exception as error:  # a bad poll must not end the server
                    logging.warning("polling failed: %s", error)

        thread = threading.Thread(target=loop, name="tfllm-poll", daemon=True)
        thread.start()
        return thread

    def stop(self):
        self._stop.set()

    # -- request resolution ------------------------------------------------------

    def model_config(self, name):
        model = self._models.get(name)
        if model is None:
            raise not_found(f"Servable not found for request: Latest({name})")
        return model

    def resolve(self, name, version=None, label=None):
        """The Servable a request names: latest, a version, or a version label."""
        model = self.model_config(name)
        if label:
            if label not in model.version_labels:
                raise invalid(f"Unrecognized servable version label: {label}")
            version = model.version_labels[label]
        loaded = self._servables.get(name, {})
        if version is None:
            if not loaded:
                raise not_found(f"Servable not found for request: Latest({name})")
            return loaded[max(loaded)]
        servable = loaded.get(int(version))
        if servable is None:
            raise not_found(f"Servable not found for request: Specific({name}, {version})")
        return servable

    def statuses(self, name, version=None, label=None):
        """ModelVersionStatus list for GetModelStatus (one version when asked)."""
        model = self.model_config(name)
        known = self._statuses.get(name, {})
        if label:
            if label not in model.version_labels:
                raise invalid(f"Unrecognized servable version label: {label}")
            version = model.version_labels[label]
        if version is not None:
            if int(version) not in known:
                raise not_found(f"Could not find version {version} of model {name}")
            return [known[int(version)]]
        if not known:
            raise not_found(f"Could not find any versions of model {name}")
        return [known[v] for v in sorted(known, reverse=True)]

    def loaded(self):
        """{name: [versions]} currently served."""
        return {name: sorted(versions) for name, versions in self._servables.items()}

