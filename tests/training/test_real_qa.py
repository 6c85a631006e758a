"""Extractive QA trained on real text Debian ships ("what is X?" on paragraphs of
WordNet definitions, SQuAD 2.0 JSON with unanswerable questions), scored by SQuAD's
exact match and F1 next to the sentence-overlap baseline, then exported and served
from a fresh process with answers that map back onto their contexts."""

import json
import os
import random

import numpy as np
import pytest
import tensorflow as tf

from tests.training.test_real_tasks import prepare_and_train
from tfllm import tasks
from tfllm.data import readers, task_corpora
from tfllm.data.qa_examples import QaExampleConfig
from tfllm.data.sources import SourceConfig
from tfllm.export.saved_model import export_module
from tfllm.tasks.question_answering import QuestionAnswering, split_questions
from tfllm.text.tokenizers import load_tokenizer

pytestmark = pytest.mark.skipif(not os.path.exists(f"{task_corpora.WORDNET}/data.noun"),
                                reason="Debian's wordnet-base is installed by setup.sh")


def _span_loss(model, data_dir):
    """Mean start/end cross-entropy of `model` over the eval windows."""
    total = count = 0.0
    for features, labels in readers.make_dataset(data_dir, "eval", 64, shuffle=False,
                                                 repeat=False):
        sums, _ = QuestionAnswering().sums(model(features, training=False), labels)
        total += float(sums["span"])
        count += int(labels["starts"].shape[0])
    return total / count


def test_definition_questions_learned_exported_and_served(tmp_path):
    definitions = task_corpora.wordnet_definitions()
    random.Random(0).shuffle(definitions)
    path = str(tmp_path / "definitions.json")
    task_corpora.write_squad(path, task_corpora.qa_articles(definitions[:2000]))
    source = SourceConfig(patterns=(path,), format="squad")
    examples = QaExampleConfig(sequence_length=64, doc_stride=24, max_query_length=16)
    data_dir, manifest, model, _ = prepare_and_train(tmp_path, "qa", source, 400,
                                                     length=64, examples=examples)
    assert manifest.task["version_2_with_negative"]
    untrained = QuestionAnswering().build_model(model.config)
    trained_loss, untrained_loss = _span_loss(model, data_dir), _span_loss(untrained, data_dir)
    results = tasks.for_manifest(manifest).evaluate(model, data_dir, "eval", 64)
    print(json.dumps({"span_loss": [round(trained_loss, 4), round(untrained_loss, 4)],
                      **{name: {k: round(v, 4) for k, v in r.items()}
                         for name, r in results.items()}}))
    # The split hashes each document's id, which holds its absolute path: tmp_path moves
    # the eval share from run to run (measured 378 to 400+ of ~2,700 questions).
    assert results["model"]["questions"] >= 300
    # It learned where answers start and end. It does not beat the overlap baseline's F1
    # from scratch in this budget (measured: it abstains on every question at 500
    # steps); the closing note of issue 15 has the numbers at longer training.
    assert trained_loss < 0.6 * untrained_loss
    assert results["overlap_sentence"]["has_answer_f1"] > 0.5  # the baseline finds sentences

    # Exported, verified in a fresh process; served answers are spans of their contexts
    # and equal the in-process evaluation's.
    questions, contexts, _ = split_questions(data_dir, "eval")
    questions, contexts = questions[:24], contexts[:24]
    contexts[0] = "Caf\u00e9 na\u00efvet\u00e9 \u2014 " + contexts[0]  # offsets in characters
    tokenizer = load_tokenizer(os.path.join(data_dir, "vocab.txt"))
    module = QuestionAnswering(manifest).serving_module(model, tokenizer, max_answer_length=30)
    version = export_module(module, str(tmp_path / "export"), "qa",
                            {"question": questions, "context": contexts})
    served = tf.saved_model.load(version).signatures["serving_default"](
        question=tf.constant(questions), context=tf.constant(contexts))
    in_process = module.serving_default(tf.constant(questions), tf.constant(contexts))
    np.testing.assert_array_equal(served["answer"].numpy(), in_process["answer"].numpy())
    for answer, start, end, context in zip(served["answer"].numpy(), served["start"].numpy(),
                                           served["end"].numpy(), contexts):
        if start >= 0:
            assert context[start:end] == answer.decode()
        else:
            assert not answer
