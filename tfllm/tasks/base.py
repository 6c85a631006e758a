"""The Task: what one kind of example means, from raw text to a served answer.

As Model Garden's `Task` (official/core/base_task.py), a task owns its problem and
the jobs around it stay task-agnostic: the data job asks it for its example maker
and feature schema, the reader for features and labels, the trainer for the model
and the loss sums, evaluation for its metrics beside their baselines, export for the
serving module. A task is made for a data manifest (`Task(manifest)`); the data job,
which writes the manifest, makes one without.
"""

import os

import tensorflow as tf

from tfllm.data import readers
from tfllm.data.clean_corpus import CLEAN_DIR, clean_sample
from tfllm.errors import ConfigError


def cross_entropy(labels, logits):
    return tf.nn.sparse_softmax_cross_entropy_with_logits(
        labels=tf.cast(labels, tf.int32), logits=tf.cast(logits, tf.float32))


def correct(labels, logits):
    return tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32),
                            tf.cast(labels, tf.int32)), tf.float32)


def encoder_features(sequence_length):
    """The packed text every encoder kind's examples start with (google-research/bert's
    names)."""
    return {"input_ids": ("int64", sequence_length),
            "input_mask": ("int64", sequence_length),
            "segment_ids": ("int64", sequence_length)}


def encoder_inputs(parsed):
    return {"token_ids": parsed["input_ids"], "segment_ids": parsed["segment_ids"],
            "padding_mask": parsed["input_mask"]}


def first_words(data_dir, count, words):
    """The first `words` words of `count` cleaned documents (pretraining data's samples)."""
    return [" ".join(text.split()[:words])
            for text in clean_sample(os.path.join(data_dir, CLEAN_DIR), count)]


def read_split(data_dir, split, spec):
    """Yields each parsed batch (`spec`: a parse_example spec) of a split, in file order."""
    files = readers.split_files(data_dir, split)
    for records in tf.data.TFRecordDataset(files, compression_type="GZIP").batch(1024):
        yield {name: value.numpy() for name, value in tf.io.parse_example(records, spec).items()}


def eval_or_train(manifest):
    """The split whose texts stand for the model's data: eval when it has files."""
    return "eval" if manifest.splits["eval"].files else "train"


