"""Published checkpoints in and out: keras-hub presets, Hugging Face Transformers
directories and google-research/bert TF1 checkpoints, for BERT and GPT-2."""
