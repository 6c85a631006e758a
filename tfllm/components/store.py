"""Lineage in SQLite, in the shape of ML Metadata: executions, artifacts, and the
events linking them (which artifacts a run read and which it wrote)."""

import datetime
import json
import os
import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
    id INTEGER PRIMARY KEY, pipeline TEXT, component TEXT, cache_key TEXT,
    state TEXT, parameters TEXT, started TEXT, finished TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS artifacts (
    id INTEGER PRIMARY KEY, uri TEXT UNIQUE, type TEXT, digest TEXT, properties TEXT,
    created TEXT);
CREATE TABLE IF NOT EXISTS events (
    execution_id INTEGER, artifact_id INTEGER, kind TEXT, name TEXT);
"""


def _now():
    return datetime.datetime.now(datetime.timezone.utc).isoformat()


class MetadataStore:
    def __init__(self, path):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path)
        self._db.executescript(SCHEMA)

    def begin_execution(self, pipeline, component, cache_key, parameters, inputs):
        with self._db:
            cursor = self._db.execute(
                "INSERT INTO executions (pipeline, component, cache_key, state, parameters, "
                "started) VALUES (?, ?, ?, 'RUNNING', ?, ?)",
                (pipeline, component, cache_key, json.dumps(parameters, sort_keys=True), _now()))
            execution_id = cursor.lastrowid
            for name, artifact in inputs.items():
                self._event(execution_id, artifact, "INPUT", name)
        return execution_id

    def _artifact_id(self, artifact):
        row = self._db.execute("SELECT id FROM artifacts WHERE uri = ?", (artifact.uri,)).fetchone()
        if row:
            return row[0]
        return self._db.execute(
            "INSERT INTO artifacts (uri, type, digest, properties, created) VALUES (?, ?, ?, ?, ?)",
            (artifact.uri, artifact.type, artifact.digest, json.dumps(artifact.properties),
             _now())).lastrowid

    def _event(self, execution_id, artifact, kind, name):
        self._db.execute("INSERT INTO events VALUES (?, ?, ?, ?)",
                         (execution_id, self._artifact_id(artifact), kind, name))

    def complete(self, execution_id, outputs):
        with self._db:
            for name, artifact in outputs.items():
                self._event(execution_id, artifact, "OUTPUT", name)
            self._db.execute("UPDATE executions SET state = 'COMPLETE', finished = ? "
                             "WHERE id = ?", (_now(), execution_id))

    def fail(self, execution_id, error):
        with self._db:
            self._db.execute("UPDATE executions SET state = 'FAILED', finished = ?, error = ? "
                             "WHERE id = ?", (_now(), error, execution_id))

    def cached_outputs(self, component, cache_key):
        """{name: uri} of the latest complete execution with this key, newest first."""
        rows = self._db.execute(
            "SELECT id FROM executions WHERE component = ? AND cache_key = ? AND "
            "state = 'COMPLETE' ORDER BY id DESC", (component, cache_key)).fetchall()
        for (execution_id,) in rows:
            yield execution_id, self.outputs_of(execution_id)

    def outputs_of(self, execution_id):
        return dict(self._db.execute(
            "SELECT e.name, a.uri FROM events e JOIN artifacts a ON a.id = e.artifact_id "
            "WHERE e.execution_id = ? AND e.kind = 'OUTPUT'", (execution_id,)).fetchall())

    def inputs_of(self, execution_id):
        return dict(self._db.execute(
            "SELECT e.name, a.uri FROM events e JOIN artifacts a ON a.id = e.artifact_id "
            "WHERE e.execution_id = ? AND e.kind = 'INPUT'", (execution_id,)).fetchall())

    def artifacts_of_type(self, type_name):
        """(uri, properties) of every artifact of a type, newest first."""
        rows = self._db.execute("SELECT uri, properties FROM artifacts WHERE type = ? "
                                "ORDER BY id DESC", (type_name,)).fetchall()
        return [(uri, json.loads(properties)) for uri, properties in rows]

    def producer_of(self, uri):
        row = self._db.execute(
            "SELECT e.execution_id FROM events e JOIN artifacts a ON a.id = e.artifact_id "
            "WHERE a.uri = ? AND e.kind = 'OUTPUT'", (uri,)).fetchone()
        return row[0] if row else None

    def executions(self):
        return self._db.execute("SELECT id, component, state, error FROM executions "
                                "ORDER BY id").fetchall()
