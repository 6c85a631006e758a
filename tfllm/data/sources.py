"""Stage 1: read raw corpora into `Document`s.

Files are matched and opened through Beam's filesystems (local, GCS, HDFS... and
gzip by extension) and streamed line by line, so a file never has to fit in
memory and many files are read in parallel by the runner.
"""

import csv
import dataclasses
import fnmatch
import hashlib
import io
import json
import math
import os
import re

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems

from tfllm.data.documents import Document, counter
from tfllm.errors import ConfigError

FORMATS = ("text", "jsonl", "csv", "tsv", "conll", "squad", "tfds")
TABLE_FORMATS = ("csv", "tsv")
LABEL_TYPES = ("class", "float")
TEXT_SPLITS = ("file", "blank_lines", "delimiter", "line", "wordnet")
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_EXTENSIONS = re.compile(r"(\.(gz|bz2|zst|deflate|txt|text|jsonl|json|u8))+$")


@dataclasses.dataclass(frozen=True)
class SourceConfig:
    """Where the raw text is and how documents are delimited in it."""

    patterns: tuple = ()
    format: str = "text"
    split: str = "blank_lines"  # text only: how a file divides into documents
    delimiter: str = "%"  # split=delimiter: a line equal to this ends a document
    text_field: str = "text"  # the column or field of the text (jsonl, csv, tsv, tfds)
    text_pair_field: str = ""  # the second text of sentence pairs; empty: single texts
    label_field: str = ""  # the label's column or field, for classification data
    label_type: str = "class"  # class (any value) or float (regression targets)
    label_from_filename: bool = False  # the label is the file name without extensions
    exclude: tuple = ()  # file-name globs to skip, e.g. ("*.dat", "*.u8")
    # (file-name glob, split) pairs overriding `split` for the files they match, so
    # one job reads corpora laid out differently (the Jargon File by blank lines,
    # WordNet's data.* files by synset, fortunes by "%" lines).
    split_by_file: tuple = ()
    tfds_split: str = "train"
    tfds_data_dir: str = ""

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ConfigError(f"--input_format must be one of {', '.join(FORMATS)}; "
                              f"got {self.format!r}.")
        if self.split not in TEXT_SPLITS:
            raise ConfigError(f"--text_split must be one of {', '.join(TEXT_SPLITS)}; "
                              f"got {self.split!r}.")
        for glob, split in self.split_by_file:
            if split not in TEXT_SPLITS or not glob:
                raise ConfigError(f"--split_by_file entry {glob}={split} must be "
                                  f"GLOB=SPLIT with SPLIT one of {', '.join(TEXT_SPLITS)}.")
        if not self.patterns:
            raise ConfigError("No input given: set --input to files, globs or, with "
                              "--input_format=tfds, a dataset name.")
        if self.label_type not in LABEL_TYPES:
            raise ConfigError(f"The label type must be one of {', '.join(LABEL_TYPES)}; "
                              f"got {self.label_type!r}.")
        if self.format in TABLE_FORMATS and not self.text_field:
            raise ConfigError(f"--input_format={self.format} needs --text_field, the column "
                              "holding the text.")
        if self.split == "delimiter" and not self.delimiter.strip():
            raise ConfigError("--delimiter must not be blank with --text_split=delimiter.")


def match_inputs(patterns, exclude=()):
    """Resolves globs to files, in sorted order, with size and mtime for fingerprints.

    Raises ConfigError when a pattern matches nothing, before any job starts.
    """
    files = {}
    for pattern in patterns:
        try:
            metadata = FileSystems.match([pattern])[0].metadata_list
        except Exception as error:  # Beam raises BeamIOError with a nested cause
            raise ConfigError(f"Cannot read input {pattern!r}: {error}.") from None
        matched = [m for m in metadata if not m.path.endswith(os.sep) and not any(
            fnmatch.fnmatch(os.path.basename(m.path), glob) for glob in exclude)]
        if not matched:
            raise ConfigError(f"Input {pattern!r} matches no file.")
        for m in matched:
            files[m.path] = {"path": m.path, "size": m.size_in_bytes,
                             "mtime": m.last_updated_in_seconds}
    return [files[path] for path in sorted(files)]


def label_from_path(path):
    """`/usr/share/games/fortunes/people` -> `people`; `news.jsonl.gz` -> `news`."""
    return _EXTENSIONS.sub("", os.path.basename(path))


