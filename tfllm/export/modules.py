"""The exported `tf.Module`s: strings in, labels, vectors or text out.

Tokenization runs inside the graph (the keras-hub tokenizers' tensorflow-text ops
and `tfllm.text.packing`'s packer), so TF Serving clients send raw text. Functions
are traced without XLA: TF Serving disables it by default. Each module also
computes `reference` outputs the slow way (Python tokenization, the Keras model,
`tfllm.generate`'s decoder), which export checks the reloaded SavedModel against.
"""

import keras_hub
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from tfllm.evaluation.entities import entities

from tfllm.generation.decoding import DecodingState, Generator
from tfllm.generation.sampling import SamplingConfig
from tfllm.serving.layout import CHAT_FORMAT_FILE
from tfllm.text.packing import GraphPacker, pack, pack_words
from tfllm.text.spans import QaWindows, best_spans, unknown_for_empty

TEXT = tf.TensorSpec([None], tf.string, "text")
TEXT_PAIR = tf.TensorSpec([None], tf.string, "text_pair")
EXAMPLES = tf.TensorSpec([None], tf.string, "inputs")


def _to_longest_row(token_ids, padding_mask, segment_ids=None):
    """The packed batch cut to its longest row (never past the packer's length), so a
    call costs what its texts need; padding is masked, so the outputs at real positions
    equal those of full-length packing."""
    padding_mask = tf.cast(padding_mask, tf.int32)
    longest = tf.maximum(tf.reduce_max(tf.reduce_sum(padding_mask, axis=1)), 1)
    if segment_ids is None:
        segment_ids = tf.zeros_like(padding_mask)
    return {"token_ids": tf.cast(token_ids, tf.int32)[:, :longest],
            "padding_mask": padding_mask[:, :longest],
            "segment_ids": tf.cast(segment_ids, tf.int32)[:, :longest]}


def _packed_batch(texts, tokenizer, length, pairs=None):
    """The Python path: tokenize, pack as the data job does, as int32 arrays."""
    segments = [[t] for t in tokenizer.tokenize(texts)]
    if pairs is not None:
        segments = [[*s, p] for s, p in zip(segments, tokenizer.tokenize(pairs))]
    ids, masks, segment_ids = zip(*(pack(s, length, tokenizer.special_ids) for s in segments))
    return {"token_ids": np.array(ids, np.int32), "padding_mask": np.array(masks, np.int32),
            "segment_ids": np.array(segment_ids, np.int32)}


