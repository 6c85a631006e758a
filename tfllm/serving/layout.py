"""TF Serving's SavedModel conventions that both export (which writes them) and the
server (which reads them) follow."""

import os

# The PredictionLogs TF Serving replays at load (`--enable_model_warmup`).
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# Signature methods the Classify and Regress APIs accept (TF2 saves every signature
# as a Predict one).
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
# A generator's chat format (template and end-of-turn strings) for the OpenAI-compatible
# chat API; TF Serving ignores it.
CHAT_FORMAT_FILE = os.path.join("assets.extra", "tfllm_chat_format.json")