def decode(raw):
    """Decodes UTF-8, replacing bad bytes with U+FFFD; returns (text, bad byte count)."""
    text = raw.decode("utf-8", errors="surrogateescape")
    bad = len(_ESCAPED_BYTE.findall(text))
    return (_ESCAPED_BYTE.sub("\ufffd", text) if bad else text), bad


def split_for(config, path):
    """The text split of one file: the first matching `split_by_file` glob, else `split`."""
    name = os.path.basename(path)
    return next((split for glob, split in config.split_by_file
                 if fnmatch.fnmatch(name, glob)), config.split)


def wordnet_gloss(raw):
    """One synset line of a WordNet 3.0 data.* file as "lemma, lemma: gloss", or None
    for the license header (indented lines). Hand-written: nothing in this stack
    parses the WordNet database format (nltk's reader needs its own corpus download)."""
    if not raw[:1].isdigit():
        return None
    head, sep, gloss = raw.partition(b" | ")
    fields = head.split()
    try:
        count = int(fields[3], 16)
    except (IndexError, ValueError):
        return None
    lemmas = [re.sub(rb"\([a-z]+\)$", b"", word).replace(b"_", b" ")
              for word in fields[4:4 + 2 * count:2]]
    if not sep or not lemmas:
        return None
    return b", ".join(lemmas) + b": " + gloss.strip() + b"\n"


def _lines(handle):
    """Byte lines of an open Beam file (its gzip reader is not iterable itself)."""
    return iter(handle.readline, b"")


def _document(path, index, raw_lines, label):
    text, bad = decode(b"".join(raw_lines))
    return Document(doc_id=f"{path}#{index:08d}", text=text, source=path, label=label,
                    undecodable_bytes=bad)


class _ReadTextFile(beam.DoFn):
    """Streams one text file into documents, one line at a time."""

    def __init__(self, config):
        self._config = config
        self._read = counter("documents_read")

    def process(self, readable_file):
        config = self._config
        path = readable_file.metadata.path
        label = label_from_path(path) if config.label_from_filename else ""
        delimiter = config.delimiter.encode("utf-8")
        split = split_for(config, path)
        index, lines = 0, []
        with readable_file.open() as handle:
            for raw in _lines(handle):
                if split == "wordnet":
                    raw = wordnet_gloss(raw) or b""
                    ends, keep = True, True
                elif split == "line":
                    ends, keep = True, True
                elif split == "file":
                    ends, keep = False, True
                else:
                    boundary = b"" if split == "blank_lines" else delimiter
                    ends = raw.strip() == boundary
                    keep = not ends
                if keep:
                    lines.append(raw)
                if ends and any(line.strip() for line in lines):
                    self._read.inc()
                    yield _document(path, index, lines, label)
                    index += 1
                if ends:
                    lines = []
        if any(line.strip() for line in lines):
            self._read.inc()
            yield _document(path, index, lines, label)


BAD_ROWS = "bad_rows"  # the tagged output of the readers: {"file", "line", "reason"}


def _bad_row(path, line, reason):
    counter("bad_rows").inc()
    return beam.pvalue.TaggedOutput(BAD_ROWS, {"file": path, "line": line, "reason": reason})


def labelled_document(config, path, line, fields, file_label=""):
    """A Document from one record's fields ({name: value}), or the reason it is bad."""
    text = fields.get(config.text_field)
    if not isinstance(text, str):
        return None, f"no text in {config.text_field!r}"
    if not text.strip():
        return None, f"empty text in {config.text_field!r}"
    text_pair = ""
    if config.text_pair_field:
        text_pair = fields.get(config.text_pair_field)
        if not isinstance(text_pair, str) or not text_pair.strip():
            return None, f"no second text in {config.text_pair_field!r}"
    label = file_label
    if config.label_field:
        label = fields.get(config.label_field)
        if label is None or isinstance(label, (dict, list)) or str(label).strip() == "":
            return None, f"no label in {config.label_field!r}"
        label = str(label).strip()
        if config.label_type == "float":
            try:
                value = float(label)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                return None, f"label {label!r} is not a number"
            label = repr(value)
    document = Document(doc_id=f"{path}#{line:08d}", text=text, source=path, label=label,
                        text_pair=text_pair)
    return document, None


