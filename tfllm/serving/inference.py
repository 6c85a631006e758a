"""Predict, Classify and Regress on a resolved servable: TF Serving's checks and semantics,
shared by the REST and gRPC front ends."""

import numpy as np
import tensorflow as tf

from tfllm.serving.layout import CLASSIFY_METHOD, REGRESS_METHOD
from tfllm.serving.status import invalid


def _coerce(key, value, info):
    """The input as the signature's dtype and rank, or a clear INVALID_ARGUMENT."""
    dtype = tf.dtypes.as_dtype(info.dtype)
    value = np.asarray(value)
    if dtype == tf.string:
        if value.dtype.kind not in "OSU":
            raise invalid(f"Input \"{key}\" expects strings (DT_STRING) but got "
                          f"{value.dtype.name} values.")
        value = value.astype(object)
        if value.size and not all(isinstance(v, (bytes, str)) for v in value.flat):
            raise invalid(f"Input \"{key}\" expects strings but got other values.")
    else:
        if value.dtype.kind not in "biuf":
            raise invalid(f"Input \"{key}\" expects {dtype.name} numbers but got "
                          f"{'strings' if value.dtype.kind in 'OSU' else value.dtype.name}.")
        if dtype.is_integer and np.issubdtype(value.dtype, np.floating) and not np.all(np.mod(value, 1) == 0):
            raise invalid(f"Input \"{key}\" expects integers ({dtype.name}) but got fractions.")
        value = value.astype(dtype.as_numpy_dtype)
    if not info.tensor_shape.unknown_rank and value.ndim != len(info.tensor_shape.dim):
        raise invalid(f"Input \"{key}\" expects rank {len(info.tensor_shape.dim)} but got a "
                      f"rank {value.ndim} value of shape {list(value.shape)}.")
    return value


def check_inputs(signature_name, signature_def, inputs):
    expected = set(signature_def.inputs)
    if set(inputs) != expected:
        raise invalid(f"Signature \"{signature_name}\" takes inputs {sorted(expected)}; the "
                      f"request gave {sorted(inputs)}.")
    return {key: _coerce(key, inputs[key], info) for key, info in signature_def.inputs.items()}


def predict(servable, signature_name, inputs, output_filter=()):
    """(signature name used, {output: numpy array})."""
    name, signature_def = servable.signature(signature_name)
    inputs = check_inputs(name, signature_def, inputs)
    unknown = set(output_filter) - set(signature_def.outputs)
    if unknown:
        raise invalid(f"output tensor alias not found in signature: {', '.join(sorted(unknown))}")
    batcher = servable.batchers.get(name)
    outputs = batcher.submit(inputs) if batcher else servable.run(name, inputs)
    if output_filter:
        outputs = {key: outputs[key] for key in output_filter}
    return name, outputs


def classify(servable, signature_name, serialized_examples):
    """(signature name used, [[(label, score), ...] per example]) through a signature
    of TF Serving's classify method (serialized tf.Examples -> classes, scores)."""
    name, signature_def = servable.signature(signature_name)
    if signature_def.method_name != CLASSIFY_METHOD:
        raise invalid(f"Expected classification signature method_name to be "
                      f"{CLASSIFY_METHOD}. Was: {signature_def.method_name} (signature "
                      f"\"{name}\"; tfllm classifiers name theirs \"classify\").")
    if not serialized_examples:
        raise invalid("Classify needs at least one example.")
    (input_key,) = signature_def.inputs
    _, outputs = predict(servable, name, {input_key: np.array(serialized_examples, object)})
    scores = outputs.get("scores")
    classes = outputs.get("classes")
    results = []
    for row in range(len(serialized_examples)):
        count = len(scores[row]) if scores is not None else len(classes[row])
        results.append([(classes[row][i].decode() if classes is not None else "",
                         float(scores[row][i]) if scores is not None else 0.0)
                        for i in range(count)])
    return name, results


def regress(servable, signature_name, serialized_examples):
    """(signature name used, [value per example]) through a signature of TF Serving's
    regress method (serialized tf.Examples -> outputs)."""
    name, signature_def = servable.signature(signature_name or "regress")
    if signature_def.method_name != REGRESS_METHOD:
        raise invalid(f"Expected regression signature method_name to be {REGRESS_METHOD}. "
                      f"Was: {signature_def.method_name} (signature \"{name}\"; tfllm "
                      "regressors name theirs \"regress\").")
    if not serialized_examples:
        raise invalid("Regress needs at least one example.")
    (input_key,) = signature_def.inputs
    _, outputs = predict(servable, name, {input_key: np.array(serialized_examples, object)})
    return name, [float(v) for v in np.reshape(outputs["outputs"], [-1])]


def example_from_features(features):
    """A tf.Example from JSON-like features: str/bytes -> bytes_list, int -> int64_list,
    float -> float_list, lists of one kind; {"b64": ...} values already decoded."""
    example = tf.train.Example()
    for key, value in features.items():
        values = value if isinstance(value, list) else [value]
        feature = example.features.feature[key]
        if all(isinstance(v, (str, bytes)) for v in values):
            feature.bytes_list.value.extend(v.encode() if isinstance(v, str) else v
                                            for v in values)
        elif all(isinstance(v, bool) is False and isinstance(v, int) for v in values):
            feature.int64_list.value.extend(values)
        elif all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            feature.float_list.value.extend(values)
        else:
            raise invalid(f"Feature \"{key}\" must hold strings, integers or floats of one "
                          f"kind; got {value!r:.80}.")
    return example
