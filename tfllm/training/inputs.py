"""The trainer's input: distributed datasets positioned in examples, and the policy
for corrupt shards (name them, or leave them out when the user asks)."""

from tfllm import tasks
from tfllm.data import readers
from tfllm.errors import InputError


def input_pipelines(strategy):
    """How many workers read the data, each its own shard of the files."""
    return max(strategy.num_replicas_in_sync // len(strategy.extended.worker_devices), 1)


def train_iterator(strategy, config, examples_seen, exclude_files, task=None):
    """The training input, positioned after the `examples_seen` examples already used.

    Distributed iterators cannot be checkpointed here, but the record order is a pure
    function of the seed, so skipping the consumed records restores the exact position,
    also after the global batch size, accumulation or replica count changed (reading is
    hundreds of times faster than training). Each worker consumed an equal share.
    The data's `task` (made from its manifest unless given) may mask training batches
    anew by flags (`Task.training_masker`: BERT's --mlm_mask_rate).
    """
    task = task or tasks.for_manifest(readers.load_manifest(config.data_dir, "train"))
    masker = task.training_masker(config)
    return iter(strategy.distribute_datasets_from_function(
        lambda ctx: readers.make_dataset(
            config.data_dir, "train", ctx.get_per_replica_batch_size(config.global_batch_size),
            input_context=ctx, shuffle=config.shuffle, seed=config.seed,
            exclude_files=exclude_files, masker=masker,
            skip_examples=examples_seen // ctx.num_input_pipelines)))


def eval_iterator(strategy, config, exclude_files):
    """The eval split in file order, repeated so any --eval_steps fits."""
    return iter(strategy.distribute_datasets_from_function(
        lambda ctx: readers.make_dataset(
            config.data_dir, "eval", ctx.get_per_replica_batch_size(config.global_batch_size),
            input_context=ctx, shuffle=False, repeat=True, exclude_files=exclude_files)))


def corrupt_files_to_skip(data_dir, report):
    """The corrupt shards to leave out, each reported; every shard of a split being
    corrupt is still an error."""
    skipped = {}
    for split in ("train", "eval"):
        files = readers.split_files(data_dir, split)
        bad = readers.corrupt_files(files)
        if len(bad) == len(files):
            raise InputError(f"Every {split} file of {data_dir} is corrupt: "
                             + "; ".join(f"{p}: {r}" for p, r in bad.items()) + ".")
        for path, reason in bad.items():
            report(f"skipping corrupt {split} file {path}: {reason}")
        skipped.update(bad)
    return skipped


def corrupt_data_error(data_dir, split):
    """The error for a DataLossError while reading `split`, naming the bad files
    (tf.data does not say which file it was reading)."""
    bad = readers.corrupt_files(readers.split_files(data_dir, split))
    where = "; ".join(f"{path}: {reason}" for path, reason in bad.items()) or (
        f"a {split} file of {data_dir}")
    return InputError(f"The {split} data is corrupt ({where}). Re-create it with "
                      "tfllm.preprocess, or pass --skip_corrupt_files to train without "
                      "the corrupt files.")
