"""`python -m tfllm.generate --model_dir artifacts/gpt_tiny --prompt "..." [--method=sample]`.

Continues prompts with a trained or converted decoder (GPT or Llama family): greedy,
temperature, top-k and top-p sampling and a repetition penalty over the key/value cache,
in one XLA-compiled decoding loop; stops at the tokenizer's stop ids and at --stop
strings.
"""

import dataclasses

from absl import flags

from tfllm import cli
from tfllm.errors import ConfigError
from tfllm.models import DECODER_FAMILIES
from tfllm.generation.decoding import Generator
from tfllm.generation.sampling import SamplingConfig
from tfllm.training.artifacts import load_trained

flags.DEFINE_string("model_dir", None, "A directory written by tfllm.train (GPT).")
flags.DEFINE_multi_string("prompt", [], "A prompt; repeat the flag for a batch.")
flags.DEFINE_string("prompts_file", "", "A file with one prompt per line.")
for _field in dataclasses.fields(SamplingConfig):
    {int: flags.DEFINE_integer, float: flags.DEFINE_float, str: flags.DEFINE_string}[
        _field.type](_field.name, _field.default, f"Sampling: {_field.name}.")
flags.DEFINE_multi_string("stop", [], "A string that ends a continuation (left out); "
                          "repeat the flag for several.")
flags.DEFINE_boolean("jit_compile", True, "Compile the decoding loop with XLA.")
FLAGS = flags.FLAGS


def cut_at_stop(text, stops):
    """`text` up to the first of the stop strings (OpenAI's `stop`)."""
    ends = [text.find(stop) for stop in stops if stop and stop in text]
    return text[:min(ends)] if ends else text


def main(argv):
    if not FLAGS.model_dir:
        raise ConfigError("--model_dir is required.")
    prompts = list(FLAGS.prompt)
    if FLAGS.prompts_file:
        try:
            with open(FLAGS.prompts_file, encoding="utf-8") as f:
                prompts += [line.rstrip("\n") for line in f if line.strip()]
        except OSError as error:
            raise ConfigError(f"Cannot read --prompts_file: {error}.") from None
    if not prompts or any(not p.strip() for p in prompts):
        raise ConfigError("Give at least one non-empty --prompt (or --prompts_file).")
    config = SamplingConfig(**{f.name: FLAGS[f.name].value
                               for f in dataclasses.fields(SamplingConfig)})
    model, _, tokenizer = load_trained(FLAGS.model_dir)
    if model.config.family not in DECODER_FAMILIES:
        raise ConfigError(f"{FLAGS.model_dir} holds a {model.config.family} model; "
                          "generation needs a decoder (a GPT or Llama-family model).")
    # A converted model stops at every id its generation_config.json names.
    generator = Generator(model, tokenizer.stop_ids, FLAGS.jit_compile)
    continuations, tokens_per_second = generator.generate(tokenizer.tokenize(prompts), config)
    for prompt, ids in zip(prompts, continuations):
        ids = [i for i in ids if i not in tokenizer.stop_ids]
        print(f"{prompt}{cut_at_stop(tokenizer.detokenize(ids), FLAGS.stop)}\n---")
    print(f"{sum(map(len, continuations))} tokens at {tokens_per_second:,.1f} tokens/s "
          "(including XLA compilation on the first call)")


if __name__ == "__main__":
    cli.run(main)
