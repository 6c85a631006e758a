"""Every weight of tfllm's BERT and GPT-2 models under its Hugging Face Transformers
name, with the layout change each way; and google-research/bert's TF1 names as
Hugging Face names.

Hand-written because keras-hub's Transformers loader reads only the backbones,
fixes layer_norm_eps and the activation, and exports BERT not at all; tfllm needs
the MLM and NSP heads too and both directions. The tests check these tables
against keras-hub's own loader.
"""

import re

import numpy as np


class Entry:
    """One tfllm variable and its HF tensor: `to_tfllm(hf) -> array`, `to_hf(array)`."""

    def __init__(self, hf_name, variable, to_tfllm=None, to_hf=None):
        self.hf_name, self.variable = hf_name, variable
        self.to_tfllm = to_tfllm or (lambda x: x)
        self.to_hf = to_hf or (lambda x: x)


def _dense(hf_name, layer, transpose=True):
    """A Dense layer: HF Linear weights are [out, in], Keras kernels [in, out];
    GPT-2's Conv1D weights are already [in, out]."""
    flip = (lambda x: np.transpose(x)) if transpose else None
    return [Entry(f"{hf_name}.weight", layer.kernel, flip, flip),
            Entry(f"{hf_name}.bias", layer.bias)]


def _layer_norm(hf_name, layer):
    return [Entry(f"{hf_name}.weight", layer.gamma), Entry(f"{hf_name}.bias", layer.beta)]


def _attention_projection(hf_name, dense, transpose, output=False):
    """An EinsumDense of multi-head attention: kernels [hidden, heads, head] (query,
    key, value) or [heads, head, hidden] (output), HF weights [hidden, hidden]."""
    shape = tuple(dense.kernel.shape)
    flip = np.transpose if transpose else (lambda x: x)
    if output:
        kernel = Entry(f"{hf_name}.weight", dense.kernel, lambda x: flip(x).reshape(shape),
                       lambda x: flip(x.reshape(shape[0] * shape[1], shape[2])))
        bias = Entry(f"{hf_name}.bias", dense.bias)
    else:
        kernel = Entry(f"{hf_name}.weight", dense.kernel, lambda x: flip(x).reshape(shape),
                       lambda x: flip(x.reshape(shape[0], shape[1] * shape[2])))
        bias_shape = tuple(dense.bias.shape)
        bias = Entry(f"{hf_name}.bias", dense.bias, lambda x: x.reshape(bias_shape),
                     lambda x: x.reshape(-1))
    return [kernel, bias]


def bert_entries(model):
    """Entries of a tfllm BertPretrainer, named as in HF's BertForPreTraining."""
    head = model.mlm_head
    entries = bert_encoder_entries(model.backbone)
    entries += _dense("cls.predictions.transform.dense", head._intermediate_dense)
    entries += _layer_norm("cls.predictions.transform.LayerNorm", head._intermediate_layer_norm)
    entries.append(Entry("cls.predictions.bias", head._bias))
    entries += _dense("cls.seq_relationship", model.nsp_head)
    return entries


def bert_classifier_entries(model):
    """Entries of a tfllm BERT SequenceClassifier, as in HF's
    BertForSequenceClassification (a dense layer on the pooled output)."""
    return bert_encoder_entries(model.backbone) + _dense("classifier", model.classifier_head)


def bert_encoder_entries(backbone):
    """The encoder's entries (BertModel's, under `bert.`), pooler included."""
    entries = [
        Entry("bert.embeddings.word_embeddings.weight", backbone.token_embedding.embeddings),
        Entry("bert.embeddings.position_embeddings.weight",
              backbone.position_embedding.position_embeddings),
        Entry("bert.embeddings.token_type_embeddings.weight",
              backbone.segment_embedding.embeddings),
        *_layer_norm("bert.embeddings.LayerNorm", backbone.embeddings_layer_norm)]
    for i, block in enumerate(backbone.transformer_layers):
        prefix, attention = f"bert.encoder.layer.{i}", block._self_attention_layer
        for name, dense in (("query", attention.query_dense), ("key", attention.key_dense),
                            ("value", attention.value_dense)):
            entries += _attention_projection(f"{prefix}.attention.self.{name}", dense, True)
        entries += _attention_projection(f"{prefix}.attention.output.dense",
                                         attention.output_dense, True, output=True)
        entries += _layer_norm(f"{prefix}.attention.output.LayerNorm",
                               block._self_attention_layer_norm)
        entries += _dense(f"{prefix}.intermediate.dense", block._feedforward_intermediate_dense)
        entries += _dense(f"{prefix}.output.dense", block._feedforward_output_dense)
        entries += _layer_norm(f"{prefix}.output.LayerNorm", block._feedforward_layer_norm)
    return entries + _dense("bert.pooler.dense", backbone.pooler)


