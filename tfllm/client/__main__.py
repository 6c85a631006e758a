"""`python -m tfllm.client --server localhost:8501 --model bert_classifier --text "..."`.

Sends raw text to a TF Serving (or `tfllm.serve`) model over REST (`--server`)
or gRPC (`--grpc`) and prints the answers: labels, generated text, embeddings.
The signature is chosen from the model's metadata: `serving_default`, or
`generate` when a generation setting is given. `--stream` prints a generator's
continuation token by token as tfllm.serve streams it.
"""

import numpy as np
from absl import flags

from tfllm import cli
from tfllm.errors import ConfigError
from tfllm.client import GrpcClient, RestClient
from tfllm.serving.streaming import DEFAULTS as GENERATION_DEFAULTS

flags.DEFINE_string("server", "", "REST address host:port (TF Serving's 8501).")
flags.DEFINE_string("grpc", "", "gRPC address host:port (TF Serving's 8500).")
flags.DEFINE_string("model", None, "Model name.")
flags.DEFINE_multi_string("text", [], "Input text; repeat for a batch.")
flags.DEFINE_string("signature", "", "Signature (default: serving_default, or generate).")
flags.DEFINE_integer("version", None, "Model version (default: the latest).")
flags.DEFINE_string("label", "", "Version label (e.g. stable).")
flags.DEFINE_boolean("classify", False, "Use the Classify API (tf.Example with a text feature).")
flags.DEFINE_boolean("status", False, "Print the model's version status and signatures.")
flags.DEFINE_boolean("stream", False, "Stream a generator's continuation (tfllm.serve's "
                     "GenerationService / :generateStream) and print it as it comes.")
flags.DEFINE_integer("max_new_tokens", None, "Generation: tokens to generate.")
flags.DEFINE_float("temperature", None, "Generation: 0 is greedy.")
flags.DEFINE_integer("top_k", None, "Generation: keep the k most likely tokens (0: all).")
flags.DEFINE_float("top_p", None, "Generation: nucleus mass (1: all).")
flags.DEFINE_integer("seed", None, "Generation: sampling seed.")
FLAGS = flags.FLAGS


def _client():
    if bool(FLAGS.server) == bool(FLAGS.grpc):
        raise ConfigError("Give exactly one of --server (REST) and --grpc.")
    return RestClient(FLAGS.server) if FLAGS.server else GrpcClient(FLAGS.grpc)


def _show(value):
    array = np.asarray(value)
    if array.dtype == object or array.dtype.kind in "SU":
        flat = [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                for v in array.ravel()]
        return flat[0] if array.ndim == 0 or len(flat) == 1 else ", ".join(flat[:10])
    if array.size > 8:
        head = ", ".join(f"{v:.4g}" for v in array.ravel()[:4])
        return f"{array.dtype.name}{list(array.shape)} [{head}, ...]"
    return np.array2string(array, precision=4)


def main(argv):
    if not FLAGS.model:
        raise ConfigError("--model is required.")
    client = _client()
    version, label = FLAGS.version, FLAGS.label or None
    if FLAGS.status:
        for status in client.status(FLAGS.model, version, label):
            print(f"version {status['version']}: {status['state']} "
                  f"{status['status']['error_code']} {status['status']['error_message']}")
        for name, io in client.signatures(FLAGS.model, version, label).items():
            print(f"signature {name}: {', '.join(io['inputs'])} -> {', '.join(io['outputs'])}")
        return
    if not FLAGS.text:
        raise ConfigError("Give at least one --text (or --status).")
    texts = list(FLAGS.text)
    if FLAGS.classify:
        for text, row in zip(texts, client.classify(FLAGS.model, texts,
                                                    FLAGS.signature or "classify",
                                                    version, label)):
            print(f"{text}\n  " + ", ".join(f"{name} {score:.3f}" for name, score in row))
        return
    settings = {name: FLAGS[name].value for name in GENERATION_DEFAULTS
                if FLAGS[name].value is not None}
    if FLAGS.stream:
        if len(texts) != 1:
            raise ConfigError("--stream generates for one --text at a time.")
        _stream(client, texts[0], version, label, settings)
        return
    signature = FLAGS.signature or ("generate" if settings else "serving_default")
    signatures = client.signatures(FLAGS.model, version, label)
    if signature not in signatures:
        raise ConfigError(f"Model {FLAGS.model} has no signature {signature!r}; it has "
                          f"{', '.join(sorted(signatures))}.")
    names = signatures[signature]["inputs"]
    text_input = next((n for n in ("text", "prompt") if n in names), names[0])
    inputs = {text_input: texts}
    for name in set(names) - {text_input}:
        if name not in GENERATION_DEFAULTS:
            raise ConfigError(f"Signature {signature!r} needs input {name!r}, which this "
                              "client cannot fill from text.")
        inputs[name] = [settings.get(name, GENERATION_DEFAULTS[name])] * len(texts)
    outputs = client.predict(FLAGS.model, inputs, signature, version, label)
    for row, text in enumerate(texts):
        print(text)
        for key in sorted(outputs):
            print(f"  {key}: {_show(outputs[key][row])}")


def _stream(client, prompt, version, label, settings):
    print(prompt, end="", flush=True)
    last = {"num_tokens": 0, "version": "?"}
    for piece in client.generate_stream(FLAGS.model, prompt, version, label, **settings):
        print(piece["text"], end="", flush=True)
        last = piece
    print(f"\n({last['num_tokens']} tokens, version {last['version']})")


if __name__ == "__main__":
    cli.run(main)
