"""The preprocessing job: raw text -> clean corpus -> tokenizer -> TFRecords + manifest.

Two Beam pipelines run on whatever runner the pipeline options name (DirectRunner
by default; Dataflow, Flink or Spark unchanged). The first also counts the clean
corpus's words; between the pipelines the driver trains the tokenizer on those
counts, the one step that needs the whole corpus's statistics at once.
"""

import dataclasses
import glob
import json
import os
import time

import apache_beam as beam
from absl import logging
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

import tfllm
from tfllm import tasks
from tfllm.data import output
from tfllm.data.clean_corpus import CLEAN_DIR, document_from_json, to_json_line
from tfllm.data.dedup import DeduplicateDocuments, DeduplicateLines
from tfllm.data.documents import COUNTER_NAMESPACE, counter
from tfllm.data.filters import FilterConfig, QualityFilter
from tfllm.data.language import IdentifyLanguage, LanguageConfig
from tfllm.data.near_dedup import DeduplicateNearDuplicates, MinHashConfig
from tfllm.data.normalize import NormalizeConfig, NormalizeText
from tfllm.data.pii import ScrubPII
from tfllm.data.sources import (
    TABLE_FORMATS,
    ReadDocuments,
    SourceConfig,
    check_columns,
    match_inputs,
)
from tfllm.data.word_counts import WORD_COUNTS_PREFIX, CountWords, read_word_counts
from tfllm.data.write import SPLITS, WriteTFRecords, split_of
from tfllm.errors import ConfigError
from tfllm.text import tokenizers

BAD_ROWS_PREFIX = "bad_rows"  # clean/bad_rows-*.jsonl: {"file", "line", "reason"} per row


@dataclasses.dataclass(frozen=True)
class DedupConfig:
    exact_documents: bool = True
    lines: bool = True
    min_line_chars: int = 20
    near: bool = True
    minhash: MinHashConfig = MinHashConfig()


@dataclasses.dataclass(frozen=True)
class JobConfig:
    kind: str
    output_dir: str
    source: SourceConfig
    normalize: NormalizeConfig = NormalizeConfig()
    language: LanguageConfig = LanguageConfig()
    filters: FilterConfig = FilterConfig()
    scrub_pii: bool = True
    dedup: DedupConfig = DedupConfig()
    examples: object = None
    tokenizer: str = ""  # an existing tokenizer file or model directory; empty: train one
    tokenizer_family: str = ""  # bert (WordPiece) or gpt (SentencePiece); default by kind
    vocab_size: int = 4096
    eval_fraction: float = 0.05
    # Files (globs) whose documents make the eval split, as a dataset's own dev files
    # (SQuAD's dev-v2.0.json, GLUE's dev.tsv); --input then makes all of train.
    eval_inputs: tuple = ()
    num_shards: int = 4
    overwrite: bool = False
    max_bad_rows: int = 0  # rows of labelled inputs that may be skipped before the job stops

    def __post_init__(self):
        if self.kind not in tasks.kinds():
            raise ConfigError(f"--kind must be one of {', '.join(tasks.kinds())}; "
                              f"got {self.kind!r}.")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ConfigError(f"--eval_fraction must be in [0, 1); got {self.eval_fraction}.")
        if self.num_shards < 1:
            raise ConfigError(f"--num_shards must be at least 1; got {self.num_shards}.")
        if self.vocab_size < 100:
            raise ConfigError(f"--vocab_size must be at least 100; got {self.vocab_size}.")
        if self.eval_inputs and self.source.format == "tfds":
            raise ConfigError("--eval_input names files; for TFDS data pick the split with "
                              "another run and --tfds_split.")
        if self.max_bad_rows < 0:
            raise ConfigError(f"--max_bad_rows must be at least 0; got {self.max_bad_rows}.")
        task = tasks.get(self.kind)
        task().check_job(self)
        # CoNLL and SQuAD files make one kind each, and that kind reads nothing else.
        reader = task if task.input_format else {
            t.input_format[0]: t for t in tasks.all_tasks() if t.input_format}.get(
            self.source.format)
        if reader is not None and (reader is not task
                                   or reader.input_format[0] != self.source.format):
            format_name, what = reader.input_format
            raise ConfigError(
                f"--kind={reader.kind} reads --input_format={format_name} ({what}), and "
                f"{format_name} files make {reader.kind} data; got --kind={self.kind} "
                f"with --input_format={self.source.format}.")
        if self.tokenizer_family not in ("", "bert", "gpt"):
            raise ConfigError("--tokenizer_family must be bert (WordPiece) or gpt "
                              f"(SentencePiece); got {self.tokenizer_family!r}.")

    @property
    def task(self):
        return tasks.get(self.kind)()

    @property
    def family(self):
        return self.tokenizer_family or self.task.tokenizer_family


