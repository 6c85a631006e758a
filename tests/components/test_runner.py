"""The local runner on real components over a real corpus sample: caching,
re-running only what a change touches, failure then resume, corrupt artifacts."""

import os

import pytest

from tfllm.components import (
    ExampleGen,
    ExampleValidator,
    LocalRunner,
    Pipeline,
    PipelineFailed,
    StatisticsGen,
    Transform,
)
from tfllm.components.store import MetadataStore

FORTUNES = "/usr/share/games/fortunes"
DATA_FLAGS = ["--kind=gpt", f"--input={FORTUNES}/science", "--text_split=delimiter",
              "--delimiter=%", "--filter_overrides=min_words=3,min_stop_words=0",
              "--disable_filters=curly_brace,top_ngrams,c4_lines,fineweb", "--vocab_size=400",
              "--sequence_length=32", "--num_shards=1"]


def _pipeline(root, min_train=10):
    examples = ExampleGen(DATA_FLAGS)
    statistics = StatisticsGen(examples.outputs["examples"])
    validated = ExampleValidator(statistics.outputs["statistics"], examples.outputs["examples"],
                                 {"train": min_train})
    transform = Transform(examples.outputs["examples"])
    return Pipeline("sample", str(root), [validated, transform])


def _run(root, **kwargs):
    lines = []
    produced, summary = LocalRunner(log=lines.append).run(_pipeline(root, **kwargs))
    return produced, {component: state for component, state, _ in summary}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    if not os.path.exists(f"{FORTUNES}/science"):
        pytest.skip("Debian's fortunes package is installed by setup.sh")
    root = tmp_path_factory.mktemp("pipeline")
    return root, *_run(root)


def test_everything_runs_once_then_comes_from_the_cache(first_run):
    root, produced, states = first_run
    assert set(states.values()) == {"ran"}
    examples = produced["ExampleGen"]["examples"]
    assert os.path.exists(examples.path("manifest.json"))
    assert examples.properties["splits"]["train"] > 10
    assert produced["Transform"]["tokenizer"].properties["vocab_size"] == 400
    again, states = _run(root)
    assert set(states.values()) == {"cached"}
    assert again["Transform"]["tokenizer"].uri == produced["Transform"]["tokenizer"].uri
    lineage = MetadataStore(os.path.join(root, "metadata.sqlite"))
    transform_run = lineage.producer_of(produced["Transform"]["tokenizer"].uri)
    assert lineage.inputs_of(transform_run) == {"examples": examples.uri}


def test_a_parameter_change_reruns_only_that_component(first_run):
    root, _, _ = first_run
    _, states = _run(root, min_train=5)
    assert states == {"ExampleGen": "cached", "StatisticsGen": "cached",
                      "ExampleValidator": "ran", "Transform": "cached"}


def test_failure_keeps_upstream_and_the_rerun_resumes_there(first_run):
    root, produced, _ = first_run
    with pytest.raises(PipelineFailed, match="fewer than 1000000.*resume from ExampleValidator"):
        _run(root, min_train=1_000_000)
    assert os.path.exists(produced["ExampleGen"]["examples"].path("manifest.json"))
    failed = [row for row in MetadataStore(os.path.join(root, "metadata.sqlite")).executions()
              if row[2] == "FAILED"]
    assert failed and failed[-1][1] == "ExampleValidator"
    _, states = _run(root, min_train=7)  # fixed: upstream comes from the cache
    assert states["ExampleGen"] == "cached" and states["ExampleValidator"] == "ran"


def test_a_corrupted_artifact_is_never_taken_from_the_cache(first_run):
    root, produced, _ = first_run
    statistics = produced["StatisticsGen"]["statistics"]
    with open(statistics.path("statistics.json"), "a") as f:
        f.write("garbage")
    _, states = _run(root)
    assert states["StatisticsGen"] == "ran" and states["ExampleGen"] == "cached"
    # The recomputed statistics have the old content, so the validator's key is unchanged.
    assert states["ExampleValidator"] == "cached"