class Task:
    kind = ""  # the name in --kind and in every manifest
    losses = ()  # names of the loss sums; each is divided by its own count
    examples_config = None  # the example maker's settings (a dataclass that checks itself)
    tokenizer_family = "bert"  # the tokenizer the data job trains unless told
    model_families = ()  # the model families that train on it (empty: any backbone)
    label_type = "class"  # how readers take --label_field: class or float
    input_format = None  # (--input_format, what it holds) read by this kind and only it
    rewrites_text = True  # normalisation, PII scrubbing and line dedup may change texts
    min_labels = 0  # distinct labels the cleaned corpus must have
    sample_text_flag = True  # export may take --sample_text (single texts)
    converted_samples = ()  # export's check inputs for a converted model (no data)

    def __init__(self, manifest=None):
        self.manifest = manifest

    # --- the data job -----------------------------------------------------------------

    @classmethod
    def examples_from_options(cls, options):
        """The example config from the data job's flag values ({name: value})."""
        return cls.examples_config(sequence_length=options["sequence_length"])

    def check_job(self, config):
        """Refuses a data job configuration this kind cannot make examples from."""

    def labels_of(self, document):
        """The label vocabulary's entries one document brings."""
        return []

    def split_key(self, document):
        """What the train/eval split hashes: documents that must stay together share it."""
        return document.doc_id

    def example_maker(self, examples, tokenizer, labels, num_documents):
        """A Beam PTransform: documents -> (sort key, feature values)."""
        raise NotImplementedError

    def feature_schema(self, examples):
        """{feature: (dtype, length)} of one example."""
        raise NotImplementedError

    def facts(self, statistics):
        """The kind's own facts for the manifest, from the job's counters."""
        return {}

    # --- reading and training ---------------------------------------------------------

    @property
    def sequence_length(self):
        """Tokens the model reads per example."""
        return self.manifest.schema["input_ids"][1]

    def inputs(self, parsed, masker=None):
        """(features, labels) of a parsed batch."""
        raise NotImplementedError

    def default_masker(self):
        """What the reader applies to every batch unless given one (BERT's masks for data
        written unmasked)."""
        return None

    def check_training(self, train_config):
        """Refuses training flags that do not apply to this kind."""
        if train_config.mlm_mask_rate or train_config.mlm_max_predictions:
            raise ConfigError("--mlm_mask_rate and --mlm_max_predictions are for BERT "
                              f"pretraining data; {train_config.data_dir} holds {self.kind} "
                              "examples.")

    def training_masker(self, train_config):
        """What the reader applies to training batches by flags (None: the default)."""
        return None

    def check_model(self, config):
        """Refuses a model that cannot read this data."""
        manifest = self.manifest
        if not self.model_families:
            family = manifest.tokenizer.family
            if family != config.tokenizer_family:
                raise ConfigError(f"The {self.kind} data was tokenized for {family} models; "
                                  f"a {config.family} model cannot read it.")
        elif config.family not in self.model_families:
            presets = " or ".join(f"{family}_*" for family in self.model_families)
            raise ConfigError(f"The {config.family} model cannot train on {self.kind} data; "
                              f"pick a {presets} preset or other data.")
        vocab = manifest.tokenizer.vocab_size
        if config.vocab_size != vocab:
            raise ConfigError(f"The model's vocab_size is {config.vocab_size} but the data's "
                              f"tokenizer has {vocab} tokens; set --vocab_size={vocab}.")
        if self.sequence_length > config.max_sequence_length:
            raise ConfigError(f"The data has sequences of {self.sequence_length} tokens but "
                              f"the model's max_sequence_length is "
                              f"{config.max_sequence_length}.")

    def build_model(self, config):
        raise NotImplementedError

    def counts(self, labels):
        """{loss name: what its sum is divided by} for a micro-batch."""
        raise NotImplementedError

    def sums(self, outputs, labels):
        """({loss name: loss sum}, {loss name: correct predictions}) for a micro-batch."""
        raise NotImplementedError

    def tokens(self, features):
        """Real tokens in a batch (throughput)."""
        return tf.reduce_sum(tf.cast(features["padding_mask"], tf.float32))

    def eval_metrics(self, metrics):
        """Metrics derived from the eval losses (perplexity)."""
        return {}

    def input_error(self, message, data_dir):
        """The user's error for a TF error message raised by a bad input, or None."""
        return None

    # --- evaluation and export --------------------------------------------------------

    def batches(self, data_dir, split, batch_size):
        return readers.make_dataset(data_dir, split, batch_size, shuffle=False, repeat=False)

    def evaluate(self, model, data_dir, split, batch_size, **options):
        """{name: metrics} of the model and of the baselines that give them meaning."""
        raise NotImplementedError

    def plots(self, results, output_dir):
        """{name: path} of the PNGs that show `results` better than a table."""
        return {}

    @property
    def published_labels(self):
        """The class names a published checkpoint names (Hugging Face's id2label), or
        None."""
        return None

    def serving_module(self, model, tokenizer, **options):
        """The tf.Module export writes as a SavedModel."""
        raise NotImplementedError

    def sample_inputs(self, data_dir, count=4):
        """A few inputs of the model's own data: export's check and warmup requests."""
        raise NotImplementedError


class TokenScores:
    """Loss and accuracy sums of token predictions over batches, divided once at the end
    (every target counts the same, whatever batch it was in)."""

    def __init__(self):
        self.loss = self.correct = self.count = 0.0
        self.targets = []

    def add(self, ids, logits, weights):
        weights = tf.cast(weights, tf.float32)
        self.loss += float(tf.reduce_sum(cross_entropy(ids, logits) * weights))
        self.correct += float(tf.reduce_sum(correct(ids, logits) * weights))
        self.count += float(tf.reduce_sum(weights))
        self.targets.extend(ids.numpy()[weights.numpy() > 0].tolist())

    def metrics(self):
        return {"loss": self.loss / self.count, "accuracy": self.correct / self.count}