class _ReadJsonLinesFile(beam.DoFn):
    """Streams a JSON Lines file; bad lines are counted and tagged, never fatal here
    (the job decides with --max_bad_rows)."""

    def __init__(self, config):
        self._config = config
        self._read = counter("documents_read")
        self._invalid = counter("jsonl_invalid_lines")
        self._missing = counter("jsonl_missing_text_field")

    def process(self, readable_file):
        config = self._config
        path = readable_file.metadata.path
        file_label = label_from_path(path) if config.label_from_filename else ""
        with readable_file.open() as handle:
            for index, raw in enumerate(_lines(handle)):
                if not raw.strip():
                    continue
                line, bad = decode(raw)
                try:
                    record = json.loads(line)
                except (ValueError, RecursionError):
                    self._invalid.inc()
                    yield _bad_row(path, index + 1, "not a JSON value")
                    continue
                document, reason = labelled_document(
                    config, path, index, record if isinstance(record, dict) else {},
                    file_label)
                if document is None:
                    self._missing.inc()
                    yield _bad_row(path, index + 1, reason)
                    continue
                self._read.inc()
                yield document._replace(undecodable_bytes=bad)


def _dialect(format_name):
    """CSV: RFC 4180 quoting (fields with commas, quotes or newlines in double quotes).
    TSV: GLUE's layout, tabs and no quoting (its sentences keep their quote marks)."""
    if format_name == "tsv":
        return {"delimiter": "\t", "quoting": csv.QUOTE_NONE}
    return {"delimiter": ",", "quotechar": '"', "doublequote": True}


def open_table(handle, format_name):
    """A csv.reader over a binary file handle: UTF-8 with or without a BOM, bytes that
    are not UTF-8 replaced, quoted newlines kept inside their field."""
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", errors="replace", newline="")
    csv.field_size_limit(1 << 30)
    return csv.reader(text, strict=True, **_dialect(format_name))


def table_header(path, format_name):
    """The column names of a CSV/TSV file (its first row); ConfigError if it has none."""
    with FileSystems.open(path) as handle:
        try:
            header = next(open_table(handle, format_name), None)
        except csv.Error as error:
            raise ConfigError(f"{path}: the header row is not valid {format_name.upper()} "
                              f"({error}).") from None
    if not header:
        raise ConfigError(f"{path} is empty: a {format_name.upper()} input needs a header row "
                          "naming its columns.")
    return [name.strip() for name in header]


def check_columns(config, paths):
    """Every named column exists in every CSV/TSV file, checked before any job starts."""
    wanted = [f for f in (config.text_field, config.text_pair_field, config.label_field) if f]
    for path in paths:
        header = table_header(path, config.format)
        missing = [name for name in wanted if name not in header]
        if missing:
            raise ConfigError(
                f"{path} has no column {', '.join(repr(m) for m in missing)}; its header has "
                f"{', '.join(repr(h) for h in header)}. Set --text_field, --text_pair_field "
                "and --label_field to its column names.")


class _ReadTableFile(beam.DoFn):
    """Streams a CSV or TSV file with a header row; a row with the wrong number of cells,
    an empty text or an unusable label is a bad row, counted and tagged."""

    def __init__(self, config):
        self._config = config
        self._read = counter("documents_read")

    def process(self, readable_file):
        config = self._config
        path = readable_file.metadata.path
        file_label = label_from_path(path) if config.label_from_filename else ""
        with readable_file.open() as handle:
            rows = open_table(handle, config.format)
            header, start = None, 1
            while True:
                try:
                    row = next(rows)
                except StopIteration:
                    break
                except csv.Error as error:
                    yield _bad_row(path, start, f"not valid {config.format.upper()}: {error}")
                    start = rows.line_num + 1
                    continue
                line, start = start, rows.line_num + 1
                if header is None:
                    header = [name.strip() for name in row]
                    continue
                if not any(cell.strip() for cell in row):
                    continue  # blank lines between rows
                if len(row) != len(header):
                    yield _bad_row(path, line, f"{len(row)} cell(s) where the header has "
                                               f"{len(header)}")
                    continue
                document, reason = labelled_document(config, path, line,
                                                     dict(zip(header, row)), file_label)
                if document is None:
                    yield _bad_row(path, line, reason)
                    continue
                self._read.inc()
                yield document


