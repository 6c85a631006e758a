"""tf.data input pipelines over the TFRecords that the preprocessing job wrote.

Each reader parses with the schema recorded in the manifest, shards per worker
through `tf.distribute.InputContext` (as `distribute_datasets_from_function`
passes it), interleaves files in parallel, shuffles, batches with
drop_remainder for static shapes, and prefetches. Records are parsed a batch at
a time (`parse_example` on a vector), which is much cheaper than one by one.
"""

import json
import os

import keras_hub
import tensorflow as tf

from tfllm.data import output, schema
from tfllm.errors import ConfigError

AUTOTUNE = tf.data.AUTOTUNE


def load_manifest(data_dir, split):
    manifest = output.read_manifest(data_dir)
    if split not in manifest["splits"]:
        raise ConfigError(f"{data_dir} has no split {split!r}; it has "
                          f"{', '.join(manifest['splits'])}.")
    if not manifest["splits"][split]["files"]:
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


def unmasked_ids(parsed):
    """The token ids before static masking: each masked position gets its label back,
    so a training batch can be masked anew (dynamic masking over static data)."""
    if "masked_lm_positions" not in parsed:
        return parsed["input_ids"]
    selected = parsed["masked_lm_weights"] > 0
    positions = parsed["masked_lm_positions"]
    rows = tf.broadcast_to(tf.range(tf.shape(positions)[0])[:, None], tf.shape(positions))
    indices = tf.stack([tf.boolean_mask(rows, selected), tf.boolean_mask(positions, selected)],
                       axis=1)
    return tf.tensor_scatter_nd_update(parsed["input_ids"], indices,
                                       tf.boolean_mask(parsed["masked_lm_ids"], selected))


def _bert_inputs(parsed, dynamic_masker):
    features = {"token_ids": parsed["input_ids"], "segment_ids": parsed["segment_ids"],
                "padding_mask": parsed["input_mask"]}
    if dynamic_masker is not None:
        masked = dynamic_masker(unmasked_ids(parsed))
        features["token_ids"] = masked["token_ids"]
        features["mask_positions"] = masked["mask_positions"]
        labels = {"mlm_ids": masked["mask_ids"], "mlm_weights": masked["mask_weights"]}
    else:
        features["mask_positions"] = parsed["masked_lm_positions"]
        labels = {"mlm_ids": parsed["masked_lm_ids"],
                  "mlm_weights": parsed["masked_lm_weights"]}
    labels["nsp_labels"] = parsed["next_sentence_labels"][:, 0]
    return features, labels


def _gpt_inputs(parsed):
    ids, mask = parsed["input_ids"], parsed["input_mask"]
    return ({"token_ids": ids[:, :-1], "padding_mask": mask[:, :-1]},
            {"lm_ids": ids[:, 1:], "lm_weights": tf.cast(mask[:, 1:], tf.float32)})


def _task_inputs(parsed):
    if "tag_ids" in parsed:
        labels = {"tags": parsed["tag_ids"]}
    elif "start_positions" in parsed:
        labels = {"starts": parsed["start_positions"][:, 0],
                  "ends": parsed["end_positions"][:, 0]}
    elif "label_ids" in parsed:
        labels = {"labels": parsed["label_ids"][:, 0]}
    else:
        labels = {"values": parsed["label_values"][:, 0]}
    return ({"token_ids": parsed["input_ids"], "segment_ids": parsed["segment_ids"],
             "padding_mask": parsed["input_mask"]}, labels)


def dynamic_masker(manifest, masked_lm_prob=0.0, max_predictions_per_seq=0):
    """keras-hub's mask generator set up for the manifest's WordPiece vocabulary; the rate
    and the positions per sequence default to those the data was written with."""
    special = manifest["tokenizer"]["special_ids"]
    written = manifest["config"]["examples"]
    return keras_hub.layers.MaskedLMMaskGenerator(
        vocabulary_size=manifest["tokenizer"]["vocab_size"],
        mask_selection_rate=masked_lm_prob or written["masked_lm_prob"],
        mask_token_id=special["mask"],
        mask_selection_length=max_predictions_per_seq or written["max_predictions_per_seq"],
        unselectable_token_ids=[special["pad"], special["cls"], special["sep"]],
        mask_token_rate=0.8, random_token_rate=0.1)


