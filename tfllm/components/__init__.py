"""TFX-shaped components and a local runner with caching, lineage and resume.

TFX itself does not install on this TensorFlow line (docs/design.md); these keep its
component names and artifact contracts, and each wraps one of tfllm's real jobs.
"""

from tfllm.components.base import Component, ComponentError
from tfllm.components.data import ExampleGen, ExampleValidator, StatisticsGen, Transform
from tfllm.components.model import Evaluator, ModelImporter, Trainer
from tfllm.components.runner import LocalRunner, Pipeline, PipelineFailed
from tfllm.components.serving import InfraValidator, Pusher

__all__ = ["Component", "ComponentError", "ExampleGen", "ExampleValidator", "StatisticsGen",
           "Transform", "ModelImporter", "Trainer", "Evaluator", "InfraValidator", "Pusher", "LocalRunner",
           "Pipeline", "PipelineFailed"]
