"""The cleaned corpus on disk (`clean/part-*.jsonl.gz` beside the examples): one JSON
line per document, and a runner-independent sample of it."""

import glob
import gzip
import hashlib
import heapq
import json
import os

from tfllm.data.documents import Document

CLEAN_DIR = "clean"


def to_json_line(document):
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
