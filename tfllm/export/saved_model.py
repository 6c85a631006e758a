"""Writing a module as a SavedModel version TF Serving can load, and checking it.

The version directory is written under a hidden name, verified by reloading it
in a fresh Python process (as a server would: only TensorFlow and
tensorflow-text's ops), and renamed into place only then.
"""

import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from tfllm.errors import ConfigError
from tfllm.serving import versions
from tfllm.serving.layout import CLASSIFY_METHOD, REGRESS_METHOD, WARMUP_FILE



def _warmup_requests(name, samples):
    """TF Serving replays these PredictionLogs at load (`--enable_model_warmup`)."""
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=name, signature_name="serving_default"))
    for input_name, values in samples.items():
        request.inputs[input_name].CopyFrom(tf.make_tensor_proto(np.array(values, object)))
    return [prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request))]


def _mark_example_signatures(saved_model_dir):
    """TF2 saves every signature as a Predict one; TF Serving's Classify and Regress APIs
    accept only signatures whose method is `tensorflow/serving/classify` or `.../regress`."""
    path = os.path.join(saved_model_dir, "saved_model.pb")
    saved_model = saved_model_pb2.SavedModel()
    with open(path, "rb") as f:
        saved_model.ParseFromString(f.read())
    for meta_graph in saved_model.meta_graphs:
        for name, method in (("classify", CLASSIFY_METHOD), ("regress", REGRESS_METHOD)):
            if name in meta_graph.signature_def:
                meta_graph.signature_def[name].method_name = method
    with open(path, "wb") as f:
        f.write(saved_model.SerializeToString())


def verify_in_fresh_process(saved_model_dir, samples, expected):
    """Reloads the SavedModel in a new interpreter, calls it on `samples` ({input name:
    values}) and compares its outputs with `expected` ({signature: {output: array}});
    raises ConfigError on a mismatch."""
    with tempfile.TemporaryDirectory() as scratch:
        path = os.path.join(scratch, "expected.npz")
        arrays = {f"input/{name}": np.array(values, object) for name, values in samples.items()}
        for signature, outputs in expected.items():
            arrays.update({f"{signature}/{key}": value for key, value in outputs.items()})
        np.savez(path, **arrays)
        result = subprocess.run(
            [sys.executable, "-m", "tfllm.export.verify", saved_model_dir, path],
            capture_output=True, text=True, timeout=600,
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    if result.returncode != 0:
        message = result.stderr.strip().splitlines()[-1:] or ["no output"]
        raise ConfigError(f"The exported SavedModel failed verification in a fresh process "
                          f"({message[0]}); nothing was published.")


def export_module(module, export_base, name, samples):
    """Writes `export_base/name/VERSION/` atomically once the reloaded SavedModel
    reproduces `module.reference(samples)`; returns the version directory. `samples`
    is a list of texts for the module's one input, or {input name: texts}."""
    if not isinstance(samples, dict):
        samples = {module.sample_input: list(samples)}
    expected = module.reference(samples if len(samples) > 1 else samples[module.sample_input])
    temporary, version = versions.begin_version(export_base, name)
    try:
        tf.saved_model.save(module, temporary, signatures={
            signature: getattr(module, signature) for signature in module.signature_names})
        _mark_example_signatures(temporary)
        os.makedirs(os.path.join(temporary, "assets.extra"))
        for path, content in getattr(module, "extra_assets", {}).items():
            with open(os.path.join(temporary, path), "w", encoding="utf-8") as f:
                f.write(content)
        with tf.io.TFRecordWriter(os.path.join(temporary, WARMUP_FILE)) as writer:
            for log in _warmup_requests(name, samples):
                writer.write(log.SerializeToString())
        verify_in_fresh_process(temporary, samples, expected)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return versions.commit_version(temporary, version)