class TaskModule(tf.Module):
    """A fine-tuned classifier or regressor over one text or a pair of texts.

    Classifier: `serving_default` (text[, text_pair] -> label, classes, scores) and
    `classify` (serialized tf.Examples with those features -> classes, scores; TF
    Serving's Classify API). Regressor: `serving_default` (-> score) and `regress`
    (tf.Examples -> outputs; TF Serving's Regress API). Both: `token_ids`
    (pre-tokenized input -> scores or score).
    """

    def __init__(self, model, tokenizer, labels=(), pairs=False):
        super().__init__()
        self.model = model
        self.python_tokenizer = tokenizer
        self.tokenizer = tokenizer.keras_tokenizer
        self.packer = GraphPacker(model.config.max_sequence_length, tokenizer.special_ids)
        self.regression = not labels
        self.pairs = pairs
        self.sample_inputs = ("text", "text_pair") if pairs else ("text",)
        self.sample_input = "text"
        self.labels = tf.constant(list(labels) or [""])
        texts = [TEXT, TEXT_PAIR] if pairs else [TEXT]
        api = "regress" if self.regression else "classify"
        self.signature_names = ("serving_default", api, "token_ids")
        # Functions with exactly the signature's arguments: tf.function would try to
        # make a tensor of an optional argument's None.
        self.serving_default = tf.function(
            self._from_text if pairs else lambda text: self._from_text(text),
            input_signature=texts)
        setattr(self, api, tf.function(self._from_examples, input_signature=[EXAMPLES]))
        ids = [tf.TensorSpec([None, None], tf.int32, "token_ids"),
               tf.TensorSpec([None, None], tf.int32, "padding_mask")]
        if pairs:
            ids.append(tf.TensorSpec([None, None], tf.int32, "segment_ids"))
        self.token_ids = tf.function(
            self._from_ids if pairs else lambda token_ids, padding_mask: self._from_ids(
                token_ids, padding_mask), input_signature=ids)

    def _outputs(self, features):
        logits = self.model(features, training=False)
        if self.regression:
            return {"score": tf.cast(logits[:, 0], tf.float32)}
        scores = tf.nn.softmax(logits, axis=-1)
        return {"label": tf.gather(self.labels, tf.argmax(scores, axis=-1)),
                "classes": tf.broadcast_to(self.labels, tf.shape(scores)), "scores": scores}

    def _from_ids(self, token_ids, padding_mask, segment_ids=None):
        outputs = self._outputs(_to_longest_row(token_ids, padding_mask, segment_ids))
        return {k: v for k, v in outputs.items() if k in ("scores", "score")}

    def _from_text(self, text, text_pair=None):
        segments = [self.tokenizer(text)]
        if text_pair is not None:
            segments.append(self.tokenizer(text_pair))
        return self._outputs(_to_longest_row(*self.packer(*segments)))

    def _from_examples(self, serialized):
        spec = {name: tf.io.FixedLenFeature([], tf.string) for name in self.sample_inputs}
        outputs = self._from_text(**tf.io.parse_example(serialized, spec))
        if self.regression:
            return {"outputs": outputs["score"]}
        return {"classes": outputs["classes"], "scores": outputs["scores"]}

    def reference(self, samples):
        """`samples`: texts, or {"text": texts, "text_pair": texts} for a pair model."""
        if not isinstance(samples, dict):
            samples = {"text": samples}
        batch = _packed_batch(samples["text"], self.python_tokenizer,
                              self.model.config.max_sequence_length, samples.get("text_pair"))
        logits = self.model(batch, training=False).numpy()
        if self.regression:
            return {"serving_default": {"score": logits[:, 0].astype(np.float32)}}
        scores = tf.nn.softmax(logits, axis=-1).numpy()
        labels = self.labels.numpy()[np.argmax(scores, axis=-1)]
        return {"serving_default": {"scores": scores, "label": labels}}


def _char_offsets(text, byte_offsets):
    """UTF-8 byte offsets into each row's text -> character offsets (ragged like them)."""
    texts = tf.repeat(text, byte_offsets.row_lengths())
    prefixes = tf.strings.substr(texts, tf.zeros_like(byte_offsets.flat_values),
                                 byte_offsets.flat_values)
    return byte_offsets.with_flat_values(
        tf.strings.length(prefixes, unit="UTF8_CHAR"))


