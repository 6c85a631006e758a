"""Tiny configs and random batches for model tests."""

import numpy as np

from tfllm.models import configs


def tiny(family, **overrides):
    return configs.override(configs.get_preset(f"{family}_tiny"), overrides)


def bert_batch(rng, config, batch=2, length=12, lengths=None, num_masked=3):
    lengths = lengths or [length] * batch
    token_ids = rng.integers(1, config.vocab_size, size=(batch, length)).astype("int32")
    padding_mask = (np.arange(length)[None, :] < np.array(lengths)[:, None]).astype("int32")
    segment_ids = np.zeros((batch, length), "int32")
    segment_ids[:, length // 2:] = 1
    mask_positions = np.stack([rng.choice(n, size=num_masked, replace=False) for n in lengths])
    return {"token_ids": token_ids * padding_mask, "segment_ids": segment_ids * padding_mask,
            "padding_mask": padding_mask, "mask_positions": mask_positions.astype("int32")}


def gpt_batch(rng, config, batch=2, length=12):
    return {"token_ids": rng.integers(0, config.vocab_size, (batch, length)).astype("int32"),
            "padding_mask": np.ones((batch, length), "int32")}
