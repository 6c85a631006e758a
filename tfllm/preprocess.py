"""`python -m tfllm.preprocess --flagfile configs/data_bert.flags [--runner=... Beam options]`.

Raw text -> clean, deduplicated, tokenized, sharded TFRecords with a manifest.
Flags that tfllm does not define are handed to Beam's PipelineOptions.
"""

import logging

from absl import flags
from apache_beam.options.pipeline_options import PipelineOptions

from tfllm import cli, tasks
from tfllm.data import job
from tfllm.data.filters import filter_config_from_overrides
from tfllm.data.language import LanguageConfig
from tfllm.data.near_dedup import MinHashConfig
from tfllm.data.normalize import NormalizeConfig
from tfllm.data.sources import SourceConfig
from tfllm.errors import ConfigError

FORTUNE_CATEGORIES = "/usr/share/games/fortunes/*"

flags.DEFINE_string("kind", "bert",
                    "Examples to make (a task kind): pretraining (bert, gpt) or fine-tuning "
                    "(classify: a text or pair and its class; regress: a text or pair and its "
                    "number; tag: words and their tags, from --input_format=conll; qa: "
                    "questions with answer spans in their context, from "
                    "--input_format=squad), or a kind an installed package registers.")
flags.DEFINE_list("input", [FORTUNE_CATEGORIES],
                  "Input files or globs (local or any Beam filesystem); for "
                  "--input_format=tfds, a dataset name.")
flags.DEFINE_list("exclude", ["*.dat", "*.u8"], "File-name globs to skip.")
flags.DEFINE_string("input_format", "text", "text, jsonl, csv, tsv, conll, squad or tfds. "
                    "CSV and TSV files start with a header row naming their columns; TSV is "
                    "GLUE's layout (tabs, no quoting); CoNLL is one token per line with its "
                    "tag last, blank lines between sentences; squad is SQuAD v1.1 or v2.0 "
                    "JSON.")
flags.DEFINE_string("text_split", "delimiter",
                    "How text files divide into documents: file, blank_lines, delimiter, line.")
flags.DEFINE_list("split_by_file", [],
                  "GLOB=SPLIT pairs overriding --text_split for the files whose name matches "
                  "GLOB, e.g. jargon.txt.gz=blank_lines,data.verb=wordnet (WordNet glosses).")
flags.DEFINE_string("delimiter", "%", "With --text_split=delimiter: the separator line.")
flags.DEFINE_string("text_field", "text", "Column (CSV, TSV) or field (JSON Lines, TFDS) "
                    "holding the text.")
flags.DEFINE_string("text_pair_field", "", "Column or field holding the second text of a "
                    "sentence pair (segment B for BERT); empty: single texts.")
flags.DEFINE_string("label_field", "", "Column or field holding the label (a class, or a "
                    "number with --kind=regress).")
flags.DEFINE_integer("max_bad_rows", 0, "Rows of CSV, TSV, JSON Lines, CoNLL or SQuAD input "
                     "that may be bad (a missing cell or label, a label that is not a number, "
                     "an answer not found at its offset) and are "
                     "then skipped and counted; past this the job stops, naming the first.")
flags.DEFINE_boolean("label_from_filename", False,
                     "Use the file name (without extensions) as the class label.")
flags.DEFINE_string("tfds_split", "train", "TFDS split to read.")
flags.DEFINE_string("tfds_data_dir", "", "TFDS data directory (datasets prepared locally).")
flags.DEFINE_string("output_dir", "artifacts/data_bert", "Where the TFRecords and manifest go.")
flags.DEFINE_boolean("overwrite", False, "Replace an existing output made from other inputs.")

flags.DEFINE_string("unicode_form", "NFKC", "Unicode normalisation: NFC, NFKC or none.")
flags.DEFINE_string("on_undecodable", "replace",
                    "Documents with bytes that are not UTF-8: replace or drop.")
flags.DEFINE_integer("max_chars", 1_000_000, "Documents longer than this are dropped.")
flags.DEFINE_list("filter_overrides", [],
                  "Quality-filter thresholds as name=value (e.g. min_words=5).")
flags.DEFINE_list("disable_filters", [], "Quality rules to turn off, by name; c4_lines and "
                  "fineweb turn off those families.")
