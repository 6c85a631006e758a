"""ExampleGen, StatisticsGen, ExampleValidator and Transform over tfllm's Beam job."""

import dataclasses
import filecmp
import json
import os

from tfllm.components.base import Component, ComponentError, run_module
from tfllm.data import output, readers
from tfllm.text.tokenizers import copy_tokenizer, load_tokenizer


class ExampleGen(Component):
    """Runs the Beam preprocessing job (`tfllm.preprocess`) into the examples artifact.

    `flags` are the job's flags (what `configs/data_*.flags` holds); `beam_args` go to
    Beam's PipelineOptions (`--runner=DataflowRunner ...`) and do not enter the cache
    key: the output does not depend on where the job ran. With a `tokenizer` input
    the job tokenizes with it instead of training one.
    """

    OUTPUTS = {"examples": "Examples"}

    def __init__(self, flags, beam_args=(), tokenizer=None, component_id="ExampleGen"):
        super().__init__(component_id, inputs={"tokenizer": tokenizer},
                         parameters={"flags": list(flags)},
                         options={"beam_args": list(beam_args)})

    def execute(self, inputs, outputs, context):
        args = [*self.parameters["flags"], f"--output_dir={outputs['examples']}"]
        if "tokenizer" in inputs:
            tokenizer = inputs["tokenizer"]
            args.append(f"--tokenizer={tokenizer.path(tokenizer.properties['file'])}")
        run_module("tfllm.preprocess", [*args, *self.options["beam_args"]], context)
        manifest = readers.load_manifest(outputs["examples"], "train")
        return {"examples": {"kind": manifest.kind,
                             "splits": {s: v.examples for s, v in manifest.splits.items()}}}


class StatisticsGen(Component):
    """Dataset statistics from the manifest and the files: examples and bytes per
    split, the tokenizer, and every filter's counter."""

    OUTPUTS = {"statistics": "ExampleStatistics"}

    def __init__(self, examples, component_id="StatisticsGen"):
        super().__init__(component_id, inputs={"examples": examples})

    def execute(self, inputs, outputs, context):
        manifest = output.read_manifest(inputs["examples"].uri)
        splits = {}
        for split, info in manifest.splits.items():
            sizes = [os.path.getsize(path) for path in manifest.files(split)
                     if os.path.exists(path)]
            splits[split] = {"examples": info.examples, "files": len(info.files),
                             "files_present": len(sizes), "bytes": sum(sizes)}
        statistics = {"kind": manifest.kind, "splits": splits,
                      "tokenizer": dataclasses.asdict(manifest.tokenizer),
                      "labels": manifest.labels, "counters": manifest.statistics}
        os.makedirs(outputs["statistics"])
        with open(os.path.join(outputs["statistics"], "statistics.json"), "w") as f:
            json.dump(statistics, f, indent=2, sort_keys=True)
        context.log("  " + ", ".join(f"{s}: {v['examples']:,} examples"
                                     for s, v in splits.items()))
        return {"statistics": {"splits": {s: v["examples"] for s, v in splits.items()}}}


class ExampleValidator(Component):
    """Fails the run on anomalies: an empty or missing split, fewer examples than
    `min_examples` ({split: count}), missing files, or examples tokenized with another
    vocabulary than the `tokenizer` input (the pretrained model's)."""

    OUTPUTS = {"anomalies": "ExampleAnomalies"}

    def __init__(self, statistics, examples, min_examples=None, tokenizer=None,
                 component_id="ExampleValidator"):
        super().__init__(component_id, inputs={"statistics": statistics, "examples": examples,
                                               "tokenizer": tokenizer},
                         parameters={"min_examples": dict(min_examples or {"train": 1})})

    def execute(self, inputs, outputs, context):
        with open(inputs["statistics"].path("statistics.json")) as f:
            statistics = json.load(f)
        anomalies = []
        for split, minimum in self.parameters["min_examples"].items():
            found = statistics["splits"].get(split, {}).get("examples", 0)
            if found == 0:
                anomalies.append(f"split {split!r} is empty")
            elif found < minimum:
                anomalies.append(f"split {split!r} has {found} examples, fewer than {minimum}")
        for split, info in statistics["splits"].items():
            if info["files_present"] != info["files"]:
                anomalies.append(f"split {split!r} lists {info['files']} files but "
                                 f"{info['files_present']} exist")
        if "tokenizer" in inputs:
            expected = inputs["tokenizer"]
            used = inputs["examples"].path(statistics["tokenizer"]["file"])
            if not filecmp.cmp(expected.path(expected.properties["file"]), used, shallow=False):
                anomalies.append("the examples were tokenized with another vocabulary than the "
                                 "pretrained model's")
        os.makedirs(outputs["anomalies"])
        with open(os.path.join(outputs["anomalies"], "anomalies.json"), "w") as f:
            json.dump({"anomalies": anomalies}, f, indent=2)
        if anomalies:
            raise ComponentError("The examples have anomalies: " + "; ".join(anomalies) + ".")
        return {"anomalies": {"count": 0}}


class Transform(Component):
    """The tokenizer as its own artifact: the one the examples' job trained (on the
    cleaned corpus), checked to load and to match the manifest, for reuse by later
    data jobs and by export."""

    OUTPUTS = {"tokenizer": "Tokenizer"}

    def __init__(self, examples, component_id="Transform"):
        super().__init__(component_id, inputs={"examples": examples})

    def execute(self, inputs, outputs, context):
        examples = inputs["examples"]
        described = output.read_manifest(examples.uri).tokenizer
        os.makedirs(outputs["tokenizer"])
        target = copy_tokenizer(examples.path(described.file), outputs["tokenizer"])
        tokenizer = load_tokenizer(target)
        if tokenizer.vocab_size != described.vocab_size:
            raise ComponentError(f"The tokenizer has {tokenizer.vocab_size} tokens; the "
                                 f"manifest says {described.vocab_size}.")
        return {"tokenizer": {"file": described.file, "family": tokenizer.family,
                              "vocab_size": tokenizer.vocab_size}}
