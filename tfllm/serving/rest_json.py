"""TF Serving's REST JSON encoding of tensors (its `api_rest.md`): row
(`instances`/`predictions`) and columnar (`inputs`/`outputs`) formats, binary
values as `{"b64": ...}`, outputs whose name ends in `_bytes` base64-encoded."""

import base64
import binascii

import numpy as np

from tfllm.serving.status import invalid


def _is_b64(value):
    return isinstance(value, dict) and set(value) == {"b64"}


def _decode(value):
    """JSON value -> Python value with b64 objects as bytes and text as UTF-8 bytes."""
    if _is_b64(value):
        try:
            return base64.b64decode(value["b64"], validate=True)
        except (binascii.Error, TypeError):
            raise invalid("A {\"b64\": ...} value is not valid base64.") from None
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, dict):
        raise invalid(f"Unexpected JSON object {str(value)[:80]} where a value was expected.")
    return value


def _array(value, what):
    if _has_bytes(value):
        array = np.array(value, dtype=object)
        rectangular = all(isinstance(v, bytes) for v in array.flat)
    else:
        try:
            array = np.array(value)
            rectangular = array.dtype != object
        except ValueError:
            rectangular = False
    if not rectangular:
        raise invalid(f"{what}: the values do not form a rectangular tensor of one type "
                      "(lists of different lengths or mixed types).")
    return array


def _has_bytes(value):
    if isinstance(value, list):
        return any(_has_bytes(v) for v in value)
    return isinstance(value, bytes)


def parse_predict(body, input_names):
    """(signature_name, {input: numpy array}, row_format) from a :predict body."""
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object with \"instances\" or \"inputs\".")
    if ("instances" in body) == ("inputs" in body):
        raise invalid("The request must have exactly one of \"instances\" (row format) or "
                      "\"inputs\" (columnar format).")
    signature_name = body.get("signature_name", "")
    if not isinstance(signature_name, str):
        raise invalid("\"signature_name\" must be a string.")
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list) or not instances:
            raise invalid("\"instances\" must be a non-empty list.")
        if all(isinstance(i, dict) and not _is_b64(i) for i in instances):
            names = set(instances[0])
            if any(set(i) != names for i in instances):
                raise invalid("Every instance must name the same inputs.")
            inputs = {n: _array([_decode(i[n]) for i in instances], f"Input \"{n}\"")
                      for n in names}
        else:
            inputs = {_single(input_names): _array(_decode(instances), "instances")}
        return signature_name, inputs, True
    columns = body["inputs"]
    if isinstance(columns, dict) and not _is_b64(columns):
        inputs = {n: _array(_decode(v), f"Input \"{n}\"") for n, v in columns.items()}
    else:
        inputs = {_single(input_names): _array(_decode(columns), "inputs")}
    return signature_name, inputs, False


def _single(input_names):
    if len(input_names) != 1:
        raise invalid(f"This signature has inputs {sorted(input_names)}: name them (a list of "
                      "objects in \"instances\", an object in \"inputs\").")
    return next(iter(input_names))


def _encode(name, value):
    """numpy -> JSON-ready lists; strings as text, or b64 for `*_bytes` outputs."""
    if isinstance(value, np.ndarray):
        if value.dtype == object or np.issubdtype(value.dtype, np.bytes_):
            return [_encode(name, v) for v in value] if value.ndim else _encode(name, value.item())
        return value.tolist()
    if isinstance(value, bytes):
        if name.endswith("_bytes"):
            return {"b64": base64.b64encode(value).decode("ascii")}
        return value.decode("utf-8", errors="replace")
    return value.item() if isinstance(value, np.generic) else value


def format_predict(outputs, row_format):
    if not row_format:
        encoded = {k: _encode(k, v) for k, v in outputs.items()}
        return {"outputs": next(iter(encoded.values())) if len(encoded) == 1 else encoded}
    sizes = {np.shape(v)[0] if np.ndim(v) else None for v in outputs.values()}
    if len(sizes) != 1 or None in sizes:
        raise invalid("The outputs do not share a batch size; ask for the columnar format "
                      "(\"inputs\").")
    if len(outputs) == 1:
        ((name, value),) = outputs.items()
        return {"predictions": _encode(name, value)}
    rows = sizes.pop()
    return {"predictions": [{k: _encode(k, v[i]) for k, v in outputs.items()}
                            for i in range(rows)]}


def parse_classify(body):
    """(signature_name, [feature dicts]) from a :classify or :regress body; context features are
    merged into every example (TF Serving's ExampleListWithContext)."""
    if not isinstance(body, dict) or not isinstance(body.get("examples"), list) \
            or not body["examples"]:
        raise invalid("A classify or regress request needs \"examples\": a non-empty list of "
                      "objects.")
    context = body.get("context", {})
    if not isinstance(context, dict) or not all(isinstance(e, dict) for e in body["examples"]):
        raise invalid("\"examples\" and \"context\" must be JSON objects of features.")
    decode = lambda features: {k: _decode(v) for k, v in features.items()}  # noqa: E731
    examples = [{**decode(context), **decode(example)} for example in body["examples"]]
    return body.get("signature_name", ""), examples