flags.DEFINE_list("languages", [], "Keep documents identified as these languages (ISO 639-1, "
                  "e.g. en); empty: no language identification.")
flags.DEFINE_float("min_language_score", 0.5, "Lowest identifier probability kept (C4 uses "
                   "0.99 on web pages; short texts score lower).")
flags.DEFINE_boolean("scrub_pii", True, "Replace e-mails, IP addresses and phone numbers.")
flags.DEFINE_boolean("dedup_documents", True, "Exact document deduplication.")
flags.DEFINE_boolean("dedup_lines", True, "Remove lines repeated across the corpus.")
flags.DEFINE_integer("min_line_chars", 20, "Shorter lines are never line-deduplicated.")
flags.DEFINE_boolean("near_dedup", True, "MinHash LSH near-duplicate removal.")
flags.DEFINE_integer("minhash_permutations", 128, "MinHash signature length.")
flags.DEFINE_integer("minhash_bands", 0, "LSH bands (must divide the permutations); 0: "
                     "the layout that makes a pair at the threshold a candidate with "
                     "probability 0.95 at the fewest candidates.")
flags.DEFINE_float("minhash_threshold", 0.7, "Jaccard similarity that makes a duplicate.")
flags.DEFINE_integer("minhash_ngram", 5, "Word n-gram size of the shingles.")

flags.DEFINE_string("tokenizer", "", "An existing tokenizer: vocab.txt, tokenizer.model, a GPT-2 "
                    "vocab.json (merges.txt beside it) or a model directory (tfllm.convert's); "
                    "empty: train one.")
flags.DEFINE_string("tokenizer_family", "",
                    "bert (WordPiece) or gpt (SentencePiece BPE); default follows --kind.")
flags.DEFINE_integer("vocab_size", 4096, "Vocabulary size of a trained tokenizer.")
flags.DEFINE_integer("sequence_length", 128, "Tokens per example.")
flags.DEFINE_integer("doc_stride", 128, "QA: tokens between the starts of the windows a "
                     "long context is read in.")
flags.DEFINE_integer("max_query_length", 64, "QA: question tokens kept.")
flags.DEFINE_float("short_seq_prob", 0.1, "BERT: probability of a shorter target length.")
flags.DEFINE_float("masked_lm_prob", 0.15, "BERT: fraction of tokens masked.")
flags.DEFINE_integer("max_predictions_per_seq", 20, "BERT: masked positions per sequence.")
flags.DEFINE_integer("dupe_factor", 1, "BERT: times each document is used, masked anew.")
flags.DEFINE_boolean("dynamic_masking", False,
                     "BERT: write unmasked pairs and mask in the tf.data reader.")
flags.DEFINE_float("eval_fraction", 0.05, "Fraction of documents in the eval split (chosen "
                   "by a hash of each id; not used with --eval_input).")
flags.DEFINE_list("eval_input", [], "Files or globs whose documents make the eval split, "
                  "as a dataset's own dev files (SQuAD's dev-v2.0.json, GLUE's dev.tsv); "
                  "--input then makes all of train.")
flags.DEFINE_integer("num_shards", 4, "TFRecord shards of the train split.")
flags.DEFINE_integer("seed", 12345, "Seed for NSP pairs and masking.")
FLAGS = flags.FLAGS


