"""Extractive question answering (kind `qa`): SQuAD v1.1 and v2.0.

A question's context is read in windows (`doc_stride` apart, as BERT's run_squad);
each window's labels are the answer's first and last piece, or position 0 ([CLS])
where the window does not hold it. Evaluated with SQuAD's exact match and F1, through
the same decoding the served model runs, beside the context sentence with the most
question words.
"""

import json
import os

import tensorflow as tf

from tfllm import tasks
from tfllm.data.qa_examples import MakeQaExamples, QaExampleConfig
from tfllm.data.sources import paragraph_key
from tfllm.errors import ConfigError
from tfllm.evaluation import baselines, plots
from tfllm.evaluation.squad import squad_metrics
from tfllm.export.modules import QaModule
from tfllm.models import build_backbone
from tfllm.models.span_extractor import SpanExtractor
from tfllm.tasks.base import (Task, correct, cross_entropy, encoder_features, encoder_inputs,
                              eval_or_train, read_split)
from tfllm.text.tokenizers import load_tokenizer


def split_questions(data_dir, split):
    """Questions, contexts and labels ({"answers": [{"text", "answer_start"}],
    "is_impossible"}) of a QA split, one per question (its first window), in file order."""
    spec = {name: tf.io.FixedLenFeature([1], tf.string)
            for name in ("question", "context", "answers")}
    spec["window"] = tf.io.FixedLenFeature([1], tf.int64)
    questions, contexts, labels = [], [], []
    for examples in read_split(data_dir, split, spec):
        for window, question, context, label in zip(
                *(examples[k][:, 0] for k in ("window", "question", "context", "answers"))):
            if window == 0:
                questions.append(question.decode("utf-8"))
                contexts.append(context.decode("utf-8"))
                labels.append(json.loads(label))
    return questions, contexts, labels


@tasks.register
class QuestionAnswering(Task):
    """The mean of the start and end positions' cross-entropies, divided by the number
    of windows."""

    kind = "qa"
    losses = ("span",)
    examples_config = QaExampleConfig
    input_format = ("squad", "questions on contexts")
    # Answers are character offsets into their context: the stages that rewrite text
    # (normalisation, PII scrubbing, line deduplication) would move them.
    rewrites_text = False
    sample_text_flag = False

    @classmethod
    def examples_from_options(cls, options):
        return QaExampleConfig(sequence_length=options["sequence_length"],
                               doc_stride=options["doc_stride"],
                               max_query_length=options["max_query_length"])

    def split_key(self, document):
        """A paragraph's questions share a context: they stay in one split."""
        return paragraph_key(document)

    def example_maker(self, examples, tokenizer, labels, num_documents):
        return MakeQaExamples(examples, tokenizer.path)

    def feature_schema(self, examples):
        # answers: the question's answers as JSON
        return {**encoder_features(examples.sequence_length),
                "start_positions": ("int64", 1), "end_positions": ("int64", 1),
                "window": ("int64", 1), "question": ("string", 1), "context": ("string", 1),
                "answers": ("string", 1)}

    def facts(self, statistics):
        """Models trained on SQuAD 2.0-style data may answer nothing."""
        return {"version_2_with_negative": statistics.get("qa_impossible_questions", 0) > 0}

    @property
    def allow_no_answer(self):
        return self.manifest.task["version_2_with_negative"]

    def inputs(self, parsed, masker=None):
        return encoder_inputs(parsed), {"starts": parsed["start_positions"][:, 0],
                                        "ends": parsed["end_positions"][:, 0]}

    def build_model(self, config):
        return SpanExtractor(build_backbone(config))

    def counts(self, labels):
        return {"span": tf.cast(tf.shape(labels["starts"])[0], tf.float32)}

    def sums(self, outputs, labels):
        starts, ends = outputs[..., 0], outputs[..., 1]
        loss = cross_entropy(labels["starts"], starts) + cross_entropy(labels["ends"], ends)
        both = correct(labels["starts"], starts) * correct(labels["ends"], ends)
        return {"span": tf.reduce_sum(loss) / 2.0}, {"span": tf.reduce_sum(both)}

    def evaluate(self, model, data_dir, split, batch_size, max_answer_length=30, **options):
        """SQuAD exact match and F1 of the model (its windows, spans and no-answer
        decision as served) and of the context sentence with the most question words."""
        tokenizer = load_tokenizer(os.path.join(data_dir, self.manifest.tokenizer.file))
        module = self.serving_module(model, tokenizer, max_answer_length)
        questions, contexts, labels = split_questions(data_dir, split)
        if not questions:
            raise ConfigError(f"The {split} split of {data_dir} holds no question.")
        predicted = []
        for at in range(0, len(questions), batch_size):
            answers = module.serving_default(tf.constant(questions[at:at + batch_size]),
                                             tf.constant(contexts[at:at + batch_size]))
            predicted += [a.decode("utf-8") for a in answers["answer"].numpy()]
        gold = [[a["text"] for a in label["answers"]] for label in labels]
        return {"model": squad_metrics(gold, predicted),
                "overlap_sentence": squad_metrics(gold, [
                    baselines.overlap_sentence(q, c, self.allow_no_answer)
                    for q, c in zip(questions, contexts)])}

    def plots(self, results, output_dir):
        groups = (("all", ""), ("answerable", "has_answer_"), ("unanswerable", "no_answer_"))
        return {"answers": plots.grouped_bars_png(
            {name: {group: r[f"{prefix}f1"] for group, prefix in groups if f"{prefix}f1" in r}
             for name, r in results.items()},
            "SQuAD F1", os.path.join(output_dir, "answers.png"))}

    def serving_module(self, model, tokenizer, max_answer_length=30, **options):
        """Windows as the model's data made them; no-answer where it had unanswerable
        questions."""
        examples = self.manifest.examples
        return QaModule(model, tokenizer, examples["doc_stride"], examples["max_query_length"],
                        max_answer_length, self.allow_no_answer)

    def sample_inputs(self, data_dir, count=4):
        questions, contexts, _ = split_questions(data_dir, eval_or_train(self.manifest))
        return {"question": questions[:count], "context": contexts[:count]}
