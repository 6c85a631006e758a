"""`python -m tfllm`: the main job, from raw text to a served model in one command.

Runs the two pipelines on the default corpus (`pipelines.gpt_pretrain`, then
`pipelines.bert_pretrain_finetune`), each as its own process with its flag file,
then starts the model server on what they pushed, sends a generation and a
classification request, prints the answers and where everything is. Every stage
is cached, so a re-run takes seconds; after a failure it resumes where it stopped.
"""

import os
import subprocess
import sys
import time

from absl import flags

from tfllm import cli
from tfllm.components.runner import read_run_record
from tfllm.errors import ConfigError, TfllmError
from tfllm.serving import versions
from tfllm.client import GrpcClient, RestClient
from tfllm.serving.process import ServerProcess

flags.DEFINE_list("pipelines", ["gpt", "bert"], "Pipelines to run, in order: gpt, bert.")
flags.DEFINE_string("gpt_flagfile", "configs/pipeline_gpt.flags", "The GPT pipeline's flags.")
flags.DEFINE_string("bert_flagfile", "configs/pipeline_bert.flags",
                    "The BERT pretrain + fine-tune pipeline's flags.")
flags.DEFINE_multi_string("gpt_arg", [], "Extra flag for the GPT pipeline (repeat).")
flags.DEFINE_multi_string("bert_arg", [], "Extra flag for the BERT pipeline (repeat).")
flags.DEFINE_string("artifacts", "artifacts/pipelines", "Pipeline roots go under this.")
flags.DEFINE_string("export_base", "export", "TF Serving base directory models are pushed to.")
flags.DEFINE_string("prompt", "Computers are", "Generation request sent at the end.")
flags.DEFINE_string("text", "Work is the curse of the drinking classes.",
                    "Classification request sent at the end.")
flags.DEFINE_boolean("keep_serving", False, "Keep the server running until Ctrl-C.")
FLAGS = flags.FLAGS

# name -> (pipeline module, the model it pushes)
PIPELINES = {"gpt": ("gpt_pretrain", "gpt_generator"),
             "bert": ("bert_pretrain_finetune", "bert_classifier")}


def _check_flags():
    unknown = [name for name in FLAGS.pipelines if name not in PIPELINES]
    if unknown or not FLAGS.pipelines:
        raise ConfigError(f"--pipelines takes gpt and/or bert; got {','.join(FLAGS.pipelines)}.")
    for name in FLAGS.pipelines:
        flagfile = getattr(FLAGS, f"{name}_flagfile")
        if not os.path.isfile(flagfile):
            raise ConfigError(f"--{name}_flagfile={flagfile} is not a file (run from the "
                              "repository root, or point it at a configs/pipeline_*.flags).")


def _run_pipeline(name):
    """Runs one pipeline as a child process; returns its run record."""
    module, _ = PIPELINES[name]
    root = os.path.abspath(os.path.join(FLAGS.artifacts, module))
    command = [sys.executable, "-m", f"pipelines.{module}",
               f"--flagfile={getattr(FLAGS, f'{name}_flagfile')}", f"--pipeline_root={root}",
               f"--push_destination={os.path.abspath(FLAGS.export_base)}",
               *getattr(FLAGS, f"{name}_arg")]
    print(f"\n=== pipeline {module} ===", flush=True)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": os.environ.get("TF_CPP_MIN_LOG_LEVEL", "3")}
    if subprocess.run(command, env=env).returncode != 0:
        raise TfllmError(f"The {module} pipeline failed (its message is above). What it "
                         "finished is kept: run the same command again to resume there.")
    return read_run_record(root)


def _outputs(record, artifact_type):
    return [output for component in record["components"]
            for output in component["outputs"].values() if output["type"] == artifact_type]


def _serve_config(models, path):
    base = os.path.abspath(FLAGS.export_base)
    entries = "".join(f'  config {{ name: "{name}" base_path: "{os.path.join(base, name)}" '
                      'model_platform: "tensorflow" }\n' for name in models)
    with open(path, "w") as f:
        f.write(f"model_config_list {{\n{entries}}}\n")


