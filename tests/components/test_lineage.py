"""The Evaluator's "no worse than the pushed model" reads the pushed model's metrics
through the lineage: Pusher output -> its execution -> the evaluation it read."""

import json
import os

from tfllm.components.artifacts import Artifact
from tfllm.components.model import pushed_metric
from tfllm.components.store import MetadataStore


def _evaluation(tmp_path, name, accuracy):
    uri = tmp_path / name
    os.makedirs(uri)
    (uri / "metrics.json").write_text(json.dumps({"results": {"model": {"accuracy": accuracy}}}))
    return Artifact(str(uri), "ModelEvaluation", name)


def _push(store, evaluation, uri, pushed, name="clf"):
    execution = store.begin_execution("p", "Pusher", uri, {}, {"evaluation": evaluation})
    store.complete(execution, {"pushed_model": Artifact(
        uri, "PushedModel", uri, {"pushed": pushed, "name": name})})


def test_the_metric_of_the_latest_pushed_model_is_found(tmp_path):
    store = MetadataStore(str(tmp_path / "m.sqlite"))
    assert pushed_metric(store, "clf", "accuracy") is None
    _push(store, _evaluation(tmp_path, "first", 0.4), str(tmp_path / "push1"), True)
    _push(store, _evaluation(tmp_path, "refused", 0.1), str(tmp_path / "push2"), False)
    _push(store, _evaluation(tmp_path, "other", 0.9), str(tmp_path / "push3"), True, "gpt")
    assert pushed_metric(store, "clf", "accuracy") == 0.4  # not the unpushed or other model
    _push(store, _evaluation(tmp_path, "second", 0.6), str(tmp_path / "push4"), True)
    assert pushed_metric(store, "clf", "accuracy") == 0.6