class TaggerModule(tf.Module):
    """A token tagger over whitespace-separated words. `serving_default`: text ->
    `words`, `tags` (per word; "" pads), `word_starts`/`word_ends` (character offsets,
    -1 pads) and the entities the tags make under conlleval's rules: `entity_types`,
    `entity_texts`, `entity_starts`, `entity_ends`. Words past the model's window are
    tagged O."""

    signature_names = ("serving_default",)
    sample_input = "text"

    def __init__(self, model, tokenizer, tags):
        super().__init__()
        self.model = model
        self.python_tokenizer = tokenizer
        self.tokenizer = tokenizer.keras_tokenizer
        self.special = tokenizer.special_ids
        self.length = model.config.max_sequence_length
        self.packer = GraphPacker(self.length, self.special)
        self.tags = tf.constant(tags)
        self.serving_default = tf.function(self._tag, input_signature=[TEXT])

    def _tag(self, text):
        words, starts, ends = tf_text.WhitespaceTokenizer().tokenize_with_offsets(text)
        pieces = unknown_for_empty(self.tokenizer(words.flat_values), self.special["unk"])
        counts = words.with_flat_values(tf.cast(pieces.row_lengths(), tf.int32))
        room = self.length - (2 if "cls" in self.special else 1)
        kept = tf.cumsum(counts, axis=1) <= room
        per_word = words.with_flat_values(pieces)
        kept_pieces = tf.ragged.boolean_mask(per_word, kept).merge_dims(1, 2)
        token_ids, padding_mask, segment_ids = self.packer(kept_pieces)
        logits = self.model(_to_longest_row(token_ids, padding_mask, segment_ids),
                            training=False)
        first = tf.cumsum(counts, axis=1, exclusive=True) + ("cls" in self.special)
        dense_first = tf.minimum(first.to_tensor(0), tf.shape(logits)[1] - 1)
        best = tf.gather(tf.argmax(logits, -1, output_type=tf.int32), dense_first, batch_dims=1)
        tag_names = tf.where(kept.to_tensor(False), tf.gather(self.tags, best), "O")
        real = tf.ones_like(counts, tf.bool).to_tensor(False)
        tag_names = tf.where(real, tag_names, "")
        char_starts = _char_offsets(text, starts).to_tensor(-1)
        char_ends = _char_offsets(text, ends).to_tensor(-1)
        return {"words": words.to_tensor(""), "tags": tag_names, "word_starts": char_starts,
                "word_ends": char_ends,
                **_entities_in_graph(text, tag_names, real, char_starts, char_ends)}

    def reference(self, texts):
        rows = [t.split() for t in texts]
        pieces = [self.python_tokenizer.tokenize(words) if words else [] for words in rows]
        tags, spans = [], []
        for text, words, word_pieces in zip(texts, rows, pieces):
            ids, mask, tag_ids, kept = pack_words(word_pieces, [0] * len(words), self.length,
                                                  self.special)
            batch = _to_longest_row(np.array([ids]), np.array([mask]))
            best = np.argmax(self.model(batch, training=False).numpy()[0], -1)
            positions = [i for i, t in enumerate(tag_ids) if t >= 0]
            names = [self.tags.numpy()[best[p]].decode() for p in positions]
            names += ["O"] * (len(words) - kept)
            tags.append(names)
            offsets, at = [], 0
            for word in words:
                at = text.index(word, at)
                offsets.append((at, at + len(word)))
                at += len(word)
            spans.append([(kind, offsets[a][0], offsets[b - 1][1])
                          for kind, a, b in entities(names)])
        width = max(len(t) for t in tags)
        most = max(len(s) for s in spans)
        return {"serving_default": {
            "tags": np.array([[t.encode() for t in row] + [b""] * (width - len(row))
                              for row in tags], object),
            "entity_types": np.array([[k.encode() for k, _, _ in row] + [b""] * (most - len(row))
                                      for row in spans], object).reshape(len(texts), most),
            "entity_starts": np.array([[a for _, a, _ in row] + [-1] * (most - len(row))
                                       for row in spans], np.int32).reshape(len(texts), most),
            "entity_ends": np.array([[b for _, _, b in row] + [-1] * (most - len(row))
                                     for row in spans], np.int32).reshape(len(texts), most)}}


def _entities_in_graph(text, tags, real, starts, ends):
    """conlleval's chunks of padded per-word tags, as padded per-row entity arrays.

    A word begins an entity when its tag is B-/S-, follows E-/S-/O with I-/E-, or
    changes type; an entity runs over the following non-O words until one begins anew.
    """
    parts = tf.strings.split(tf.where(tf.equal(tags, "") | tf.equal(tags, "O"), "O-", tags),
                             "-", maxsplit=1).to_tensor("")
    prefix, kind = parts[..., 0], parts[..., 1]
    outside = tf.equal(prefix, "O")
    previous = tf.pad(prefix[:, :-1], [[0, 0], [1, 0]], constant_values="O")
    previous_kind = tf.pad(kind[:, :-1], [[0, 0], [1, 0]], constant_values="")
    begins = ~outside & (
        tf.equal(prefix, "B") | tf.equal(prefix, "S")
        | ((tf.equal(previous, "E") | tf.equal(previous, "S") | tf.equal(previous, "O"))
           & (tf.equal(prefix, "I") | tf.equal(prefix, "E")))
        | tf.not_equal(previous_kind, kind))
    number = tf.cumsum(tf.cast(begins, tf.int32), axis=1)
    count = tf.reduce_sum(tf.cast(begins, tf.int32), axis=1)
    width = tf.shape(tags)[1]
    rows = tf.shape(tags)[0]
    segment = tf.where(~outside & real, tf.range(rows)[:, None] * width + number - 1,
                       rows * width)
    flat = tf.reshape(segment, [-1])
    size = rows * width + 1
    first = tf.math.unsorted_segment_min(tf.reshape(starts, [-1]), flat, size)[:-1]
    last = tf.math.unsorted_segment_max(tf.reshape(ends, [-1]), flat, size)[:-1]
    word = tf.math.unsorted_segment_min(tf.reshape(tf.broadcast_to(
        tf.range(width)[None, :], tf.shape(tags)), [-1]), flat, size)[:-1]
    most = tf.reduce_max(tf.concat([count, [0]], 0))
    valid = tf.range(most)[None, :] < count[:, None]
    first = tf.reshape(first, [rows, width])[:, :most]
    last = tf.reshape(last, [rows, width])[:, :most]
    word = tf.minimum(tf.maximum(tf.reshape(word, [rows, width])[:, :most], 0), width - 1)
    types = tf.gather(kind, word, batch_dims=1)
    first, last = tf.where(valid, first, -1), tf.where(valid, last, -1)
    texts = tf.strings.substr(tf.broadcast_to(text[:, None], tf.shape(first)),
                              tf.maximum(first, 0), tf.maximum(last - first, 0),
                              unit="UTF8_CHAR")
    return {"entity_types": tf.where(valid, types, ""), "entity_texts": texts,
            "entity_starts": first, "entity_ends": last}


