"""The preprocessing job: raw text -> clean corpus -> tokenizer -> TFRecords + manifest.

Two Beam pipelines run on whatever runner the pipeline options name (DirectRunner
by default; Dataflow, Flink or Spark unchanged). The first also counts the clean
corpus's words; between the pipelines the driver trains the tokenizer on those
counts, the one step that needs the whole corpus's statistics at once.
"""

import dataclasses
import glob
import gzip
import hashlib
import heapq
import json
import os
import time

import apache_beam as beam
from absl import logging
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import PipelineOptions

import tfllm
from tfllm.data import output, schema
from tfllm.data.bert_examples import MakeBertExamples
from tfllm.data.classify_examples import MakeClassifyExamples
from tfllm.data.dedup import DeduplicateDocuments, DeduplicateLines
from tfllm.data.documents import COUNTER_NAMESPACE, Document, counter
from tfllm.data.filters import FilterConfig, QualityFilter
from tfllm.data.gpt_examples import MakeGptExamples
from tfllm.data.language import IdentifyLanguage, LanguageConfig
from tfllm.data.near_dedup import DeduplicateNearDuplicates, MinHashConfig
from tfllm.data.normalize import NormalizeConfig, NormalizeText
from tfllm.data.pii import ScrubPII
from tfllm.data.qa_examples import MakeQaExamples
from tfllm.data.tag_examples import MakeTagExamples
from tfllm.data.sources import (
    TABLE_FORMATS,
    ReadDocuments,
    SourceConfig,
    check_columns,
    match_inputs,
    paragraph_key,
)
from tfllm.data.word_counts import WORD_COUNTS_PREFIX, CountWords, read_word_counts
from tfllm.data.write import SPLITS, WriteTFRecords, split_of
from tfllm.errors import ConfigError
from tfllm.text import tokenizers

CLEAN_DIR = "clean"
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
        if self.kind not in schema.KINDS:
            raise ConfigError(f"--kind must be one of {', '.join(schema.KINDS)}; "
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
        if self.kind == "regress" and (not self.source.label_field
                                       or self.source.label_type != "float"):
            raise ConfigError("--kind=regress needs --label_field, the column or field "
                              "holding each example's number.")
        for kind, format_name, what in (("tag", "conll", "tagged words"),
                                         ("qa", "squad", "questions on contexts")):
            if (self.kind == kind) != (self.source.format == format_name):
                raise ConfigError(
                    f"--kind={kind} reads --input_format={format_name} ({what}), and "
                    f"{format_name} files make {kind} data; got --kind={self.kind} with "
                    f"--input_format={self.source.format}.")
        if self.tokenizer_family not in ("", "bert", "gpt"):
            raise ConfigError("--tokenizer_family must be bert (WordPiece) or gpt "
                              f"(SentencePiece); got {self.tokenizer_family!r}.")

    @property
    def family(self):
        return self.tokenizer_family or ("gpt" if self.kind == "gpt" else "bert")


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


def _to_json_line(document):
    record = {"doc_id": document.doc_id, "text": document.text, "label": document.label,
              "source": document.source}
    if document.language:
        record.update(language=document.language, language_score=document.language_score)
    if document.text_pair:
        record["text_pair"] = document.text_pair
    return json.dumps(record, ensure_ascii=False)


def document_from_json(line):
    record = json.loads(line)
    return Document(doc_id=record["doc_id"], text=record["text"], source=record["source"],
                    label=record["label"], language=record.get("language", ""),
                    language_score=record.get("language_score", 0.0),
                    text_pair=record.get("text_pair", ""))


def clean_pipeline(config, pipeline, clean_prefix, files):
    """Stage 1 onto `pipeline`: read, normalise, identify the language, filter, scrub,
    deduplicate, write `clean_prefix-*.jsonl.gz`, the distinct labels to
    `clean_prefix-labels` and, unless a tokenizer is given, the word counts beside."""
    # QA answers are character offsets into their context: the stages that rewrite
    # text (normalisation, PII scrubbing, line deduplication) would move them.
    rewrites = config.kind != "qa"
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
         | "Labels" >> beam.FlatMap(_labels_of, config.kind)
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
         | "ToJson" >> beam.Map(_to_json_line)
         | "WriteClean" >> beam.io.WriteToText(clean_prefix, file_name_suffix=".jsonl.gz",
                                               num_shards=config.num_shards))


def _labels_of(document, kind):
    """The label vocabulary's entries in one document: tags of tagged words, nothing for
    numbers (regression) and answers (QA)."""
    if kind == "tag":
        return document.label.split(" ")
    return [] if kind in ("regress", "qa") else [document.label]