def _as_json(value):
    return json.loads(json.dumps(dataclasses.asdict(value), default=str))


def pipeline_counters(result):
    """Committed counter values of a finished pipeline, summed over steps."""
    totals = {}
    query = result.metrics().query(MetricsFilter().with_namespace(COUNTER_NAMESPACE))
    for metric in query["counters"]:
        value = metric.committed if metric.committed is not None else metric.attempted
        totals[metric.key.metric.name] = totals.get(metric.key.metric.name, 0) + value
    return totals


class _Progress(beam.DoFn):
    """Logs a line at most every `interval` seconds per worker while documents flow."""

    def __init__(self, label, interval=10.0):
        self._label = label
        self._interval = interval

    def start_bundle(self):
        self._seen, self._start = 0, time.monotonic()
        self._last = self._start

    def process(self, element):
        self._seen += 1
        now = time.monotonic()
        if now - self._last >= self._interval:
            self._last = now
            rate = self._seen / (now - self._start)
            logging.info("%s: %d documents in this bundle (%.0f/s)", self._label,
                         self._seen, rate)
        yield element


def clean_pipeline(config, pipeline, clean_prefix, files):
    """Stage 1 onto `pipeline`: read, normalise, identify the language, filter, scrub,
    deduplicate, write `clean_prefix-*.jsonl.gz`, the distinct labels to
    `clean_prefix-labels` and, unless a tokenizer is given, the word counts beside."""
    rewrites = config.task.rewrites_text
    documents = (pipeline
                 | "Read" >> ReadDocuments(config.source, files,
                                           os.path.join(os.path.dirname(clean_prefix),
                                                        BAD_ROWS_PREFIX))
                 | "Progress" >> beam.ParDo(_Progress("reading")))
    if rewrites:
        documents = documents | "Normalize" >> NormalizeText(config.normalize)
    if config.language.languages:
        documents = documents | "IdentifyLanguage" >> beam.ParDo(
            IdentifyLanguage(config.language))
    documents = documents | "QualityFilter" >> QualityFilter(config.filters)
    if config.scrub_pii and rewrites:
        documents = documents | "ScrubPII" >> ScrubPII()
    if config.dedup.exact_documents:
        documents = documents | "DedupDocuments" >> DeduplicateDocuments()
    if config.dedup.lines and rewrites:
        documents = documents | "DedupLines" >> DeduplicateLines(config.dedup.min_line_chars)
    if config.dedup.near:
        documents = documents | "NearDedup" >> DeduplicateNearDuplicates(config.dedup.minhash)
    _ = (documents
         | "Labels" >> beam.FlatMap(config.task.labels_of)
         | "DistinctLabels" >> beam.Distinct()
         | "WriteLabels" >> beam.io.WriteToText(f"{clean_prefix}-labels", num_shards=1,
                                                shard_name_template=""))
    if not config.tokenizer:
        counts = os.path.join(os.path.dirname(clean_prefix), WORD_COUNTS_PREFIX)
        _ = (documents
             | "CountWords" >> CountWords(config.family)
             | "WriteWordCounts" >> beam.io.WriteToText(counts, file_name_suffix=".tsv",
                                                        num_shards=config.num_shards))
    _ = (documents
         | "CountKept" >> beam.Map(_count_kept)
         | "ToJson" >> beam.Map(to_json_line)
         | "WriteClean" >> beam.io.WriteToText(clean_prefix, file_name_suffix=".jsonl.gz",
                                               num_shards=config.num_shards))