class _ReadConllFile(beam.DoFn):
    """Streams a CoNLL-2003-style file: one token per line with its tag in the last
    column, blank lines between sentences, -DOCSTART- lines skipped. A sentence with a
    line whose column count differs from the file's first token line is a bad row.
    A sentence becomes a Document of its words joined by spaces, its tags (space
    separated) as the label."""

    def __init__(self, config):
        self._config = config
        self._read = counter("documents_read")

    def process(self, readable_file):
        path = readable_file.metadata.path
        columns, words, tags, first, problem = None, [], [], 0, None
        with readable_file.open() as handle:
            for number, raw in enumerate(_lines(handle), start=1):
                fields = decode(raw)[0].split()
                if fields and fields[0] == "-DOCSTART-":
                    continue
                if fields:
                    columns = columns or len(fields)
                    if len(fields) != columns or len(fields) < 2:
                        problem = problem or (number, f"{len(fields)} column(s) where the "
                                              f"file's token lines have {columns}")
                    else:
                        first = first or number
                        words.append(fields[0])
                        tags.append(fields[-1])
                    continue
                yield from self._sentence(path, first, words, tags, problem)
                words, tags, first, problem = [], [], 0, None
        yield from self._sentence(path, first, words, tags, problem)

    def _sentence(self, path, first, words, tags, problem):
        if problem:
            yield _bad_row(path, *problem)
        elif words:
            self._read.inc()
            yield Document(doc_id=f"{path}#{first:08d}", text=" ".join(words), source=path,
                           label=" ".join(tags))


def squad_label(answers, impossible):
    """A question's label in the clean corpus: its answers and SQuAD 2.0's flag, as JSON."""
    return json.dumps({"answers": answers, "is_impossible": impossible}, sort_keys=True,
                      ensure_ascii=False)


def paragraph_key(document):
    """What a question's split is chosen by: its paragraph (`{file}#{paragraph:08d}`, the
    start of a SQuAD doc_id), so a context is never in both splits."""
    return document.doc_id[:len(document.source) + 9]


class _ReadSquadFile(beam.DoFn):
    """Reads a SQuAD v1.1 or v2.0 JSON file: one Document per question (text: the
    question, text_pair: its paragraph's context, label: `squad_label`). A question
    without an id, text or answer (unless v2.0's `is_impossible`), or with an answer
    whose `answer_start` does not point at its text in the context, is a bad row,
    located by the line of its id in the file. The whole file is parsed at once, as
    every SQuAD reader does: its paragraphs are not line-delimited."""

    def __init__(self, config):
        self._config = config
        self._read = counter("documents_read")
        self._impossible = counter("qa_impossible_questions")

    def process(self, readable_file):
        path = readable_file.metadata.path
        with readable_file.open() as handle:
            raw = handle.read()
        try:
            articles = json.loads(decode(raw)[0])["data"]
            paragraphs = [p for article in articles for p in article["paragraphs"]]
        except ValueError as error:
            yield _bad_row(path, getattr(error, "lineno", 1), f"not valid JSON: {error}")
            return
        except (KeyError, TypeError):
            yield _bad_row(path, 1, 'not SQuAD JSON: expected {"data": [{"paragraphs": '
                                    '[{"context": ..., "qas": [...]}]}]}')
            return
        at, line = 0, 1  # where the last id was found, and its line
        for number, paragraph in enumerate(paragraphs):
            context = paragraph.get("context") if isinstance(paragraph, dict) else None
            for qa in (paragraph.get("qas") or []) if isinstance(paragraph, dict) else []:
                qid = str(qa.get("id", "")) if isinstance(qa, dict) else ""
                found = raw.find(json.dumps(qid).encode("utf-8"), at) if qid else -1
                if found >= 0:
                    line += raw.count(b"\n", at, found)
                    at = found
                document, reason = self._question(path, number, context, qa, qid)
                if document is None:
                    yield _bad_row(path, line, reason)
                    continue
                self._read.inc()
                yield document

    def _question(self, path, paragraph, context, qa, qid):
        if not isinstance(context, str) or not context.strip():
            return None, "a paragraph without a context"
        if not qid or not isinstance(qa.get("question"), str) or not qa["question"].strip():
            return None, f"question {qid!r} has no id or no text"
        impossible = bool(qa.get("is_impossible", False))
        answers = [] if impossible else qa.get("answers")
        if not impossible and not answers:
            return None, f"question {qid!r} has no answer (and is not marked is_impossible)"
        checked = []
        for answer in answers if isinstance(answers, list) else [None]:
            text, start = ((answer.get("text"), answer.get("answer_start"))
                           if isinstance(answer, dict) else (None, None))
            if not isinstance(text, str) or not isinstance(start, int) or not text:
                return None, f"question {qid!r} has an answer without text or answer_start"
            if context[start:start + len(text)] != text:
                return None, (f"question {qid!r}: answer {text!r} does not match the context "
                              f"at answer_start {start} "
                              f"({context[start:start + len(text)]!r})")
            checked.append({"text": text, "answer_start": start})
        if impossible:
            self._impossible.inc()
        return Document(doc_id=f"{path}#{paragraph:08d}#{qid}", text=qa["question"], source=path,
                        label=squad_label(checked, impossible), text_pair=context), None


