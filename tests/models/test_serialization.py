import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.models.helpers import bert_batch, gpt_batch, tiny
from tfllm.models import build_pretraining_model


def _model_and_batch(family, rng):
    model = build_pretraining_model(tiny(family))
    make_batch = bert_batch if family == "bert" else gpt_batch
    return model, make_batch(rng, model.config)


def _outputs(model, batch):
    return tf.nest.map_structure(lambda t: t.numpy(), model(batch, training=False))


@pytest.mark.parametrize("family", ["bert", "gpt"])
def test_keras_file_round_trip_gives_identical_outputs(family, rng, tmp_path):
    model, batch = _model_and_batch(family, rng)
    path = tmp_path / f"{family}.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    assert type(restored) is type(model)
    assert restored.config == model.config
    tf.nest.map_structure(np.testing.assert_array_equal, _outputs(model, batch),
                          _outputs(restored, batch))
    # Tying survives the round trip.
    embedding = restored.backbone.token_embedding.embeddings
    assert sum(w is embedding for w in restored.weights) == 1


@pytest.mark.parametrize("family", ["bert", "gpt"])
def test_get_config_from_config_rebuilds_the_same_architecture(family, rng):
    model, batch = _model_and_batch(family, rng)
    clone = type(model).from_config(model.get_config())
    assert [w.shape for w in clone.weights] == [w.shape for w in model.weights]
    clone.set_weights(model.get_weights())
    tf.nest.map_structure(np.testing.assert_array_equal, _outputs(model, batch),
                          _outputs(clone, batch))


@pytest.mark.parametrize("family", ["bert", "gpt"])
def test_tf_checkpoint_round_trip(family, rng, tmp_path):
    model, batch = _model_and_batch(family, rng)
    path = tf.train.Checkpoint(model=model).write(str(tmp_path / "ckpt"))
    keras.utils.set_random_seed(99)  # a differently initialised twin
    twin = build_pretraining_model(model.config)
    assert not np.allclose(twin.backbone.token_embedding.embeddings.numpy(),
                           model.backbone.token_embedding.embeddings.numpy())
    tf.train.Checkpoint(model=twin).read(path).assert_existing_objects_matched()
    tf.nest.map_structure(np.testing.assert_array_equal, _outputs(model, batch),
                          _outputs(twin, batch))
