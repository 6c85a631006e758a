"""`python -m tfllm.convert --from=PATH --model_dir=OUT`: a published BERT, GPT-2 or
Llama-family checkpoint as a tfllm model directory; `--model_dir=DIR --to=hf|keras_hub
--output=OUT`: a tfllm model back in the ecosystem's formats.

Formats (detected, or forced with --format): a keras-hub preset directory
(BertBackbone / BertMaskedLM, GPT2Backbone / GPT2CausalLM, LlamaBackbone,
Llama3Backbone, QwenBackbone, MistralBackbone, GemmaBackbone), a Hugging Face
Transformers directory (model_type bert, gpt2, llama, qwen2, mistral or gemma), a
google-research/bert TF1 checkpoint (bert_config.json, bert_model.ckpt.*, vocab.txt).
"""

from absl import flags

from tfllm import cli
from tfllm.errors import ConfigError
from tfllm.interop.conversion import config_name, detect, export_model, import_checkpoint

flags.DEFINE_string("from", "", "A published checkpoint directory to convert.")
flags.DEFINE_enum("format", "auto", ["auto", "keras_hub", "hf", "tf1"], "Its format.")
flags.DEFINE_string("model_dir", "", "The tfllm model directory (written, or read with --to).")
flags.DEFINE_enum("to", None, ["hf", "keras_hub"], "Export --model_dir in this format.")
flags.DEFINE_string("output", "", "Where --to writes.")
flags.DEFINE_boolean("overwrite", False, "Replace a non-empty output directory.")
FLAGS = flags.FLAGS


def main(argv):
    if not FLAGS.model_dir:
        raise ConfigError("--model_dir is required (the tfllm model directory).")
    if FLAGS.to:
        if FLAGS["from"].value or not FLAGS.output:
            raise ConfigError("--to exports --model_dir to --output; do not give --from.")
        export_model(FLAGS.model_dir, FLAGS.to, FLAGS.output, FLAGS.overwrite)
        print(f"wrote {FLAGS.output} ({FLAGS.to} format) from {FLAGS.model_dir}")
        return
    path = FLAGS["from"].value
    if not path:
        raise ConfigError("Give --from=PATH (a checkpoint to convert) or --to (to export).")
    fmt = detect(path) if FLAGS.format == "auto" else FLAGS.format
    print(f"converting {path} ({fmt} format)...", flush=True)
    model, tokenizer, check = import_checkpoint(path, fmt, FLAGS.model_dir, FLAGS.overwrite)
    print(f"wrote {FLAGS.model_dir}: {config_name(model.config)}, "
          f"{model.count_params():,} parameters, {tokenizer.family} tokenizer "
          f"({tokenizer.vocab_size:,} tokens)")
    if check:
        print(check)


if __name__ == "__main__":
    cli.run(main)
