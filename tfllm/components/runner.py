"""A local runner: dependency order, caching by inputs and parameters, lineage in
SQLite, resume after a failure (completed upstream components are cache hits)."""

import hashlib
import json
import os
import shutil
import time

from tfllm.components.artifacts import Artifact, content_digest
from tfllm.components.base import ComponentError
from tfllm.components.store import MetadataStore
from tfllm.errors import ConfigError, TfllmError


class PipelineFailed(TfllmError):
    """A component failed; upstream artifacts stay, and a re-run resumes there."""


class Pipeline:
    def __init__(self, name, root, components):
        self.name, self.root = name, os.path.abspath(root)
        self.components = _in_dependency_order(components)
        ids = [c.id for c in self.components]
        if len(set(ids)) != len(ids):
            raise ConfigError(f"Pipeline {name} has components with the same id: {ids}.")


def _in_dependency_order(components):
    ordered, seen = [], set()

    def visit(component, path=()):
        if component.id in path:
            raise ConfigError(f"Pipeline has a cycle through {component.id}.")
        if component.id in seen:
            return
        for channel in component.inputs.values():
            visit(channel.producer, (*path, component.id))
        seen.add(component.id)
        ordered.append(component)

    for component in components:
        visit(component)
    return ordered


class Context:
    """What a running component may use: the store, the pipeline root, a logger."""

    def __init__(self, pipeline, store, log):
        self.pipeline, self.store, self.log = pipeline, store, log


def _cache_key(component, input_artifacts):
    record = {"component": type(component).__name__, "id": component.id,
              "parameters": component.parameters,
              "inputs": {name: a.digest for name, a in sorted(input_artifacts.items())}}
    return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


RUN_RECORD = "last_run.json"


def read_run_record(root):
    """The record of the last run of the pipeline rooted at `root`."""
    with open(os.path.join(root, RUN_RECORD)) as f:
        return json.load(f)


def _write_run_record(pipeline, produced, summary):
    """`PIPELINE_ROOT/last_run.json`: each component's state, seconds, input artifacts'
    URIs and output artifacts, so a caller finds what was trained, evaluated and pushed
    by following the lineage rather than component names."""
    states = {component_id: (state, seconds) for component_id, state, seconds in summary}
    record = {"pipeline": pipeline.name, "root": pipeline.root, "components": [
        {"id": component.id, "state": states[component.id][0],
         "seconds": round(states[component.id][1], 1),
         "inputs": {name: produced[channel.producer.id][channel.name].uri
                    for name, channel in component.inputs.items()},
         "outputs": {name: {"uri": a.uri, "type": a.type, "properties": a.properties}
                     for name, a in produced[component.id].items()}}
        for component in pipeline.components]}
    with open(os.path.join(pipeline.root, RUN_RECORD), "w") as f:
        json.dump(record, f, indent=2)


class LocalRunner:
    def __init__(self, log=print):
        self.log = log

    def run(self, pipeline):
        """Runs every component (or takes it from the cache); returns
        {component id: {output name: Artifact}} and a summary per component, also
        recorded in `PIPELINE_ROOT/last_run.json`."""
        store = MetadataStore(os.path.join(pipeline.root, "metadata.sqlite"))
        context = Context(pipeline, store, self.log)
        produced, summary = {}, []
        for component in pipeline.components:
            inputs = {name: produced[channel.producer.id][channel.name]
                      for name, channel in component.inputs.items()}
            key = _cache_key(component, inputs)
            started = time.perf_counter()
            cached = self._from_cache(store, component, key)
            if cached is not None:
                produced[component.id] = cached
                summary.append((component.id, "cached", 0.0))
                self.log(f"[{component.id}] cached")
                continue
            self.log(f"[{component.id}] running")
            produced[component.id] = self._execute(pipeline, store, context, component, inputs,
                                                   key)
            elapsed = time.perf_counter() - started
            summary.append((component.id, "ran", elapsed))
            self.log(f"[{component.id}] done in {elapsed:.1f}s")
        _write_run_record(pipeline, produced, summary)
        return produced, summary

    def _from_cache(self, store, component, key):
        for _, uris in store.cached_outputs(component.id, key):
            artifacts = {name: Artifact.load_verified(uri) for name, uri in uris.items()}
            if set(artifacts) == set(component.OUTPUTS) and all(artifacts.values()):
                return artifacts
        return None

    def _execute(self, pipeline, store, context, component, inputs, key):
        execution_id = store.begin_execution(pipeline.name, component.id, key,
                                             component.parameters, inputs)
        final = {name: os.path.join(pipeline.root, component.id, name, str(execution_id))
                 for name in component.OUTPUTS}
        # Staging is named by the cache key: a resumable component (the Trainer) finds
        # its checkpoints there after a failure; any other starts from nothing.
        resumable = getattr(component, "RESUMABLE", False)
        staging = {name: os.path.join(os.path.dirname(path), f".staging-{key[:16]}")
                   for name, path in final.items()}
        for path in staging.values():
            if not resumable:
                shutil.rmtree(path, ignore_errors=True)
            os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            properties = component.execute(inputs, staging, context) or {}
            outputs = {}
            for name, type_name in component.OUTPUTS.items():
                os.makedirs(staging[name], exist_ok=True)
                artifact = Artifact(staging[name], type_name, content_digest(staging[name]),
                                    properties.get(name, {}), component.id, execution_id)
                artifact.write_metadata(component.parameters,
                                        {n: a.digest for n, a in inputs.items()})
                os.rename(staging[name], final[name])
                artifact.uri = final[name]
                outputs[name] = artifact
        except (TfllmError, OSError) as error:
            message = str(error)
            store.fail(execution_id, message)
            for path in [*([] if resumable else staging.values()), *final.values()]:
                shutil.rmtree(path, ignore_errors=True)
            if not isinstance(error, (ComponentError, TfllmError)):
                message = f"{type(error).__name__}: {message}"
            raise PipelineFailed(f"Component {component.id} failed: {message} Upstream "
                                 "artifacts are kept; run the pipeline again to resume "
                                 f"from {component.id}.") from None
        except BaseException:
            store.fail(execution_id, "interrupted")
            raise
        store.complete(execution_id, outputs)
        return outputs
