"""Artifacts: a directory plus a metadata record, identified by a digest of its content.

The metadata file is written last, after the digest, inside a directory that is
renamed into place; an artifact whose files no longer match its digest (edited,
truncated, half-deleted) is never reused from the cache.
"""

import datetime
import hashlib
import json
import os

METADATA_FILE = ".artifact.json"


def content_digest(directory):
    """sha256 over every file's relative path and bytes (the metadata file excluded)."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(directory):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            relative = os.path.relpath(path, directory)
            if relative == METADATA_FILE:
                continue
            digest.update(relative.encode() + b"\0")
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            digest.update(b"\0")
    return digest.hexdigest()


class Artifact:
    """A finished output: `uri` (a directory), `type`, `digest` and `properties`."""

    def __init__(self, uri, type_name, digest, properties=None, producer=None,
                 execution_id=None):
        self.uri, self.type, self.digest = uri, type_name, digest
        self.properties = properties or {}
        self.producer, self.execution_id = producer, execution_id

    def path(self, *parts):
        return os.path.join(self.uri, *parts)

    def write_metadata(self, parameters, input_digests):
        record = {"type": self.type, "producer": self.producer,
                  "execution_id": self.execution_id, "digest": self.digest,
                  "properties": self.properties, "parameters": parameters,
                  "input_digests": input_digests,
                  "created": datetime.datetime.now(datetime.timezone.utc).isoformat()}
        with open(os.path.join(self.uri, METADATA_FILE), "w") as f:
            json.dump(record, f, indent=2, sort_keys=True)

    @classmethod
    def load_verified(cls, uri):
        """The artifact at `uri` if its metadata exists and its content still matches."""
        try:
            with open(os.path.join(uri, METADATA_FILE)) as f:
                record = json.load(f)
        except (OSError, ValueError):
            return None
        if content_digest(uri) != record.get("digest"):
            return None
        return cls(uri, record["type"], record["digest"], record["properties"],
                   record["producer"], record["execution_id"])
