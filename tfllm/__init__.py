"""tfllm: pretrain, fine-tune, export and serve transformer language models with TensorFlow."""

__version__ = "0.1.0"
