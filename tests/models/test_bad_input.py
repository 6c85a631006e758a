import numpy as np
import pytest
import tensorflow as tf

from tests.models.helpers import bert_batch, gpt_batch, tiny
from tfllm.errors import InputError
from tfllm.models import build_pretraining_model


@pytest.fixture(scope="module")
def bert():
    return build_pretraining_model(tiny("bert", max_sequence_length=16))


@pytest.fixture(scope="module")
def gpt():
    return build_pretraining_model(tiny("gpt", max_sequence_length=16))


def test_sequence_longer_than_the_maximum(bert, gpt, rng):
    with pytest.raises(InputError, match="'token_ids' has 17 positions but the model's "
                                         "max_sequence_length is 16"):
        bert(bert_batch(rng, bert.config, length=17))
    with pytest.raises(InputError, match="17 positions .* max_sequence_length is 16"):
        gpt(gpt_batch(rng, gpt.config, length=17))


def test_too_long_sequence_in_a_graph_of_unknown_length(gpt, rng):
    spec = tf.TensorSpec([None, None], tf.int32)

    @tf.function(input_signature=[spec, spec])
    def forward(token_ids, padding_mask):
        return gpt({"token_ids": token_ids, "padding_mask": padding_mask})

    batch = gpt_batch(rng, gpt.config, length=16)
    assert forward(batch["token_ids"], batch["padding_mask"]).shape[1] == 16
    batch = gpt_batch(rng, gpt.config, length=20)
    with pytest.raises(tf.errors.InvalidArgumentError, match="longer than max_sequence_length=16"):
        forward(batch["token_ids"], batch["padding_mask"])


def test_wrong_rank(gpt, rng):
    batch = gpt_batch(rng, gpt.config)
    with pytest.raises(InputError, match="'token_ids' must have rank 2 .* got shape \\(12,\\)"):
        gpt({"token_ids": batch["token_ids"][0], "padding_mask": batch["padding_mask"][0]})


def test_wrong_dtype(bert, rng):
    batch = bert_batch(rng, bert.config)
    batch["token_ids"] = batch["token_ids"].astype("float32")
    with pytest.raises(InputError, match="'token_ids' must hold integers; got dtype float32"):
        bert(batch)


def test_missing_input_and_mismatched_shapes(bert, gpt, rng):
    batch = bert_batch(rng, bert.config)
    del batch["segment_ids"]
    with pytest.raises(InputError, match="missing input\\(s\\) segment_ids"):
        bert(batch)
    with pytest.raises(InputError, match="expects a dict"):
        gpt(np.zeros((2, 4), "int32"))
    batch = gpt_batch(rng, gpt.config)
    batch["padding_mask"] = batch["padding_mask"][:, :5]
    with pytest.raises(InputError, match="disagree in shape"):
        gpt(batch)
