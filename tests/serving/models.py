"""Tiny exported models for the serving tests (a classifier, pair classifier and pair
regressor, a tagger, a QA model, an encoder and a generator): real tokenizers trained on fortunes
(or a built-in text when fortunes is absent), seeded random weights."""

import glob
import os

import keras

from tfllm.models import configs
from tfllm.models.bert import BertEncoder, BertPretrainer
from tfllm.models.classifier import SequenceClassifier
from tfllm.models.gpt import GptBackbone, GptCausalLM
from tfllm.models.span_extractor import SpanExtractor
from tfllm.models.tagger import TokenTagger
from tfllm.export import modules
from tfllm.export.saved_model import export_module
from tfllm.text.tokenizers import load_tokenizer, train_tokenizer

LABELS = ["science", "work"]
TAGS = ["B-X", "I-X", "O"]
TEXTS = ["Computers make very fast, very accurate mistakes.",
         "Work is the curse of the drinking classes."]
PROMPTS = ["Science is", "The computer"]
QUESTIONS = {"question": ["What is the curse of the drinking classes?", "Who makes mistakes?"],
             # Longer than one 32-token window: the answers come from several windows.
             "context": [" ".join(TEXTS * 3), "Computers make very fast, very accurate "
                         "mistakes, and people make slow ones. " * 2]}
PAIRS = {"text": ["A plane is taking off.", "A man plays a flute."],
         "text_pair": ["An air plane is taking off.", "A cat sleeps on the sofa all day."]}


def corpus():
    texts = []
    for path in sorted(glob.glob("/usr/share/games/fortunes/[a-s]*"))[:12]:
        if not path.endswith(".dat") and os.path.isfile(path):
            with open(path, encoding="utf-8", errors="replace") as f:
                texts += [t.strip() for t in f.read().split("\n%\n") if t.strip()]
    return texts or [" ".join(TEXTS + PROMPTS)] * 50


def _config(family, vocab_size, **overrides):
    return configs.override(configs.get_preset(f"{family}_tiny"), {
        "vocab_size": vocab_size, "hidden_size": 32, "intermediate_size": 64,
        "max_sequence_length": 32, "dropout": 0.0, **overrides})


def build(root):
    """Exports bert_classifier, bert_encoder and gpt_generator under `root`/export;
    returns {name: (module, tokenizer)} for in-process comparisons."""
    texts = corpus()
    os.makedirs(root / "bert_tok", exist_ok=True)
    os.makedirs(root / "gpt_tok", exist_ok=True)
    bert_tok = load_tokenizer(train_tokenizer("bert", texts, 600, str(root / "bert_tok")))
    gpt_tok = load_tokenizer(train_tokenizer("gpt", texts, 600, str(root / "gpt_tok")))
    keras.utils.set_random_seed(3)
    bert_config = _config("bert", bert_tok.vocab_size)
    classifier = SequenceClassifier(BertEncoder(bert_config), num_classes=len(LABELS))
    encoder = BertPretrainer(BertEncoder(bert_config))
    lm = GptCausalLM(GptBackbone(_config("gpt", gpt_tok.vocab_size)))
    pair_classifier = SequenceClassifier(BertEncoder(bert_config), num_classes=len(LABELS))
    regressor = SequenceClassifier(GptBackbone(_config("gpt", gpt_tok.vocab_size)), 1)
    built = {"bert_classifier": modules.TaskModule(classifier, bert_tok, LABELS),
             "bert_pair_classifier": modules.TaskModule(pair_classifier, bert_tok, LABELS,
                                                        pairs=True),
             "gpt_pair_regressor": modules.TaskModule(regressor, gpt_tok, pairs=True),
             "bert_tagger": modules.TaggerModule(
                 TokenTagger(BertEncoder(bert_config), len(TAGS)), bert_tok, TAGS),
             "bert_qa": modules.QaModule(SpanExtractor(BertEncoder(bert_config)), bert_tok,
                                         doc_stride=6, max_query_length=8,
                                         max_answer_length=8, allow_no_answer=False),
             "bert_encoder": modules.EncoderModule(encoder, bert_tok, top_k=3),
             "gpt_generator": modules.GeneratorModule(lm, gpt_tok, max_new_tokens=6)}
    base = str(root / "export")
    for name, module in built.items():
        samples = {"gpt_generator": PROMPTS, "bert_pair_classifier": PAIRS,
                   "gpt_pair_regressor": PAIRS, "bert_qa": QUESTIONS}.get(name, TEXTS)
        export_module(module, base, name, samples)
    return base, built
