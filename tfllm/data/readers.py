"""tf.data input pipelines over the TFRecords that the preprocessing job wrote.

Each reader parses with the schema recorded in the manifest, shards per worker
through `tf.distribute.InputContext` (as `distribute_datasets_from_function`
passes it), interleaves files in parallel, shuffles, batches with
drop_remainder for static shapes, and prefetches. Records are parsed a batch at
a time (`parse_example` on a vector), which is much cheaper than one by one.
"""

import tensorflow as tf

from tfllm import tasks
from tfllm.data import output, schema
from tfllm.errors import ConfigError

AUTOTUNE = tf.data.AUTOTUNE


def load_manifest(data_dir, split):
    """The data's `Manifest`, checked to have files in `split`."""
    manifest = output.read_manifest(data_dir)
    if split not in manifest.splits:
        raise ConfigError(f"{data_dir} has no split {split!r}; it has "
                          f"{', '.join(manifest.splits)}.")
    if not manifest.splits[split].files:
        raise ConfigError(f"Split {split!r} of {data_dir} is empty (no examples were "
                          "written); use more data or a different --eval_fraction.")
    return manifest


def _records(files, input_context, shuffle, seed, cycle_length, deterministic):
    dataset = tf.data.Dataset.from_tensor_slices(files)
    shard_records = False
    if input_context and input_context.num_input_pipelines > 1:
        if len(files) >= input_context.num_input_pipelines:
            dataset = dataset.shard(input_context.num_input_pipelines,
                                    input_context.input_pipeline_id)
        else:
            shard_records = True  # too few files: each worker takes every n-th record
    if shuffle:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.interleave(
        lambda path: tf.data.TFRecordDataset(path, compression_type="GZIP"),
        cycle_length=min(cycle_length, len(files)), num_parallel_calls=AUTOTUNE,
        deterministic=deterministic)
    if shard_records:
        dataset = dataset.shard(input_context.num_input_pipelines,
                                input_context.input_pipeline_id)
    return dataset


def split_files(data_dir, split):
    """The TFRecord files of a split, as paths."""
    return load_manifest(data_dir, split).files(split)


def corrupt_files(files):
    """{path: reason} for each GZIP TFRecord file that does not read to its end
    (truncated or corrupted): tf.data's DataLossError does not name the file."""
    bad = {}
    for path in files:
        try:
            for _ in tf.data.TFRecordDataset(path, compression_type="GZIP").batch(4096):
                pass
        except tf.errors.OpError as error:
            reason = error.message.rsplit("}", 1)[-1].split("[Op:")[0].strip()
            bad[path] = reason.replace("' failed with EOF reached", " (end of file)")
    return bad


def make_dataset(data_dir, split, batch_size, input_context=None, shuffle=None, seed=None,
                 repeat=None, shuffle_buffer=10_000, cycle_length=8, masker=None,
                 exclude_files=(), skip_examples=0):
    """(features, labels) batches, as the task of the manifest's kind reads its examples.

    `batch_size` is per input pipeline; with an `input_context`, pass
    `input_context.get_per_replica_batch_size(global_batch_size)`. Training
    defaults (shuffle, repeat) apply to the train split; eval reads once in order.
    A `masker` is applied to each batch by the task instead of its default one (BERT's
    dynamic masks: `tasks.masked_lm.dynamic_masker`).
    `exclude_files` (paths) are left out, e.g. the `corrupt_files` a user chose to skip.
    `skip_examples` records of this input pipeline are dropped before batching: a resumed
    run continues at the same example whatever its batch size (the record order depends
    only on the seed; dynamic BERT masks are drawn anew).
    """
    manifest = load_manifest(data_dir, split)
    task = tasks.for_manifest(manifest)
    if masker is None:
        masker = task.default_masker()
    training = split == "train"
    shuffle = training if shuffle is None else shuffle
    repeat = training if repeat is None else repeat
    files = [path for path in manifest.files(split) if path not in exclude_files]
    # A seed asks for a reproducible order (resumable, comparable runs); without one,
    # parallel reads may go in whatever order is fastest.
    deterministic = seed is not None or not shuffle
    dataset = _records(files, input_context, shuffle, seed, cycle_length, deterministic)
    if shuffle:
        dataset = dataset.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    if skip_examples:
        dataset = dataset.skip(skip_examples)
    spec = schema.parse_spec(manifest.schema)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    dataset = dataset.map(lambda records: _to_int32(tf.io.parse_example(records, spec)),
                          num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    dataset = dataset.map(lambda parsed: task.inputs(parsed, masker),
                          num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)


def _to_int32(parsed):
    return {name: tf.cast(value, tf.int32) if value.dtype == tf.int64 else value
            for name, value in parsed.items()}
