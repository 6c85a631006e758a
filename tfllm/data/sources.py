"""Stage 1: read raw corpora into `Document`s.

Files are matched and opened through Beam's filesystems (local, GCS, HDFS... and
gzip by extension) and streamed line by line, so a file never has to fit in
memory and many files are read in parallel by the runner.
"""

import dataclasses
import fnmatch
import hashlib
import json
import os
import re

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems

from tfllm.data.documents import Document, counter
from tfllm.errors import ConfigError

FORMATS = ("text", "jsonl", "tfds")
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
    text_field: str = "text"  # jsonl and tfds
    label_field: str = ""  # jsonl and tfds: the class label, for classification data
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


class _ReadJsonLinesFile(beam.DoFn):
    """Streams a JSON Lines file; bad lines are counted, never fatal."""

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
                    continue
                text = record.get(config.text_field) if isinstance(record, dict) else None
                if not isinstance(text, str):
                    self._missing.inc()
                    continue
                label = file_label
                if config.label_field:
                    label = record.get(config.label_field)
                    if label is None or isinstance(label, (dict, list)):
                        self._missing.inc()
                        continue
                    label = str(label)
                self._read.inc()
                yield Document(doc_id=f"{path}#{index:08d}", text=text, source=path,
                               label=label, undecodable_bytes=bad)


class ReadDocuments(beam.PTransform):
    """Reads text, JSON Lines (gzip or not) or a locally prepared TFDS dataset.

    `files`, when given, is the already matched list (see `match_inputs`), so the
    job reads exactly the files its manifest fingerprints.
    """

    def __init__(self, config, files=None):
        super().__init__()
        self._config = config
        self._files = files

    def expand(self, pipeline):
        config = self._config
        if config.format == "tfds":
            return pipeline | _read_tfds(config)
        reader = _ReadTextFile(config) if config.format == "text" else _ReadJsonLinesFile(config)
        return (pipeline
                | "Patterns" >> beam.Create(list(self._files or config.patterns))
                | "Match" >> fileio.MatchAll()
                | "SkipDirectories" >> beam.Filter(lambda m: not m.path.endswith(os.sep))
                | "Open" >> fileio.ReadMatches()
                | "SpreadFiles" >> beam.Reshuffle()
                | "Read" >> beam.ParDo(reader))


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
    if config.text_field not in features:
        raise ConfigError(f"TFDS dataset {name!r} has no feature {config.text_field!r}; "
                          f"it has {', '.join(features)}.")
    label_names = None
    if config.label_field:
        label_feature = features[config.label_field]
        label_names = getattr(label_feature, "names", None)

    def to_document(example):
        text, bad = decode(example[config.text_field])
        label = ""
        if config.label_field:
            value = example[config.label_field]
            label = label_names[value] if label_names else (
                value.decode("utf-8") if isinstance(value, bytes) else str(value))
        counter("documents_read").inc()
        digest = hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()
        return Document(doc_id=f"tfds:{name}/{config.tfds_split}#{digest}", text=text,
                        source=f"tfds:{name}", label=label, undecodable_bytes=bad)

    return ("ReadFromTFDS" >> tfds.beam.ReadFromTFDS(builder, split=config.tfds_split)
            | "AsNumpy" >> beam.Map(tfds.as_numpy)
            | "ToDocuments" >> beam.Map(to_document))