QUESTION = tf.TensorSpec([None], tf.string, "question")
CONTEXT = tf.TensorSpec([None], tf.string, "context")


class QaModule(tf.Module):
    """Extractive QA. `serving_default`: question, context -> `answer` (text of the
    context), `start`/`end` (its character offsets; -1 with no answer), `score` (start
    + end logit of the best span; finite, the null score, for a context without one),
    `null_score` (position 0's) and `no_answer` (only
    ever true for a model trained on unanswerable questions: the null score beats the
    best span's). Long contexts are read in windows as the training data was."""

    signature_names = ("serving_default",)
    sample_input = "question"

    def __init__(self, model, tokenizer, doc_stride, max_query_length, max_answer_length,
                 allow_no_answer):
        super().__init__()
        self.model = model
        self.windows = QaWindows(tokenizer, model.config.max_sequence_length, doc_stride,
                                 max_query_length)
        self.max_answer_length = max_answer_length
        self.allow_no_answer = allow_no_answer
        self.serving_default = tf.function(self._answer, input_signature=[QUESTION, CONTEXT])

    def _answer(self, question, context):
        windows = self.windows(question, context)
        logits = self.model(_to_longest_row(windows["token_ids"], windows["padding_mask"],
                                            windows["segment_ids"]), training=False)
        spans = best_spans(logits[..., 0], logits[..., 1], windows, tf.shape(question)[0],
                           self.max_answer_length)
        no_span = spans["score"] == -float("inf")  # an empty context
        no_answer = no_span
        if self.allow_no_answer:
            no_answer |= spans["null_score"] > spans["score"]
        prefix = lambda offsets: tf.strings.length(  # noqa: E731  bytes -> characters
            tf.strings.substr(context, tf.zeros_like(offsets), offsets), unit="UTF8_CHAR")
        answer = tf.strings.substr(context, spans["start"], spans["end"] - spans["start"])
        return {"answer": tf.where(no_answer, "", answer),
                "start": tf.where(no_answer, -1, prefix(spans["start"])),
                "end": tf.where(no_answer, -1, prefix(spans["end"])),
                "score": tf.where(no_span, spans["null_score"], spans["score"]),
                "null_score": spans["null_score"],
                "no_answer": no_answer}

    def reference(self, samples):
        """Each question alone, its windows scored by the Keras model and every allowed
        span compared in Python."""
        answers = []
        for question, context in zip(samples["question"], samples["context"]):
            windows = {k: v.numpy() for k, v in self.windows(
                tf.constant([question]), tf.constant([context])).items()}
            logits = self.model(_to_longest_row(windows["token_ids"], windows["padding_mask"],
                                                windows["segment_ids"]),
                                training=False).numpy()
            best, span = -np.inf, None
            for row, row_logits in enumerate(logits):
                starts, ends = windows["starts"][row], windows["ends"][row]
                for i in range(len(row_logits)):
                    if starts[i] < 0 or not windows["max_context"][row][i]:
                        continue
                    for j in range(i, min(i + self.max_answer_length, len(row_logits))):
                        score = row_logits[i, 0] + row_logits[j, 1]
                        if starts[j] >= 0 and score > best:
                            best, span = score, (starts[i], ends[j])
            null = min(row_logits[0, 0] + row_logits[0, 1] for row_logits in logits)
            data = context.encode("utf-8")
            if span is None or (self.allow_no_answer and null > best):
                answers.append((b"", -1, -1))
            else:
                start = len(data[:span[0]].decode("utf-8"))
                answers.append((data[span[0]:span[1]], start,
                                start + len(data[span[0]:span[1]].decode("utf-8"))))
        return {"serving_default": {
            "answer": np.array([a for a, _, _ in answers], object),
            "start": np.array([s for _, s, _ in answers], np.int32),
            "end": np.array([e for _, _, e in answers], np.int32)}}


