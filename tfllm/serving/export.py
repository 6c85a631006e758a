"""SavedModel export of a fine-tuned classifier in TF Serving's layout.

Tokenization runs inside the graph (the keras-hub tokenizer's tensorflow-text
ops and keras-hub's StartEndPacker), so clients send raw strings. Serving
functions are traced without XLA: TF Serving disables it by default.
"""

import os
import shutil

import keras_hub
import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from tfllm.errors import ConfigError
from tfllm.serving import versions

WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


class ClassifierModule(tf.Module):
    """Signatures: `serving_default` (text -> label, classes, scores), `classify`
    (serialized tf.Example with a `text` feature -> classes, scores) and `token_ids`
    (pre-tokenized input -> scores)."""

    def __init__(self, model, tokenizer, labels):
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer.keras_tokenizer
        special = tokenizer.special_ids
        length = model.config.max_sequence_length
        if "cls" in special:
            self.packer = keras_hub.layers.StartEndPacker(
                length, start_value=special["cls"], end_value=special["sep"],
                pad_value=special["pad"], return_padding_mask=True)
        else:
            self.packer = keras_hub.layers.StartEndPacker(
                length, end_value=special["end_of_text"], pad_value=special["pad"],
                return_padding_mask=True)
        self.labels = tf.constant(labels)
        self.serving_default = tf.function(
            self._classify_text, input_signature=[tf.TensorSpec([None], tf.string, "text")])
        self.classify = tf.function(
            self._classify_examples,
            input_signature=[tf.TensorSpec([None], tf.string, "inputs")])
        self.token_ids = tf.function(self._classify_ids, input_signature=[
            tf.TensorSpec([None, None], tf.int32, "token_ids"),
            tf.TensorSpec([None, None], tf.int32, "padding_mask")])

    def _scores(self, token_ids, padding_mask):
        features = {"token_ids": token_ids, "padding_mask": padding_mask,
                    "segment_ids": tf.zeros_like(token_ids)}
        return tf.nn.softmax(self.model(features, training=False), axis=-1)

    def _classify_ids(self, token_ids, padding_mask):
        return {"scores": self._scores(token_ids, padding_mask)}

    def _classify_text(self, text):
        token_ids, padding_mask = self.packer(self.tokenizer(text))
        scores = self._scores(tf.cast(token_ids, tf.int32), tf.cast(padding_mask, tf.int32))
        classes = tf.broadcast_to(self.labels, tf.shape(scores))
        return {"label": tf.gather(self.labels, tf.argmax(scores, axis=-1)),
                "classes": classes, "scores": scores}

    def _classify_examples(self, serialized):
        parsed = tf.io.parse_example(serialized, {"text": tf.io.FixedLenFeature([], tf.string)})
        outputs = self._classify_text(parsed["text"])
        return {"classes": outputs["classes"], "scores": outputs["scores"]}


def _warmup_requests(name, texts):
    """TF Serving replays these PredictionLogs at load (`--enable_model_warmup`)."""
    request = predict_pb2.PredictRequest(
        model_spec=model_pb2.ModelSpec(name=name, signature_name="serving_default"))
    request.inputs["text"].CopyFrom(tf.make_tensor_proto(np.array(texts, dtype=object)))
    return [prediction_log_pb2.PredictionLog(
        predict_log=prediction_log_pb2.PredictLog(request=request))]


def export_classifier(model, tokenizer, labels, export_base, name, sample_texts):
    """Writes `export_base/name/VERSION/` atomically, checks the reloaded SavedModel
    against the Keras model on `sample_texts`, and returns the version directory."""
    module = ClassifierModule(model, tokenizer, labels)
    expected = module.serving_default(tf.constant(sample_texts))["scores"].numpy()
    temporary, version = versions.begin_version(export_base, name)
    try:
        tf.saved_model.save(module, temporary, signatures={
            "serving_default": module.serving_default, "classify": module.classify,
            "token_ids": module.token_ids})
        os.makedirs(os.path.join(temporary, "assets.extra"))
        with tf.io.TFRecordWriter(os.path.join(temporary, WARMUP_FILE)) as writer:
            for log in _warmup_requests(name, sample_texts):
                writer.write(log.SerializeToString())
        reloaded = tf.saved_model.load(temporary)
        actual = reloaded.signatures["serving_default"](text=tf.constant(sample_texts))
        if not np.allclose(actual["scores"].numpy(), expected, atol=1e-5):
            raise ConfigError("The exported SavedModel does not reproduce the Keras model's "
                              "scores; nothing was published.")
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    return versions.commit_version(temporary, version)