def gpt2_entries(model):
    """Entries of a tfllm GptCausalLM, named as in HF's GPT2LMHeadModel (the LM head
    is the token embedding, tied)."""
    backbone = model.backbone
    entries = [Entry("transformer.wte.weight", backbone.token_embedding.embeddings),
               Entry("transformer.wpe.weight", backbone.position_embedding.position_embeddings)]
    for i, block in enumerate(backbone.transformer_layers):
        prefix, attention = f"transformer.h.{i}", block._self_attention_layer
        entries += _layer_norm(f"{prefix}.ln_1", block._self_attention_layer_norm)
        entries += _fused_qkv(f"{prefix}.attn.c_attn", attention)
        entries += _attention_projection(f"{prefix}.attn.c_proj", attention.output_dense, False,
                                         output=True)
        entries += _layer_norm(f"{prefix}.ln_2", block._feedforward_layer_norm)
        entries += _dense(f"{prefix}.mlp.c_fc", block._feedforward_intermediate_dense, False)
        entries += _dense(f"{prefix}.mlp.c_proj", block._feedforward_output_dense, False)
    entries += _layer_norm("transformer.ln_f", backbone.final_layer_norm)
    return entries


class Fused(Entry):
    """GPT-2's c_attn: query, key and value side by side in one [hidden, 3 hidden]
    tensor; `variables` are the three kernels (or biases)."""

    def __init__(self, hf_name, variables, split_axis):
        super().__init__(hf_name, None)
        self.variables, self.split_axis = variables, split_axis

    def split(self, fused):
        parts = np.split(fused, 3, axis=self.split_axis)
        return [p.reshape(tuple(v.shape)) for p, v in zip(parts, self.variables)]

    def join(self, arrays):
        width = arrays[0].shape[0] if self.split_axis else None
        flat = [a.reshape(width, -1) if self.split_axis else a.reshape(-1) for a in arrays]
        return np.concatenate(flat, axis=self.split_axis)


def _fused_qkv(hf_name, attention):
    denses = (attention.query_dense, attention.key_dense, attention.value_dense)
    return [Fused(f"{hf_name}.weight", [d.kernel for d in denses], split_axis=1),
            Fused(f"{hf_name}.bias", [d.bias for d in denses], split_axis=0)]


def tf1_to_hf_name(name):
    """google-research/bert's variable name as HF's BertForPreTraining name, and
    whether its layout is transposed ([in, out] kernels), or None (e.g. the optimizer's
    slots, global_step)."""
    if name in ("cls/predictions/output_bias",):
        return "cls.predictions.bias", False
    if name == "cls/seq_relationship/output_weights":
        return "cls.seq_relationship.weight", False  # [2, hidden] in both
    if name == "cls/seq_relationship/output_bias":
        return "cls.seq_relationship.bias", False
    if not name.startswith(("bert/", "cls/predictions/transform/")) or \
            name.endswith(("adam_m", "adam_v")):
        return None
    parts = re.sub(r"layer_(\d+)", r"layer.\1", name).split("/")
    leaf, transposed = parts[-1], parts[-1] == "kernel"
    leaf = {"kernel": "weight", "gamma": "weight", "beta": "bias"}.get(leaf, leaf)
    if leaf.endswith("_embeddings"):
        return ".".join(parts) + ".weight", False
    return ".".join(parts[:-1] + [leaf]), transposed
