"""Pusher publishes only doubly blessed models, atomically, as the next version."""

import os

from tfllm.components import Pusher
from tfllm.components.artifacts import Artifact
from tfllm.components.runner import Context
from tfllm.components.store import MetadataStore


def _inputs(tmp_path, evaluation_blessed, infra_blessed, base_blessed=None):
    version = tmp_path / "infra" / "export" / "clf" / "1"
    os.makedirs(version / "variables")
    (version / "saved_model.pb").write_bytes(b"model")
    evaluation = Artifact(str(tmp_path / "evaluation"), "ModelEvaluation", "e",
                          {"blessed": evaluation_blessed, "reasons": ["accuracy too low"]})
    infra = Artifact(str(tmp_path / "infra"), "InfraBlessing", "i",
                     {"blessed": infra_blessed, "name": "clf"})
    inputs = {"evaluation": evaluation, "infra_blessing": infra}
    if base_blessed is not None:
        inputs["base_evaluation"] = Artifact(
            str(tmp_path / "base"), "ModelEvaluation", "b",
            {"blessed": base_blessed, "reasons": ["accuracy >= unigram + 0.1 failed"]})
    return inputs


def _push(tmp_path, evaluation_blessed, infra_blessed, base_blessed=None):
    destination = tmp_path / "export"
    pusher = Pusher(None, None, str(destination))
    context = Context(None, MetadataStore(str(tmp_path / "m.sqlite")), lambda line: None)
    out = str(tmp_path / "pushed")
    result = pusher.execute(_inputs(tmp_path, evaluation_blessed, infra_blessed, base_blessed),
                            {"pushed_model": out}, context)["pushed_model"]
    return destination, result


def test_an_unblessed_model_is_not_pushed(tmp_path):
    for evaluation_blessed, infra_blessed, reason in [(False, True, "accuracy too low"),
                                                      (True, False, "InfraValidator")]:
        root = tmp_path / f"{evaluation_blessed}-{infra_blessed}"
        destination, result = _push(root, evaluation_blessed, infra_blessed)
        assert not result["pushed"] and reason in " ".join(result["reasons"])
        assert not destination.exists()


def test_a_fine_tuned_model_whose_base_model_failed_its_gate_is_not_pushed(tmp_path):
    destination, result = _push(tmp_path / "refused", True, True, base_blessed=False)
    assert not result["pushed"] and not destination.exists()
    assert result["reasons"] == ["the pretrained model's evaluation did not bless it: "
                                 "accuracy >= unigram + 0.1 failed"]
    destination, result = _push(tmp_path / "blessed", True, True, base_blessed=True)
    assert result["pushed"] and (destination / "clf" / "1" / "saved_model.pb").exists()


def test_a_blessed_model_becomes_the_next_version(tmp_path):
    os.makedirs(tmp_path / "export" / "clf" / "3")
    destination, result = _push(tmp_path, True, True)
    assert result["pushed"] and result["version"] == 4
    assert (destination / "clf" / "4" / "saved_model.pb").read_bytes() == b"model"
    assert sorted(os.listdir(destination / "clf")) == ["3", "4"]