class EncoderModule(tf.Module):
    """A pretrained BERT: `serving_default` (text -> pooled_output, and sequence_output
    and padding_mask as long as the call's longest text) and `fill_mask` (text with [MASK] -> the text with each mask
    filled, and the top-k tokens and probabilities per mask)."""

    signature_names = ("serving_default", "fill_mask")
    sample_input = "text"

    def __init__(self, pretrainer, tokenizer, top_k=5):
        super().__init__()
        self.model = pretrainer
        self.python_tokenizer = tokenizer
        self.top_k = top_k
        self.tokenizer = tokenizer.keras_tokenizer
        # A second tokenizer that keeps "[MASK]" whole instead of lower-casing and splitting it.
        self.mask_tokenizer = keras_hub.tokenizers.WordPieceTokenizer(
            vocabulary=self.tokenizer.get_vocabulary(), oov_token="[UNK]",
            special_tokens=["[MASK]"], special_tokens_in_strings=True, **tokenizer.options)
        self.special = tokenizer.special_ids
        self.vocabulary = tf.constant(self.tokenizer.get_vocabulary())
        self.packer = GraphPacker(pretrainer.config.max_sequence_length, self.special)
        self.serving_default = tf.function(self._encode, input_signature=[TEXT])
        self.fill_mask = tf.function(self._fill_mask, input_signature=[TEXT])

    def _encode(self, text):
        inputs = _to_longest_row(*self.packer(self.tokenizer(text)))
        outputs = self.model.backbone(inputs, training=False)
        return {"pooled_output": tf.cast(outputs["pooled_output"], tf.float32),
                "sequence_output": tf.cast(outputs["sequence_output"], tf.float32),
                "padding_mask": inputs["padding_mask"]}

    def _fill_mask(self, text):
        inputs = _to_longest_row(*self.packer(self.mask_tokenizer(text)))
        token_ids = inputs["token_ids"]
        is_mask = tf.equal(token_ids, self.special["mask"])
        # Mask positions per row, padded with position 0 ([CLS]) and ignored there.
        positions = tf.ragged.boolean_mask(
            tf.broadcast_to(tf.range(tf.shape(token_ids)[1]), tf.shape(token_ids)), is_mask)
        real = tf.ones_like(positions, tf.bool).to_tensor(False)
        positions = positions.to_tensor(0)
        logits = self.model({**inputs, "mask_positions": positions}, training=False)["mlm_logits"]
        top = tf.math.top_k(tf.nn.softmax(logits, axis=-1), k=self.top_k)
        tokens = tf.where(real[..., None], tf.gather(self.vocabulary, top.indices), "")
        scores = tf.where(real[..., None], top.values, 0.0)
        best = tf.where(real, top.indices[..., 0], 0)
        rows = tf.broadcast_to(tf.range(tf.shape(positions)[0])[:, None], tf.shape(positions))
        updates = tf.boolean_mask(tf.stack([rows, positions], axis=-1), real)
        filled = tf.tensor_scatter_nd_update(token_ids, updates, tf.boolean_mask(best, real))
        special = [self.special[k] for k in ("cls", "sep", "pad")]
        keep = tf.reduce_all(tf.not_equal(filled[..., None], special), axis=-1)
        filled_text = self.tokenizer.detokenize(tf.ragged.boolean_mask(filled, keep))
        return {"text": filled_text, "top_tokens": tokens, "top_scores": scores}

    def reference(self, texts):
        batch = _packed_batch(texts, self.python_tokenizer, self.model.config.max_sequence_length)
        outputs = self.model.backbone(batch, training=False)
        longest = max(int(batch["padding_mask"].sum(axis=1).max()), 1)
        return {"serving_default": {"pooled_output": outputs["pooled_output"].numpy(),
                                    "padding_mask": batch["padding_mask"][:, :longest]}}


