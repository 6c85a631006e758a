"""`python -m tfllm.export --model_dir artifacts/classify_tiny --name bert_classifier`.

Writes `EXPORT_BASE/NAME/VERSION/`, a SavedModel TF Serving can load, with in-graph
tokenization: a fine-tuned classifier or regressor (of one text or a pair), a tagger,
an extractive QA model, a pretrained BERT encoder (embeddings and fill-mask) or a GPT
generator, chosen by what the model directory holds. The
version appears only once complete and verified in a fresh process.
"""

import os

from absl import flags

from tfllm import cli
from tfllm.data import job, readers
from tfllm.data.schema import TASK_KINDS
from tfllm.errors import ConfigError
from tfllm.serving import modules
from tfllm.serving.export import export_module
from tfllm.training.artifacts import load_trained

flags.DEFINE_string("model_dir", None, "A model directory written by tfllm.train.")
flags.DEFINE_string("name", None, "Model name under the export base.")
flags.DEFINE_string("export_base", "export", "TF Serving base directory.")
flags.DEFINE_integer("max_new_tokens", 32, "GPT: tokens `serving_default` generates.")
flags.DEFINE_integer("max_answer_length", 30, "QA: the longest answer, in word pieces.")
flags.DEFINE_integer("fill_mask_top_k", 5, "BERT encoder: candidates per [MASK].")
flags.DEFINE_multi_string("sample_text", [], "Verification and warmup inputs (default: a "
                          "few texts of the model's own data).")
FLAGS = flags.FLAGS
CONVERTED_SAMPLES = {"bert": ["The capital of France is Paris.",
                              "Computers make very fast, very accurate mistakes."],
                     "gpt": ["The capital of France is", "Once upon a time"]}


def main(argv):
    if len(argv) > 1:
        raise ConfigError(f"Unexpected arguments: {' '.join(argv[1:])}.")
    if not FLAGS.model_dir or not FLAGS.name:
        raise ConfigError("--model_dir and --name are required.")
    for name in ("max_new_tokens", "fill_mask_top_k", "max_answer_length"):
        if FLAGS[name].value < 1:
            raise ConfigError(f"--{name} must be at least 1; got {FLAGS[name].value}.")
    model, manifest, tokenizer = load_trained(FLAGS.model_dir)
    kind = manifest["kind"]
    pairs = bool(manifest.get("config", {}).get("source", {}).get("text_pair_field"))
    if kind == "tag":
        module = modules.TaggerModule(model, tokenizer, manifest["labels"])
    elif kind == "qa":
        module = modules.QaModule.for_data(model, tokenizer, manifest, FLAGS.max_answer_length)
    elif kind in TASK_KINDS:
        module = modules.TaskModule(model, tokenizer, manifest["labels"], pairs)
    elif kind == "bert":
        module = modules.EncoderModule(model, tokenizer, FLAGS.fill_mask_top_k)
    else:
        module = modules.GeneratorModule(model, tokenizer, FLAGS.max_new_tokens)
    if FLAGS.sample_text:
        samples = FLAGS.sample_text
        if pairs or kind == "qa":
            raise ConfigError("This model reads pairs of texts; --sample_text cannot give "
                              "them: leave it out to use pairs of the model's own data.")
    elif manifest.get("converted"):  # no data of its own: a few everyday texts
        samples = CONVERTED_SAMPLES[kind]
    else:
        samples = _sample_texts(os.path.dirname(tokenizer.path), kind)
    path = export_module(module, FLAGS.export_base, FLAGS.name, samples)
    print(f"exported {path} (signatures: {', '.join(module.signature_names)})")


def _sample_texts(data_dir, kind, count=4):
    """A few texts of the model's data: eval texts (and their pairs) for a fine-tuned
    model, the first words of cleaned documents (prompts, sentences) for BERT and GPT."""
    if kind in TASK_KINDS:
        split = "eval" if readers.load_manifest(data_dir, "train")["splits"]["eval"]["files"] \
            else "train"
        if kind == "tag":
            return [" ".join(words) for words in readers.split_tagged(data_dir, split)[0][:count]]
        if kind == "qa":
            questions, contexts, _ = readers.split_questions(data_dir, split)
            return {"question": questions[:count], "context": contexts[:count]}
        texts, pairs, _ = readers.split_texts(data_dir, split)
        if any(pairs):
            return {"text": texts[:count], "text_pair": pairs[:count]}
        return texts[:count]
    words = 4 if kind == "gpt" else 12
    return [" ".join(text.split()[:words])
            for text in job.clean_sample(os.path.join(data_dir, job.CLEAN_DIR), count)]


if __name__ == "__main__":
    cli.run(main)
