"""`python -m tfllm.serving.verify SAVED_MODEL INPUT_NAME EXPECTED.npz`: export's check.

Runs in its own process so that nothing from the exporting process (Python
objects, registered ops, traced functions) can make a broken SavedModel look fine.
"""

import sys

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  registers the tokenizer ops the SavedModel uses


def main(saved_model_dir, input_name, expected_path):
    loaded = tf.saved_model.load(saved_model_dir)
    expected = np.load(expected_path, allow_pickle=True)
    samples = tf.constant(expected["input"].astype(object))
    for key in expected.files:
        if key == "input":
            continue
        signature, output = key.split("/")
        actual = loaded.signatures[signature](**{input_name: samples})[output].numpy()
        want = expected[key]
        if want.dtype.kind in "fc":
            same = actual.shape == want.shape and np.allclose(actual, want, atol=1e-4)
        else:
            same = actual.shape == want.shape and (actual == want).all()
        if not same:
            sys.exit(f"{signature}/{output}: the SavedModel gives {actual!r}, the Keras model "
                     f"{want!r}")
    print("verified")


if __name__ == "__main__":
    main(*sys.argv[1:])