class GeneratorModule(tf.Module):
    """A decoder (GPT or Llama family): `serving_default` (prompt -> text, greedy,
    `max_new_tokens` fixed at export) and `generate` (prompt plus per-row max_new_tokens,
    temperature (0: greedy), top_k (0: off), top_p (1: off), seed -> text, num_tokens,
    prompt_tokens). Both run `tfllm.generate`'s cached decoding loop; the continuation
    stops at, and leaves out, a stop token (end of text, or generation_config.json's).

    `stream_start` (generate's inputs -> the decoding state) and `stream_step` (a
    state and the sampling inputs -> the next state and the text so far) are that
    loop one position per call: tfllm.serve streams generation through them.
    """

    signature_names = ("serving_default", "generate", "stream_start", "stream_step")
    sample_input = "prompt"

    def __init__(self, lm, tokenizer, max_new_tokens=32, chat_format=None):
        super().__init__()
        self.model = lm
        # Written beside the SavedModel for the server's chat API (`ChatFormat`).
        self.extra_assets = {CHAT_FORMAT_FILE: chat_format.to_json()} if chat_format else {}
        self.python_tokenizer = tokenizer
        self.tokenizer = tokenizer.keras_tokenizer
        self.stop_ids = tokenizer.stop_ids
        self.generator = Generator(lm, self.stop_ids, jit_compile=False)
        self.max_new_tokens = max_new_tokens
        self.serving_default = tf.function(
            self._generate_greedy, input_signature=[tf.TensorSpec([None], tf.string, "prompt")])
        sampling = [tf.TensorSpec([None], tf.int32, "max_new_tokens"),
                    tf.TensorSpec([None], tf.float32, "temperature"),
                    tf.TensorSpec([None], tf.int32, "top_k"),
                    tf.TensorSpec([None], tf.float32, "top_p"),
                    tf.TensorSpec([None], tf.int32, "seed")]
        prompt = tf.TensorSpec([None], tf.string, "prompt")
        self.generate = tf.function(self._generate, input_signature=[prompt, *sampling])
        self.stream_start = tf.function(self._stream_start, input_signature=[prompt, *sampling])
        config = lm.config
        state = [tf.TensorSpec([], tf.int32, "index"),
                 tf.TensorSpec([None, None], tf.int32, "tokens"),
                 tf.TensorSpec([None, config.num_layers, 2, None, config.key_value_heads,
                                config.head_size], lm.backbone.compute_dtype, "cache"),
                 tf.TensorSpec([None, config.vocab_size], tf.float32, "logits"),
                 tf.TensorSpec([None], tf.bool, "done"),
                 tf.TensorSpec([None], tf.int32, "generated"),
                 tf.TensorSpec([None, None], tf.int32, "prompt_mask")]
        self.stream_step = tf.function(self._stream_step, input_signature=[*state, *sampling])

    def _generate_greedy(self, prompt):
        rows = SamplingConfig(max_new_tokens=self.max_new_tokens).rows(1)
        size = tf.shape(prompt)
        fill = {name: tf.fill(size, value[0]) for name, value in rows.items()}
        return {"text": self._generate(prompt, **fill)["text"]}

    def _prompts(self, prompt, max_new_tokens, temperature, top_k, top_p, seed):
        """Checked inputs -> (prompts [batch, longest], prompt_mask [batch, total])."""
        context = self.model.config.max_sequence_length
        checks = [
            tf.debugging.assert_equal(tf.shape(max_new_tokens), tf.shape(prompt), message=(
                "max_new_tokens, temperature, top_k, top_p and seed need one value per prompt")),
            tf.debugging.assert_positive(max_new_tokens, "max_new_tokens must be at least 1"),
            tf.debugging.assert_non_negative(temperature, "temperature must be >= 0 (0: greedy)"),
            tf.debugging.assert_non_negative(top_k, "top_k must be >= 0 (0: no cut)"),
            tf.debugging.assert_positive(top_p, "top_p must be in (0, 1]"),
            tf.debugging.assert_less_equal(top_p, 1.0, "top_p must be in (0, 1]")]
        with tf.control_dependencies(checks):
            ids = tf.cast(self.tokenizer(prompt), tf.int32)
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        with tf.control_dependencies([
                tf.debugging.assert_positive(lengths, "every prompt needs at least one token"),
                tf.debugging.assert_less(lengths, context, (
                    f"a prompt leaves no room in the model's context of {context} tokens"))]):
            # Created here, so that nothing runs the model before the checks passed.
            total = tf.minimum(context, tf.reduce_max(lengths) + tf.reduce_max(max_new_tokens))
            prompt_mask = tf.ones_like(ids).to_tensor(
                0, shape=tf.stack([tf.shape(prompt)[0], total]))
            return ids.to_tensor(0), prompt_mask

    def _continuation(self, tokens, prompt_mask, generated):
        """The generated text of each row, without its stop token."""
        lengths = tf.reduce_sum(prompt_mask, axis=1)
        offsets = lengths[:, None] + tf.range(tf.reduce_max(generated))[None, :]
        continuation = tf.RaggedTensor.from_tensor(
            tf.gather(tokens, tf.minimum(offsets, tf.shape(tokens)[1] - 1), batch_dims=1),
            lengths=generated)
        stop = tf.ragged.map_flat_values(
            lambda ids: tf.reduce_any(tf.equal(ids[:, None], self.stop_ids), axis=1),
            continuation)
        continuation = tf.ragged.boolean_mask(continuation, ~stop)
        # Byte-level tokens may stop inside a character: answers are valid UTF-8 (JSON
        # needs it), with U+FFFD where bytes do not form one, as Python's decoding does.
        return tf.strings.unicode_transcode(self.tokenizer.detokenize(continuation), "UTF-8",
                                            "UTF-8", errors="replace")

    def _generate(self, prompt, max_new_tokens, temperature, top_k, top_p, seed):
        params = {"max_new_tokens": max_new_tokens, "temperature": temperature,
                  "top_k": top_k, "top_p": top_p, "seed": seed}
        prompts, prompt_mask = self._prompts(prompt, **params)
        tokens, generated = self.generator.decode(prompts, prompt_mask, params)
        return {"text": self._continuation(tokens, prompt_mask, generated),
                "num_tokens": generated, "prompt_tokens": tf.reduce_sum(prompt_mask, axis=1)}

    def _stream_start(self, prompt, max_new_tokens, temperature, top_k, top_p, seed):
        prompts, prompt_mask = self._prompts(prompt, max_new_tokens, temperature, top_k, top_p,
                                             seed)
        state = self.generator.begin(prompts, prompt_mask)
        return {**state._asdict(), "prompt_mask": prompt_mask,
                "finished": ~self.generator.running(state)}

    def _stream_step(self, index, tokens, cache, logits, done, generated, prompt_mask,
                     max_new_tokens, temperature, top_k, top_p, seed):
        params = {"max_new_tokens": max_new_tokens, "temperature": temperature,
                  "top_k": top_k, "top_p": top_p, "seed": seed}
        state = self.generator.step(DecodingState(index, tokens, cache, logits, done, generated),
                                    prompt_mask, params)
        return {**state._asdict(), "prompt_mask": prompt_mask,
                "finished": ~self.generator.running(state),
                "text": self._continuation(state.tokens, prompt_mask, state.generated)}

    def reference(self, prompts):
        config = SamplingConfig(max_new_tokens=self.max_new_tokens)
        continuations, _ = self.generator.generate(self.python_tokenizer.tokenize(prompts), config)
        texts = [self.python_tokenizer.detokenize([t for t in ids if t not in self.stop_ids])
                 for ids in continuations]
        return {"serving_default": {"text": np.array([t.encode() for t in texts], object)}}