def _count_kept(document):
    counter("documents_kept").inc()
    return document


def clean_sample(clean_dir, limit):
    """Up to `limit` cleaned texts, chosen and ordered by a hash of their ids
    (export's check inputs).

    The runner decides the order of lines in the clean shards; choosing by hash
    makes the choice independent of it.
    """
    chosen = []  # max-heap on the hash: the `limit` smallest hashes survive
    for path in sorted(glob.glob(os.path.join(clean_dir, "*.jsonl.gz"))):
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for line in f:
                record = json.loads(line)
                rank = hashlib.blake2b(record["doc_id"].encode("utf-8"),
                                       digest_size=8).digest()
                item = (_Descending(rank), record["text"])
                if len(chosen) < limit:
                    heapq.heappush(chosen, item)
                elif rank < chosen[0][0].key:
                    heapq.heapreplace(chosen, item)
    return [text for _, text in sorted(chosen, key=lambda item: item[0].key)]


class _Descending:
    """Inverts the order of a key so `heapq` (a min-heap) keeps the smallest keys."""

    __slots__ = ("key",)

    def __init__(self, key):
        self.key = key

    def __lt__(self, other):
        return self.key > other.key


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
    examples_config = config.examples
    documents = (pipeline
                 | "ReadClean" >> beam.io.ReadFromText(os.path.join(clean_dir, "*.jsonl.gz"))
                 | "Parse" >> beam.Map(document_from_json))
    split_key = paragraph_key if config.kind == "qa" else (lambda d: d.doc_id)
    eval_files = frozenset(eval_files)

    def split(document, _):
        if eval_files:  # the user's own dev files
            return SPLITS.index("eval" if document.source in eval_files else "train")
        return SPLITS.index(split_of(split_key(document), config.eval_fraction))

    by_split = documents | "Split" >> beam.Partition(split, len(SPLITS))
    for split, split_documents in zip(SPLITS, by_split):
        if config.kind == "bert":
            maker = MakeBertExamples(examples_config, tokenizer.path, tokenizer.special_ids,
                                     tokenizer.vocab_size, num_docs)
        elif config.kind == "gpt":
            maker = MakeGptExamples(examples_config, tokenizer.path, tokenizer.special_ids,
                                    num_docs)
        elif config.kind == "qa":
            maker = MakeQaExamples(examples_config, tokenizer.path)
        elif config.kind == "tag":
            maker = MakeTagExamples(examples_config, tokenizer.path, tokenizer.special_ids,
                                    labels)
        else:
            maker = MakeClassifyExamples(examples_config, tokenizer.path,
                                         tokenizer.special_ids, labels,
                                         regression=config.kind == "regress")
        shards = config.num_shards if split == "train" else max(1, config.num_shards // 4)
        _ = (split_documents
             | f"Make_{split}" >> maker
             | f"Write_{split}" >> WriteTFRecords(out_dir, split, shards,
                                                  feature_schema(config)))


def feature_schema(config):
    examples = config.examples
    if config.kind == "bert":
        return schema.feature_lengths("bert", examples.sequence_length,
                                      examples.max_predictions_per_seq
                                      if examples.static_masking else 0)
    return schema.feature_lengths(config.kind, examples.sequence_length)


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
        manifest = _run_into(config, beam_args, inputs, digest, temporary, report)
        output.commit(temporary, config.output_dir, manifest)
    except BaseException:
        output.abort(temporary)
        raise
    return manifest


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
    if config.kind in ("classify", "tag") and len(labels) < 2:
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
        splits[split] = {"files": files, "examples": statistics.get(f"examples_{split}", 0)}
    manifest = {
        "kind": config.kind,
        "fingerprint": digest,
        "tfllm_version": tfllm.__version__,
        "schema": schema.to_manifest(feature_schema(config)),
        "tokenizer": {"file": os.path.basename(tokenizer_path), "family": tokenizer.family,
                      "vocab_size": tokenizer.vocab_size, "special_ids": tokenizer.special_ids},
        "labels": labels,
        "splits": splits,
        "clean_corpus": {"dir": CLEAN_DIR, "documents": num_documents},
        "statistics": statistics,
        "config": _as_json(config),
        "beam_args": list(beam_args),
        "inputs": inputs,
        "elapsed_seconds": round(elapsed, 2),
        "documents_per_second": round(statistics.get("documents_read", 0) / elapsed, 1),
    }
    if config.kind == "qa":  # models trained on SQuAD 2.0-style data may answer nothing
        manifest["qa"] = {"version_2_with_negative":
                          statistics.get("qa_impossible_questions", 0) > 0}
    return manifest
