"""`python -m tfllm.export --model_dir artifacts/classify_tiny --name bert_classifier`.

Writes `EXPORT_BASE/NAME/VERSION/`, a SavedModel TF Serving can load, with in-graph
tokenization: a fine-tuned classifier or regressor (of one text or a pair), a tagger,
an extractive QA model, a pretrained BERT encoder (embeddings and fill-mask) or a
decoder's generator: the serving module of the task the model was trained for, in float
or (`--quantize`) with int8 weights. The version
appears only once complete and verified in a fresh process.
"""

import os

from absl import flags

from tfllm import cli, tasks
from tfllm.errors import ConfigError
from tfllm.export import quantization
from tfllm.export.saved_model import export_module
from tfllm.text import chat_templates
from tfllm.training.artifacts import load_trained

flags.DEFINE_string("model_dir", None, "A model directory written by tfllm.train.")
flags.DEFINE_string("name", None, "Model name under the export base.")
flags.DEFINE_string("export_base", "export", "TF Serving base directory.")
flags.DEFINE_integer("max_new_tokens", 32, "GPT: tokens `serving_default` generates.")
flags.DEFINE_integer("max_answer_length", 30, "QA: the longest answer, in word pieces.")
flags.DEFINE_integer("fill_mask_top_k", 5, "BERT encoder: candidates per [MASK].")
flags.DEFINE_string("chat_template", "", "Generators: the chat format the server's "
                    "/v1/chat/completions renders with: chatml, llama3, gemma or a jinja2 "
                    "file (default: the converted model's own, if it has one).")
flags.DEFINE_string("quantize", "", "int8 (weights and activations) or int8_weights "
                    "(weights only): Keras's int8 quantization before export; empty: float.")
flags.DEFINE_multi_string("sample_text", [], "Verification and warmup inputs (default: a "
                          "few texts of the model's own data).")
FLAGS = flags.FLAGS


def main(argv):
    if not FLAGS.model_dir or not FLAGS.name:
        raise ConfigError("--model_dir and --name are required.")
    for name in ("max_new_tokens", "fill_mask_top_k", "max_answer_length"):
        if FLAGS[name].value < 1:
            raise ConfigError(f"--{name} must be at least 1; got {FLAGS[name].value}.")
    if FLAGS.quantize:
        quantization.check_mode(FLAGS.quantize)
    model, manifest, tokenizer = load_trained(FLAGS.model_dir)
    if FLAGS.quantize:
        count = quantization.quantize(model, FLAGS.quantize)
        print(f"quantized {count:,} weights to int8 ({FLAGS.quantize})")
    task = tasks.for_manifest(manifest)
    module = task.serving_module(model, tokenizer, max_new_tokens=FLAGS.max_new_tokens,
                                 max_answer_length=FLAGS.max_answer_length,
                                 fill_mask_top_k=FLAGS.fill_mask_top_k,
                                 chat_format=_chat_format(tokenizer))
    if FLAGS.chat_template and "generate" not in module.signature_names:
        raise ConfigError("--chat_template is for generators (decoders); this model exports "
                          f"{', '.join(module.signature_names)}.")
    if FLAGS.sample_text:
        samples = FLAGS.sample_text
        if not task.sample_text_flag:
            raise ConfigError("This model reads pairs of texts; --sample_text cannot give "
                              "them: leave it out to use pairs of the model's own data.")
    elif manifest.converted:  # no data of its own: a few everyday texts
        samples = list(task.converted_samples)
    else:
        samples = task.sample_inputs(manifest.directory)
    path = export_module(module, FLAGS.export_base, FLAGS.name, samples)
    print(f"exported {path} (signatures: {', '.join(module.signature_names)})")


def _chat_format(tokenizer):
    """--chat_template, or the one a converted model kept beside its tokenizer."""
    if not FLAGS.chat_template:
        kept = os.path.join(os.path.dirname(tokenizer.path), chat_templates.KEPT_FILE)
        if os.path.exists(kept):
            with open(kept, encoding="utf-8") as f:
                return chat_templates.ChatFormat.from_json(f.read())
        return None
    if FLAGS.chat_template in chat_templates.BUILT_IN:
        return chat_templates.named(FLAGS.chat_template)
    try:
        with open(FLAGS.chat_template, encoding="utf-8") as f:
            return chat_templates.ChatFormat(f.read())
    except OSError as error:
        raise ConfigError(f"--chat_template={FLAGS.chat_template} is neither a built-in "
                          f"({', '.join(chat_templates.BUILT_IN)}) nor a readable file: "
                          f"{error.strerror}.") from None


if __name__ == "__main__":
    cli.run(main)
