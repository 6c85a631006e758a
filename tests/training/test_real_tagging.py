"""Token tagging learned from real text Debian ships (fortune quotes with planted
e-mail addresses, URLs and numbers, as CoNLL), against the most-frequent-tag baseline;
the exported tagger's character offsets map back onto its texts."""

import json
import os

import pytest
import tensorflow as tf

from tests.training.test_real_tasks import prepare_and_train
from tfllm import tasks
from tfllm.data import task_corpora
from tfllm.data.sources import SourceConfig
from tfllm.export import modules
from tfllm.export.saved_model import export_module
from tfllm.tasks.tagging import split_tagged
from tfllm.text.tokenizers import load_tokenizer

pytestmark = pytest.mark.skipif(not os.path.exists(f"{task_corpora.FORTUNES}/zippy"),
                                reason="Debian's fortunes is installed by setup.sh")


def test_tagging_planted_entities_beats_the_most_frequent_tag(tmp_path):
    path = str(tmp_path / "entities.conll")
    task_corpora.write_conll(path, task_corpora.tagging_rows(
        task_corpora.fortune_sentences()[:2000]))
    source = SourceConfig(patterns=(path,), format="conll")
    data_dir, manifest, model, _ = prepare_and_train(tmp_path, "tag", source, 400, length=64)
    assert manifest.labels == ["B-EMAIL", "B-NUM", "B-URL", "I-NUM", "O"]
    results = tasks.for_manifest(manifest).evaluate(model, data_dir, "eval", 32)
    print(json.dumps({k: round(r["f1"], 4) for k, r in results.items()}))
    assert sum(r["support"] for r in results["model"]["per_entity"].values()) >= 300
    assert results["model"]["f1"] > results["most_frequent_tag"]["f1"] + 0.05

    # Exported, verified in a fresh process; its spans map back onto the texts.
    tokenizer = load_tokenizer(os.path.join(data_dir, "vocab.txt"))
    texts = [" ".join(w) for w in split_tagged(data_dir, "eval")[0][:16]]
    texts[0] = "Caf\u00e9  crème at https://www.example.com/alice  or 12 000 \u2014 done"
    module = modules.TaggerModule(model, tokenizer, manifest.labels)
    version = export_module(module, str(tmp_path / "export"), "tagger", texts)
    outputs = tf.saved_model.load(version).signatures["serving_default"](text=tf.constant(texts))
    for row, text in enumerate(texts):
        words = text.split()
        starts, ends = outputs["word_starts"][row].numpy(), outputs["word_ends"][row].numpy()
        assert [text[a:b] for a, b in zip(starts, ends) if a >= 0] == words
        for kind, entity, a, b in zip(*(outputs[k][row].numpy() for k in (
                "entity_types", "entity_texts", "entity_starts", "entity_ends"))):
            if kind:
                assert text[a:b] == entity.decode()
    assert b"URL" in outputs["entity_types"][0].numpy()