class ReadDocuments(beam.PTransform):
    """Reads text, JSON Lines (gzip or not) or a locally prepared TFDS dataset.

    `files`, when given, is the already matched list (see `match_inputs`), so the
    job reads exactly the files its manifest fingerprints.
    """

    def __init__(self, config, files=None, bad_rows_prefix=None):
        super().__init__()
        self._config = config
        self._files = files
        self._bad_rows_prefix = bad_rows_prefix

    def expand(self, pipeline):
        config = self._config
        if config.format == "tfds":
            return pipeline | _read_tfds(config)
        reader = {"text": _ReadTextFile, "jsonl": _ReadJsonLinesFile,
                  "conll": _ReadConllFile, "squad": _ReadSquadFile}.get(config.format, _ReadTableFile)(config)
        read = (pipeline
                | "Patterns" >> beam.Create(list(self._files or config.patterns))
                | "Match" >> fileio.MatchAll()
                | "SkipDirectories" >> beam.Filter(lambda m: not m.path.endswith(os.sep))
                | "Open" >> fileio.ReadMatches()
                | "SpreadFiles" >> beam.Reshuffle()
                | "Read" >> beam.ParDo(reader).with_outputs(BAD_ROWS, main="documents"))
        if self._bad_rows_prefix:
            _ = (read[BAD_ROWS]
                 | "BadRowsToJson" >> beam.Map(json.dumps, sort_keys=True)
                 | "WriteBadRows" >> beam.io.WriteToText(self._bad_rows_prefix,
                                                         file_name_suffix=".jsonl",
                                                         num_shards=1))
        return read["documents"]


def _read_tfds(config):
    """TFDS datasets by name, only when already prepared locally (nothing is downloaded)."""
    import tensorflow_datasets as tfds

    name = config.patterns[0]
    data_dir = config.tfds_data_dir or None
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # tfds raises several unrelated types here
        raise ConfigError(f"TFDS dataset {name!r} is unknown: {error}.") from None
    if not builder.is_prepared():
        raise ConfigError(f"TFDS dataset {name!r} is not prepared in {builder.data_dir}; "
                          "prepare it first (tfds build) or set --tfds_data_dir. Nothing is "
                          "downloaded at run time.")
    features = builder.info.features
    for field in (config.text_field, config.text_pair_field, config.label_field):
        if field and field not in features:
            raise ConfigError(f"TFDS dataset {name!r} has no feature {field!r}; "
                              f"it has {', '.join(features)}.")
    label_names = None
    if config.label_field:
        label_names = getattr(features[config.label_field], "names", None)

    def as_text(value):
        return decode(value)[0] if isinstance(value, bytes) else str(value)

    def to_documents(example):
        text, bad = decode(example[config.text_field])
        fields = {config.text_field: text}
        if config.text_pair_field:
            fields[config.text_pair_field] = as_text(example[config.text_pair_field])
        if config.label_field:
            value = example[config.label_field]
            fields[config.label_field] = label_names[value] if label_names else as_text(value)
        digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()
        source = f"tfds:{name}/{config.tfds_split}"
        document, _ = labelled_document(config, source, 0, fields)
        if document is None:
            counter("bad_rows").inc()
            return
        counter("documents_read").inc()
        yield document._replace(doc_id=f"{source}#{digest}", source=f"tfds:{name}",
                                undecodable_bytes=bad)

    return ("ReadFromTFDS" >> tfds.beam.ReadFromTFDS(builder, split=config.tfds_split)
            | "AsNumpy" >> beam.Map(tfds.as_numpy)
            | "ToDocuments" >> beam.FlatMap(to_documents))
