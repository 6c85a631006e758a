"""`python -m tfllm.export.verify SAVED_MODEL EXPECTED.npz`: export's check.

Runs in its own process so that nothing from the exporting process (Python
objects, registered ops, traced functions) can make a broken SavedModel look fine.
"""

import sys

import numpy as np
import tensorflow as tf
import tensorflow_text  # noqa: F401  registers the tokenizer ops the SavedModel uses


def main(saved_model_dir, expected_path):
    loaded = tf.saved_model.load(saved_model_dir)
    expected = np.load(expected_path, allow_pickle=True)
    inputs = {key.split("/", 1)[1]: tf.constant(expected[key].astype(object))
              for key in expected.files if key.startswith("input/")}
    for key in expected.files:
        signature, output = key.split("/", 1)
        if signature == "input":
            continue
        actual = loaded.signatures[signature](**inputs)[output].numpy()
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