def config_from_flags():
    """The whole job's configuration, validated before any heavy work."""
    task = tasks.get(FLAGS.kind)
    overrides = {}
    for item in FLAGS.filter_overrides:
        name, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--filter_overrides item {item!r} is not name=value.")
        overrides[name.strip()] = value.strip()
    minhash = MinHashConfig(ngram_size=FLAGS.minhash_ngram,
                            num_permutations=FLAGS.minhash_permutations,
                            num_bands=FLAGS.minhash_bands,
                            threshold=FLAGS.minhash_threshold, seed=FLAGS.seed)
    return job.JobConfig(
        kind=FLAGS.kind, output_dir=FLAGS.output_dir, overwrite=FLAGS.overwrite,
        source=SourceConfig(
            patterns=tuple(FLAGS.input), exclude=tuple(FLAGS.exclude),
            format=FLAGS.input_format, split=FLAGS.text_split,
            split_by_file=_split_by_file(), delimiter=FLAGS.delimiter,
            text_field=FLAGS.text_field, text_pair_field=FLAGS.text_pair_field,
            label_field=FLAGS.label_field,
            label_type=task.label_type,
            label_from_filename=FLAGS.label_from_filename, tfds_split=FLAGS.tfds_split,
            tfds_data_dir=FLAGS.tfds_data_dir),
        normalize=NormalizeConfig(unicode_form=FLAGS.unicode_form,
                                  on_undecodable=FLAGS.on_undecodable,
                                  max_chars=FLAGS.max_chars),
        language=LanguageConfig(languages=tuple(FLAGS.languages),
                                min_score=FLAGS.min_language_score),
        filters=filter_config_from_overrides(overrides, FLAGS.disable_filters),
        scrub_pii=FLAGS.scrub_pii,
        dedup=job.DedupConfig(exact_documents=FLAGS.dedup_documents, lines=FLAGS.dedup_lines,
                              min_line_chars=FLAGS.min_line_chars, near=FLAGS.near_dedup,
                              minhash=minhash),
        examples=task.examples_from_options(FLAGS.flag_values_dict()),
        tokenizer=FLAGS.tokenizer,
        tokenizer_family=FLAGS.tokenizer_family, vocab_size=FLAGS.vocab_size,
        eval_fraction=FLAGS.eval_fraction, eval_inputs=tuple(FLAGS.eval_input),
        num_shards=FLAGS.num_shards,
        max_bad_rows=FLAGS.max_bad_rows)


def _split_by_file():
    pairs = []
    for item in FLAGS.split_by_file:
        glob, sep, split = item.partition("=")
        if not sep:
            raise ConfigError(f"--split_by_file item {item!r} is not GLOB=SPLIT.")
        pairs.append((glob.strip(), split.strip()))
    return tuple(pairs)


def beam_args(argv):
    """Leftover flags, which must all be Beam pipeline options."""
    args = argv[1:]
    unknown = [name for name in PipelineOptions(args).get_all_options(
        retain_unknown_options=True) if name not in PipelineOptions([]).get_all_options()]
    positional = [a for a in args if not a.startswith("--")]
    if unknown or positional:
        bad = [f"--{name}" for name in unknown] + positional
        raise ConfigError(f"Unknown flag(s) {', '.join(bad)}: neither a tfllm.preprocess flag "
                          "nor a Beam pipeline option (see --helpfull).")
    return args


def summary(manifest):
    """The end-of-job table: what was read, dropped, deduplicated and written."""
    stats = manifest.statistics
    dropped = {k: v for k, v in sorted(stats.items()) if k.startswith("dropped_") and v}
    rows = [("documents read", stats.get("documents_read", 0)),
            ("documents kept", stats.get("documents_kept", 0))]
    rows += [(f"  {name.replace('_', ' ')}", value) for name, value in dropped.items()]
    rows += [(f"  {name.replace('_', ' ')}", stats[name]) for name in sorted(stats)
             if not name.startswith("dropped_") and stats[name]
             and ("duplicate" in name or name.startswith(("pii_", "undecodable", "bad_rows")))]
    rows += [("tokens", stats.get("tokens", 0))]
    rows += [(f"{split} examples ({len(info.files)} files)", info.examples)
             for split, info in manifest.splits.items()]
    width = max(len(name) for name, _ in rows)
    lines = [f"  {name.ljust(width)}  {value:>12,}" for name, value in rows]
    lines.append(f"  {'elapsed'.ljust(width)}  {manifest.elapsed_seconds:>11.1f}s")
    lines.append(f"  {'documents per second'.ljust(width)}  "
                 f"{manifest.documents_per_second:>12,.1f}")
    return "\n".join(lines)


def main(argv):
    logging.getLogger("apache_beam").setLevel(logging.WARNING)  # progress lines stay
    args = beam_args(argv)
    config = config_from_flags()
    manifest = job.run(config, args)
    print(f"\n{manifest.kind} data in {config.output_dir} "
          f"(vocabulary {manifest.tokenizer.file}, {manifest.tokenizer.vocab_size} tokens):")
    print(summary(manifest))


if __name__ == "__main__":
    cli.run(main, pass_unknown_flags=True)
