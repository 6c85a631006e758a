"""ModelImporter (a converted published model), Trainer (tfllm.train) and Evaluator
(tfllm.evaluate plus a blessing)."""

import hashlib
import json
import os
import shutil

from tfllm.components.base import Component, ComponentError, run_module
from tfllm.evaluation.gates import Gate
from tfllm.evaluation.gates import reason as gate_reason
from tfllm.text.tokenizers import copy_tokenizer, load_tokenizer, resolve

BLESSED, NOT_BLESSED = "BLESSED", "NOT_BLESSED"
LOWER_IS_BETTER = ("loss", "perplexity", "mlm_loss", "mse", "rmse", "mae")


class ModelImporter(Component):
    """A model directory made by `tfllm.convert` (or trained elsewhere) as the
    pipeline's Model and Tokenizer artifacts, as TFX's Importer brings external
    artifacts in: copied, so the pipeline's lineage does not depend on the source
    staying put; the source's files enter the cache key."""

    OUTPUTS = {"model": "Model", "tokenizer": "Tokenizer"}

    def __init__(self, source, component_id="ModelImporter"):
        source = os.path.abspath(source)
        if not os.path.isfile(os.path.join(source, "config.json")):
            raise ComponentError(f"{source} is not a tfllm model directory (no config.json); "
                                 "make one with python -m tfllm.convert.")
        super().__init__(component_id, parameters={"source": source,
                                                   "files": _digest_tree(source)})

    def execute(self, inputs, outputs, context):
        source = self.parameters["source"]
        shutil.copytree(source, outputs["model"])
        os.makedirs(outputs["tokenizer"])
        vocabulary = copy_tokenizer(resolve(outputs["model"]), outputs["tokenizer"])
        tokenizer = load_tokenizer(vocabulary)
        with open(os.path.join(source, "config.json")) as f:
            model = json.load(f)["model"]
        return {"model": {"imported_from": source, "family": model["family"]},
                "tokenizer": {"file": os.path.basename(vocabulary), "family": tokenizer.family,
                              "vocab_size": tokenizer.vocab_size}}


def _digest_tree(directory):
    """A digest of every file's path, size and modification time under `directory`."""
    digest = hashlib.sha256()
    for root, _, names in sorted(os.walk(directory)):
        for name in sorted(names):
            path = os.path.join(root, name)
            stat = os.stat(path)
            digest.update(f"{os.path.relpath(path, directory)}:{stat.st_size}:"
                          f"{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class Trainer(Component):
    """Pretraining or fine-tuning with `tfllm.train` (`flags` as in configs/*.flags);
    `base_model` becomes `--init_checkpoint`. Resumable: a re-run after a failure or
    a kill continues from the last checkpoint of the same attempt."""

    OUTPUTS = {"model": "Model"}
    RESUMABLE = True

    def __init__(self, examples, flags, base_model=None, anomalies=None,
                 component_id="Trainer"):
        # `anomalies` (ExampleValidator's output) only orders the run: no training on
        # data that failed validation.
        super().__init__(component_id, inputs={"examples": examples, "base_model": base_model,
                                               "anomalies": anomalies},
                         parameters={"flags": list(flags)})

    def execute(self, inputs, outputs, context):
        args = [*self.parameters["flags"], f"--data_dir={inputs['examples'].uri}",
                f"--model_dir={outputs['model']}"]
        if "base_model" in inputs:
            args.append(f"--init_checkpoint={inputs['base_model'].uri}")
        run_module("tfllm.train", args, context)
        with open(os.path.join(outputs["model"], "summary.json")) as f:
            summary = json.load(f)
        if summary["status"] != "completed":  # e.g. SIGTERM: checkpointed, not finished
            raise ComponentError(f"Training {summary['status']} at step {summary['step']}.")
        return {"model": {key: summary[key] for key in ("step", "loss") if key in summary}}


def pushed_metric(store, push_name, metric):
    """The metric of the model last pushed under `push_name`, from the lineage: the
    Pusher's record -> its evaluation input -> metrics.json. None if none was pushed."""
    for uri, properties in store.artifacts_of_type("PushedModel"):
        if properties.get("pushed") and properties.get("name") == push_name:
            evaluation = store.inputs_of(store.producer_of(uri)).get("evaluation")
            if evaluation and os.path.exists(os.path.join(evaluation, "metrics.json")):
                with open(os.path.join(evaluation, "metrics.json")) as f:
                    return json.load(f)["results"]["model"].get(metric)
    return None


class Evaluator(Component):
    """Metrics with baselines (`tfllm.evaluate`), and a blessing only when every gate
    passes (`tfllm.evaluation.gates`, e.g. 'accuracy >= unigram + 0.10') and `metric`
    is no worse than the model currently pushed as `push_name`. `threshold` and
    `baseline` are shorthands for the gates `metric >= threshold` and `metric >
    baseline` (the other way round for losses)."""

    OUTPUTS = {"evaluation": "ModelEvaluation"}

    def __init__(self, model, metric, threshold=None, baseline=None, push_name=None,
                 gates=(), component_id="Evaluator"):
        lower = metric in LOWER_IS_BETTER
        texts = list(gates)
        if threshold is not None:
            texts.append(f"{metric} {'<=' if lower else '>='} {threshold}")
        if baseline:
            texts.append(f"{metric} {'<' if lower else '>'} {baseline}")
        for text in texts:  # a gate that cannot be read stops the pipeline before any work
            Gate.parse(text)
        super().__init__(component_id, inputs={"model": model}, parameters={
            "metric": metric, "gates": texts, "push_name": push_name})

    def execute(self, inputs, outputs, context):
        run_module("tfllm.evaluate", [f"--model_dir={inputs['model'].uri}",
                                      f"--output_dir={outputs['evaluation']}"], context)
        metrics_path = os.path.join(outputs["evaluation"], "metrics.json")
        with open(metrics_path) as f:
            evaluation = json.load(f)
        results = evaluation["results"]
        p = self.parameters
        metric = p["metric"]
        if metric not in results["model"]:
            known = sorted(k for k, v in results["model"].items() if isinstance(v, float))
            raise ComponentError(f"The evaluation has no metric {metric!r}; it has {known}.")
        value = results["model"][metric]
        outcomes = [Gate.parse(text).check(results) for text in p["gates"]]
        reasons = [gate_reason(outcome) for outcome in outcomes if not outcome["passed"]]
        current = pushed_metric(context.store, p["push_name"], metric) if p["push_name"] \
            else None
        better = (lambda a, b: a <= b) if metric in LOWER_IS_BETTER else (lambda a, b: a >= b)
        if current is not None and not better(value, current):
            reasons.append(f"{metric} {value:.4f} is worse than the pushed model's "
                           f"{current:.4f}")
        blessed = not reasons
        evaluation["gates"] = outcomes  # metrics.json says which gate passed, by how much
        with open(metrics_path, "w") as f:
            json.dump(evaluation, f, indent=2)
        with open(os.path.join(outputs["evaluation"], BLESSED if blessed else NOT_BLESSED),
                  "w") as f:
            f.write("\n".join(reasons) + "\n")
        for outcome in outcomes:
            context.log(f"  gate {outcome['gate']}: {outcome['value']:.4f} against "
                        f"{outcome['bound']:.4f}, " + ("passed" if outcome["passed"]
                                                       else "failed"))
        context.log(f"  {metric} = {value:.4f}: " + ("blessed" if blessed else
                                                     "not blessed (" + "; ".join(reasons) + ")"))
        return {"evaluation": {"blessed": blessed, metric: value, "reasons": reasons,
                               "gates": outcomes, "pushed_model_metric": current}}