def _count_kept(document):
    counter("documents_kept").inc()
    return document


def _check_bad_rows(clean_dir, count, limit):
    """Stops the job (nothing is published) when more rows were bad than allowed."""
    if count <= limit:
        return
    rows = []
    for path in glob.glob(os.path.join(clean_dir, f"{BAD_ROWS_PREFIX}-*.jsonl")):
        with open(path) as f:
            rows.extend(json.loads(line) for line in f)
    where = ""
    if rows:  # TFDS examples are counted without a file and line
        first = min(rows, key=lambda row: (row["file"], row["line"]))
        where = f"; the first is {first['file']} line {first['line']}: {first['reason']}"
    raise ConfigError(
        f"{count} bad row(s) in the input, more than --max_bad_rows={limit}{where}. Fix the "
        "input, or raise --max_bad_rows to skip (and count) such rows.")


def _examples_pipeline(config, pipeline, clean_dir, out_dir, tokenizer, labels, num_docs,
                       eval_files=()):
    task = config.task
    documents = (pipeline
                 | "ReadClean" >> beam.io.ReadFromText(os.path.join(clean_dir, "*.jsonl.gz"))
                 | "Parse" >> beam.Map(document_from_json))
    split_key = task.split_key
    eval_files = frozenset(eval_files)

    def split(document, _):
        if eval_files:  # the user's own dev files
            return SPLITS.index("eval" if document.source in eval_files else "train")
        return SPLITS.index(split_of(split_key(document), config.eval_fraction))

    by_split = documents | "Split" >> beam.Partition(split, len(SPLITS))
    for split, split_documents in zip(SPLITS, by_split):
        maker = task.example_maker(config.examples, tokenizer, labels, num_docs)
        shards = config.num_shards if split == "train" else max(1, config.num_shards // 4)
        _ = (split_documents
             | f"Make_{split}" >> maker
             | f"Write_{split}" >> WriteTFRecords(out_dir, split, shards,
                                                  task.feature_schema(config.examples)))


def _job_fingerprint(config, inputs):
    return output.fingerprint({"config": _as_json(config), "inputs": inputs,
                               "version": tfllm.__version__})


def _eval_inputs(config, train_paths):
    """The matched --eval_input files, marked `"eval": True`; none may also be --input."""
    found = match_inputs(config.eval_inputs, config.source.exclude)
    both = sorted(i["path"] for i in found if i["path"] in train_paths)
    if both:
        raise ConfigError(f"{', '.join(both)} matched by both --input and --eval_input: a "
                          "file feeds one split.")
    return [{**i, "eval": True} for i in found]


def run(config, beam_args=(), report=print):
    """Runs the whole job; returns the manifest (the existing one if up to date)."""
    if config.source.format == "tfds":
        inputs = [{"tfds": config.source.patterns[0]}]
    else:
        inputs = match_inputs(config.source.patterns, config.source.exclude)
        if config.eval_inputs:
            inputs += _eval_inputs(config, {i["path"] for i in inputs})
    if config.source.format in TABLE_FORMATS:
        check_columns(config.source, [i["path"] for i in inputs])
    if config.tokenizer:
        tokenizers.load_tokenizer(config.tokenizer)  # fail early on a bad file
    digest = _job_fingerprint(config, inputs)
    temporary = output.begin(config.output_dir, digest, config.overwrite)
    if temporary is None:
        report(f"{config.output_dir} is up to date (same inputs and flags); nothing to do.")
        return output.read_manifest(config.output_dir)
    try:
        output.commit(temporary, config.output_dir,
                      _run_into(config, beam_args, inputs, digest, temporary, report))
    except BaseException:
        output.abort(temporary)
        raise
    return output.read_manifest(config.output_dir)


def _run_into(config, beam_args, inputs, digest, temporary, report):
    options = PipelineOptions(list(beam_args))
    start = time.monotonic()
    clean_dir = os.path.join(temporary, CLEAN_DIR)
    os.makedirs(clean_dir)
    report(f"[1/3] cleaning {len(inputs)} input(s) with Beam "
           f"({options.get_all_options()['runner'] or 'DirectRunner'})...")
    with beam.Pipeline(options=options) as pipeline:
        clean_pipeline(config, pipeline, os.path.join(clean_dir, "part"),
                        [i["path"] for i in inputs if "path" in i])
    statistics = pipeline_counters(pipeline.result)
    num_documents = statistics.get("documents_kept", 0)
    with open(os.path.join(clean_dir, "part-labels")) as f:
        labels = sorted(line.rstrip("\n") for line in f if line.strip())
    os.remove(os.path.join(clean_dir, "part-labels"))
    _check_bad_rows(clean_dir, statistics.get("bad_rows", 0), config.max_bad_rows)
    if not num_documents:
        raise ConfigError("No document survived cleaning: the input is empty or every "
                          f"document was filtered out (statistics: {statistics}). Check the "
                          "input format flags or relax the filters.")
    if len(labels) < config.task.min_labels:
        raise ConfigError("Classification needs at least two labels; the cleaned corpus has "
                          f"{labels or 'none'}. Set --label_field or --label_from_filename.")

    if config.tokenizer:
        tokenizer_path = tokenizers.resolve(config.tokenizer)
        report(f"[2/3] using the given tokenizer {tokenizer_path}")
    else:
        word_counts = read_word_counts(clean_dir)
        report(f"[2/3] training a {config.family} tokenizer ({config.vocab_size} tokens) on "
               f"the counts of {len(word_counts):,} distinct words in {num_documents} "
               "documents...")
        tokenizer_path = tokenizers.train_from_counts(
            config.family, word_counts, config.vocab_size, temporary)
    tokenizer = tokenizers.load_tokenizer(tokenizer_path)
    if config.tokenizer:  # copied in (with its casing or merges), so the artifact is
        tokenizer_path = tokenizers.copy_tokenizer(tokenizer_path, temporary)  # self-contained
    if labels:
        with open(os.path.join(temporary, "labels.txt"), "w") as f:
            f.write("\n".join(labels) + "\n")

    report(f"[3/3] making {config.kind} examples from {num_documents} documents...")
    with beam.Pipeline(options=options) as pipeline:
        _examples_pipeline(config, pipeline, clean_dir, temporary, tokenizer, labels,
                           num_documents, [i["path"] for i in inputs if i.get("eval")])
    statistics.update(pipeline_counters(pipeline.result))
    elapsed = time.monotonic() - start
    splits = {}
    for split in SPLITS:
        files = sorted(f for f in os.listdir(temporary)
                       if f.startswith(f"{split}-") and f.endswith(".tfrecord.gz"))
        splits[split] = output.Split(files, statistics.get(f"examples_{split}", 0))
    task = config.task
    return output.Manifest(
        kind=config.kind, fingerprint=digest, tfllm_version=tfllm.__version__,
        schema=task.feature_schema(config.examples),
        tokenizer=output.TokenizerInfo(
            file=os.path.basename(tokenizer_path), family=tokenizer.family,
            vocab_size=tokenizer.vocab_size, special_ids=tokenizer.special_ids),
        labels=labels, splits=splits, task=task.facts(statistics),
        clean_corpus={"dir": CLEAN_DIR, "documents": num_documents},
        statistics=statistics, config=_as_json(config), beam_args=list(beam_args),
        inputs=inputs, elapsed_seconds=round(elapsed, 2),
        documents_per_second=round(statistics.get("documents_read", 0) / elapsed, 1))