def _ask(server, served):
    """One generation over gRPC and one classification over REST; returns the lines."""
    lines = []
    if "gpt_generator" in served:
        grpc = GrpcClient(f"127.0.0.1:{server.grpc_port}")
        answer = grpc.predict("gpt_generator", {
            "prompt": [FLAGS.prompt], "max_new_tokens": [24], "temperature": [0.8],
            "top_k": [40], "top_p": [0.95], "seed": [1]}, signature="generate")
        text = answer["text"][0].decode("utf-8", "replace")
        lines.append(f"gRPC gpt_generator:generate  {FLAGS.prompt!r} -> {text!r}")
    if "bert_classifier" in served:
        rest = RestClient(f"127.0.0.1:{server.rest_port}")
        answer = rest.predict("bert_classifier", {"text": [FLAGS.text]})
        label = answer["label"][0]
        label = label.decode() if isinstance(label, bytes) else label
        lines.append(f"REST bert_classifier:predict {FLAGS.text!r} -> {label} "
                     f"(score {max(answer['scores'][0]):.2f})")
    return lines


def _pushed_model_evaluation(record):
    """The pushed model's own evaluation (the pusher's `evaluation` input; a pretrained
    base model's comes in as `base_evaluation`), found by lineage."""
    (pusher,) = [c for c in record["components"]
                 if any(o["type"] == "PushedModel" for o in c["outputs"].values())]
    (evaluation,) = [o for o in _outputs(record, "ModelEvaluation")
                     if o["uri"] == pusher["inputs"]["evaluation"]]
    return evaluation


def _where(records):
    """Where each pipeline's artifacts, logs, plots and metrics are."""
    lines = []
    for record in records:
        lines.append(f"  {record['pipeline']}: artifacts and lineage (metadata.sqlite) in "
                     f"{record['root']}")
        for model in _outputs(record, "Model"):
            lines.append(f"    TensorBoard logs: {model['uri']}/tensorboard")
        for evaluation in _outputs(record, "ModelEvaluation"):
            plots = sorted(name for name in os.listdir(evaluation["uri"]) if name.endswith(".png"))
            lines.append(f"    metrics: {evaluation['uri']}/metrics.json")
            lines.append(f"    plots: {', '.join(plots)} beside it")
    return lines


def main(argv):
    _check_flags()
    started = time.perf_counter()
    records = [_run_pipeline(name) for name in FLAGS.pipelines]
    print("\n=== results ===")
    for record in records:
        evaluations = _outputs(record, "ModelEvaluation")
        (pushed,) = _outputs(record, "PushedModel")
        p = pushed["properties"]
        final = _pushed_model_evaluation(record)
        metric = next(f"{k} {v:.4g}" for k, v in final["properties"].items()
                      if isinstance(v, float) and k != "pushed_model_metric")
        print(f"{p['name']} ({metric}): " + (f"pushed as {p['path']}" if p["pushed"] else
                                             "not pushed: " + "; ".join(p["reasons"])))
        for evaluation in evaluations:
            for gate in evaluation["properties"].get("gates", []):
                print(f"  gate {gate['gate']}: {gate['value']:.4g} against {gate['bound']:.4g}"
                      f" ({'passed' if gate['passed'] else 'failed'})")
    served = [model for _, model in (PIPELINES[name] for name in FLAGS.pipelines)
              if versions.versions(os.path.join(FLAGS.export_base, model))]
    if not served:
        raise TfllmError(f"No model has ever been pushed to {FLAGS.export_base}: nothing to "
                         "serve (see the reasons above).")
    config = os.path.join(FLAGS.artifacts, "models.config")
    _serve_config(served, config)
    server = ServerProcess(f"--model_config_file={os.path.abspath(config)}")
    try:
        print(f"\nServing {', '.join(served)} from {os.path.abspath(FLAGS.export_base)} "
              f"(REST 127.0.0.1:{server.rest_port}, gRPC 127.0.0.1:{server.grpc_port}):")
        for line in _ask(server, served):
            print("  " + line)
        print("\nWhere things are:")
        for line in _where(records):
            print(line)
        print(f"  TensorBoard: tensorboard --logdir {os.path.abspath(FLAGS.artifacts)}")
        print(f"  serve them yourself: python -m tfllm.serve --model_config_file={config}")
        print(f"\nDone in {time.perf_counter() - started:.0f}s.")
        if FLAGS.keep_serving:
            print("Serving until Ctrl-C.")
            server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    cli.run(main)
