"""`python -m pipelines.bert_pretrain_finetune --flagfile configs/pipeline_bert.flags`.

corpus -> BERT pretraining data -> BERT pretraining -> its masked-LM evaluation
against the unigram baseline (`--pretrain_gate`) -> task data (with the pretraining
vocabulary) -> fine-tuning (full or LoRA) -> evaluation (`--gate`) -> infra
validation -> push as `--push_name`, only if both evaluations blessed. The task is
the task data's flag file: text or pair classification (configs/data_classify.flags,
data_pairs.flags) or regression (data_similarity.flags, with --metric=pearson
--baseline=tfidf_ridge_regression).
With `--start_from=CONVERTED_DIR` (a published BERT made a tfllm model by
`tfllm.convert`) the pretraining stages are replaced by importing that model, and the
task data uses its vocabulary.
"""

from absl import flags

from pipelines.common import read_flagfile, run_and_report
from tfllm import cli
from tfllm.components import (
    Evaluator,
    ExampleGen,
    ExampleValidator,
    InfraValidator,
    ModelImporter,
    Pipeline,
    Pusher,
    StatisticsGen,
    Trainer,
    Transform,
)

NAME = "bert_classifier"
REQUESTS = ["Computers make very fast, very accurate mistakes.",
            "Work is the curse of the drinking classes."]


def create_pipeline(root, destination, pretrain_data, pretrain, classify_data, finetune,
                    metric="accuracy", threshold=None, baseline=None, min_examples=100,
                    beam_args=(), start_from=None, push_name=NAME, gates=(),
                    pretrain_gates=()):
    """Each stage's arguments are flag lists (see `read_flagfile`); `start_from` (a
    converted model directory) replaces pretraining and its evaluation."""
    base_evaluation = None
    if start_from:
        imported = ModelImporter(start_from)
        base_model, tokenizer = imported.outputs["model"], imported.outputs["tokenizer"]
    else:
        examples = ExampleGen(pretrain_data, beam_args, component_id="PretrainExampleGen")
        statistics = StatisticsGen(examples.outputs["examples"], "PretrainStatisticsGen")
        validated = ExampleValidator(
            statistics.outputs["statistics"], examples.outputs["examples"],
            {"train": min_examples, "eval": 1}, component_id="PretrainExampleValidator")
        tokenizer = Transform(examples.outputs["examples"]).outputs["tokenizer"]
        base_model = Trainer(examples.outputs["examples"], pretrain,
                             anomalies=validated.outputs["anomalies"],
                             component_id="Pretrainer").outputs["model"]
        base_evaluation = Evaluator(base_model, "accuracy", gates=pretrain_gates,
                                    component_id="PretrainEvaluator").outputs["evaluation"]
    classify_examples = ExampleGen(classify_data, beam_args, tokenizer=tokenizer,
                                   component_id="ClassifyExampleGen")
    classify_statistics = StatisticsGen(classify_examples.outputs["examples"],
                                        "ClassifyStatisticsGen")
    classify_validated = ExampleValidator(
        classify_statistics.outputs["statistics"], classify_examples.outputs["examples"],
        {"train": min_examples, "eval": 1}, tokenizer=tokenizer,
        component_id="ClassifyExampleValidator")
    fine_tuner = Trainer(classify_examples.outputs["examples"], finetune, base_model=base_model,
                         anomalies=classify_validated.outputs["anomalies"],
                         component_id="FineTuner")
    evaluator = Evaluator(fine_tuner.outputs["model"], metric, threshold, baseline,
                          push_name=push_name, gates=gates)
    infra = InfraValidator(fine_tuner.outputs["model"], push_name, REQUESTS)
    pusher = Pusher(evaluator.outputs["evaluation"], infra.outputs["infra_blessing"],
                    destination, base_evaluation=base_evaluation)
    return Pipeline("bert_pretrain_finetune", root, [pusher])


flags.DEFINE_string("pipeline_root", "artifacts/pipelines/bert_pretrain_finetune",
                    "Artifacts and the lineage store.")
flags.DEFINE_string("push_destination", "export", "TF Serving base directory.")
flags.DEFINE_string("pretrain_data_flagfile", "configs/data_bert.flags", "ExampleGen flags.")
flags.DEFINE_string("pretrain_flagfile", "configs/bert_tiny.flags", "Pretraining flags.")
flags.DEFINE_string("classify_data_flagfile", "configs/data_classify.flags",
                    "Classification ExampleGen flags.")
flags.DEFINE_string("finetune_flagfile", "configs/classify.flags", "Fine-tuning flags.")
flags.DEFINE_multi_string("pretrain_data_arg", [], "Extra preprocessing flag (repeat).")
flags.DEFINE_multi_string("pretrain_arg", [], "Extra pretraining flag (repeat).")
flags.DEFINE_multi_string("classify_data_arg", [], "Extra classification data flag.")
flags.DEFINE_multi_string("finetune_arg", [], "Extra fine-tuning flag, e.g. --lora_rank=8.")
flags.DEFINE_string("metric", "accuracy", "Evaluator: the metric that blesses (accuracy, "
                    "macro_f1; pearson, spearman or mse for regression).")
flags.DEFINE_float("min_accuracy", None, "Evaluator: absolute threshold on --metric.")
flags.DEFINE_string("push_name", NAME, "Model name under --push_destination.")
flags.DEFINE_string("baseline", "majority_class", "Evaluator: a baseline to beat ('' none).")
flags.DEFINE_multi_string("gate", [], "Evaluator: a quality gate the fine-tuned model must "
                          "pass, e.g. 'accuracy >= tfidf_logistic_regression' (repeat).")
flags.DEFINE_multi_string("pretrain_gate", [], "PretrainEvaluator: a gate on the pretrained "
                          "model's masked-LM metrics, e.g. 'accuracy >= unigram + 0.10'.")
flags.DEFINE_integer("min_examples", 100, "ExampleValidator: fewest train examples.")
flags.DEFINE_multi_string("beam_arg", [], "Beam pipeline option for the data jobs.")
flags.DEFINE_string("start_from", "", "A model directory made by tfllm.convert: fine-tune it "
                    "instead of pretraining (the pretraining flags are then not used).")
FLAGS = flags.FLAGS


def main(argv):
    pipeline = create_pipeline(
        FLAGS.pipeline_root, FLAGS.push_destination,
        read_flagfile(FLAGS.pretrain_data_flagfile, *FLAGS.pretrain_data_arg),
        read_flagfile(FLAGS.pretrain_flagfile, *FLAGS.pretrain_arg),
        read_flagfile(FLAGS.classify_data_flagfile, *FLAGS.classify_data_arg),
        read_flagfile(FLAGS.finetune_flagfile, *FLAGS.finetune_arg),
        metric=FLAGS.metric, threshold=FLAGS.min_accuracy, baseline=FLAGS.baseline or None,
        min_examples=FLAGS.min_examples, beam_args=FLAGS.beam_arg,
        start_from=FLAGS.start_from or None, push_name=FLAGS.push_name, gates=FLAGS.gate,
        pretrain_gates=FLAGS.pretrain_gate)
    run_and_report(pipeline)


if __name__ == "__main__":
    cli.run(main)