def split_files(data_dir, split):
    """The TFRecord files of a split, as paths."""
    manifest = load_manifest(data_dir, split)
    return [os.path.join(data_dir, f) for f in manifest["splits"][split]["files"]]


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
    """(features, labels) batches for the example kind recorded in the manifest.

    `batch_size` is per input pipeline; with an `input_context`, pass
    `input_context.get_per_replica_batch_size(global_batch_size)`. Training
    defaults (shuffle, repeat) apply to the train split; eval reads once in order.
    BERT data written without static masks is masked with the data's rate unless a
    `masker` (`dynamic_masker`) is given; with static masks, a `masker` re-masks each
    batch (the written masks are undone first).
    `exclude_files` (paths) are left out, e.g. the `corrupt_files` a user chose to skip.
    `skip_examples` records of this input pipeline are dropped before batching: a resumed
    run continues at the same example whatever its batch size (the record order depends
    only on the seed; dynamic BERT masks are drawn anew).
    """
    manifest = load_manifest(data_dir, split)
    features = schema.from_manifest(manifest["schema"])
    kind = manifest["kind"]
    if kind == "bert" and "masked_lm_positions" not in features and masker is None:
        masker = dynamic_masker(manifest)
    training = split == "train"
    shuffle = training if shuffle is None else shuffle
    repeat = training if repeat is None else repeat
    files = [os.path.join(data_dir, f) for f in manifest["splits"][split]["files"]
             if os.path.join(data_dir, f) not in exclude_files]
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
    spec = schema.parse_spec(features)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    dataset = dataset.map(lambda records: _to_int32(tf.io.parse_example(records, spec)),
                          num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    if kind == "bert":
        dataset = dataset.map(lambda p: _bert_inputs(p, masker), num_parallel_calls=AUTOTUNE)
    elif kind == "gpt":
        dataset = dataset.map(_gpt_inputs, num_parallel_calls=AUTOTUNE)
    else:
        dataset = dataset.map(_task_inputs, num_parallel_calls=AUTOTUNE)
    return dataset.prefetch(AUTOTUNE)


def _to_int32(parsed):
    return {name: tf.cast(value, tf.int32) if value.dtype == tf.int64 else value
            for name, value in parsed.items()}


def split_texts(data_dir, split):
    """Raw texts, their pair texts ("" for single texts) and labels (class ids, or the
    float targets of regression data) of a fine-tuning split, in file order (baselines,
    export checks)."""
    regression = output.read_manifest(data_dir)["kind"] == "regress"
    label = ("label_values", tf.float32) if regression else ("label_ids", tf.int64)
    spec = {"text": tf.io.FixedLenFeature([1], tf.string),
            "text_pair": tf.io.FixedLenFeature([1], tf.string, default_value=[b""]),
            label[0]: tf.io.FixedLenFeature([1], label[1])}
    files = split_files(data_dir, split)
    texts, pairs, labels = [], [], []
    for records in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1024):
        examples = tf.io.parse_example(records, spec)
        texts += [t.decode("utf-8") for t in examples["text"].numpy()[:, 0]]
        pairs += [t.decode("utf-8") for t in examples["text_pair"].numpy()[:, 0]]
        labels += examples[label[0]].numpy()[:, 0].tolist()
    return texts, pairs, labels


def split_tagged(data_dir, split):
    """Words and tags (lists per sentence) of a tagging split, in file order."""
    spec = {"text": tf.io.FixedLenFeature([1], tf.string),
            "tags": tf.io.FixedLenFeature([1], tf.string)}
    words, tags = [], []
    files = split_files(data_dir, split)
    for records in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1024):
        examples = tf.io.parse_example(records, spec)
        words += [t.decode("utf-8").split(" ") for t in examples["text"].numpy()[:, 0]]
        tags += [t.decode("utf-8").split(" ") for t in examples["tags"].numpy()[:, 0]]
    return words, tags


def split_questions(data_dir, split):
    """Questions, contexts and labels ({"answers": [{"text", "answer_start"}],
    "is_impossible"}) of a QA split, one per question (its first window), in file order."""
    spec = {name: tf.io.FixedLenFeature([1], tf.string)
            for name in ("question", "context", "answers")}
    spec["window"] = tf.io.FixedLenFeature([1], tf.int64)
    questions, contexts, labels = [], [], []
    files = split_files(data_dir, split)
    for records in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1024):
        examples = tf.io.parse_example(records, spec)
        for window, question, context, label in zip(
                *(examples[k].numpy()[:, 0] for k in ("window", "question", "context",
                                                      "answers"))):
            if window == 0:
                questions.append(question.decode("utf-8"))
                contexts.append(context.decode("utf-8"))
                labels.append(json.loads(label))
    return questions, contexts, labels
