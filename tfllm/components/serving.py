"""InfraValidator (export, then serve and query for real) and Pusher."""

import os
import shutil

from tfllm.components.base import Component, ComponentError, run_module
from tfllm.errors import TfllmError
from tfllm.serving import versions
from tfllm.client import GrpcClient, RestClient
from tfllm.serving.process import ServerProcess

INFRA_BLESSED, INFRA_NOT_BLESSED = "INFRA_BLESSED", "INFRA_NOT_BLESSED"


class InfraValidator(Component):
    """Exports the model (`tfllm.export`, which checks the SavedModel against the Keras
    model in a fresh process), loads it in `tfllm.serve` and sends real requests over
    REST and gRPC. The validated SavedModel is the artifact Pusher publishes."""

    OUTPUTS = {"infra_blessing": "InfraBlessing"}

    def __init__(self, model, name, requests, export_flags=(), component_id="InfraValidator"):
        super().__init__(component_id, inputs={"model": model}, parameters={
            "name": name, "requests": list(requests), "export_flags": list(export_flags)})

    def execute(self, inputs, outputs, context):
        name = self.parameters["name"]
        base = os.path.join(outputs["infra_blessing"], "export")
        run_module("tfllm.export", [f"--model_dir={inputs['model'].uri}", f"--name={name}",
                                    f"--export_base={base}", *self.parameters["export_flags"]],
                   context)
        problems, answers = [], {}
        try:
            server = ServerProcess(f"--model_base_path={os.path.join(base, name)}",
                                   f"--model_name={name}")
        except TfllmError as error:
            server, problems = None, [f"the server could not load the model: {error}"]
        if server is not None:
            try:
                texts = self.parameters["requests"]
                for transport, client in (
                        ("rest", RestClient(f"127.0.0.1:{server.rest_port}")),
                        ("grpc", GrpcClient(f"127.0.0.1:{server.grpc_port}"))):
                    # Every text input gets the requests: a pair model is asked about
                    # each text paired with itself.
                    input_names = client.signatures(name)["serving_default"]["inputs"]
                    outputs_ = client.predict(name, {key: texts for key in input_names})
                    if any(len(value) != len(texts) for value in outputs_.values()):
                        problems.append(f"{transport}: answers do not match the requests")
                    answers[transport] = {k: v.tolist()[:2] if hasattr(v, "tolist") else v
                                          for k, v in outputs_.items() if v.ndim <= 1}
            except TfllmError as error:
                problems.append(str(error))
            finally:
                server.stop()
        blessed = not problems
        with open(os.path.join(outputs["infra_blessing"],
                               INFRA_BLESSED if blessed else INFRA_NOT_BLESSED), "w") as f:
            f.write("\n".join(problems) + "\n")
        context.log("  served and answered over REST and gRPC" if blessed
                    else "  not infra-blessed: " + "; ".join(problems))
        return {"infra_blessing": {"blessed": blessed, "name": name, "problems": problems,
                                   "answers": _jsonable(answers)}}


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


class Pusher(Component):
    """Publishes a model blessed by both Evaluator and InfraValidator (and, given
    `base_evaluation`, by the evaluation of the pretrained model it was fine-tuned
    from): the validated SavedModel is copied to `destination/NAME/VERSION/` under a
    hidden name and renamed into place. An unblessed model is recorded as not pushed."""

    OUTPUTS = {"pushed_model": "PushedModel"}

    def __init__(self, evaluation, infra_blessing, destination, base_evaluation=None,
                 component_id="Pusher"):
        super().__init__(component_id, inputs={"evaluation": evaluation,
                                               "infra_blessing": infra_blessing,
                                               "base_evaluation": base_evaluation},
                         parameters={"destination": os.path.abspath(destination)})

    def execute(self, inputs, outputs, context):
        infra = inputs["infra_blessing"]
        name = infra.properties["name"]
        reasons = []
        for key, who in (("base_evaluation", "the pretrained model's evaluation"),
                         ("evaluation", "the Evaluator")):
            if key in inputs and not inputs[key].properties.get("blessed"):
                reasons.append(f"{who} did not bless it: "
                               + "; ".join(inputs[key].properties.get("reasons", [])))
        if not infra.properties.get("blessed"):
            reasons.append("the InfraValidator did not bless it")
        os.makedirs(outputs["pushed_model"])
        if reasons:
            context.log(f"  not pushed: {' and '.join(reasons)}")
            return {"pushed_model": {"pushed": False, "name": name, "reasons": reasons}}
        source = os.path.join(infra.uri, "export", name)
        (validated,) = versions.versions(source)
        temporary, version = versions.begin_version(self.parameters["destination"], name)
        try:
            shutil.rmtree(temporary)
            shutil.copytree(os.path.join(source, str(validated)), temporary)
        except OSError as error:
            shutil.rmtree(temporary, ignore_errors=True)
            raise ComponentError(f"Cannot copy the model to {temporary}: {error}.") from None
        path = versions.commit_version(temporary, version)
        context.log(f"  pushed {path}")
        return {"pushed_model": {"pushed": True, "name": name, "version": version,
                                 "path": path}}
