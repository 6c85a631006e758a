"""Baselines computed on the same split as the model, so a number means something."""

import collections
import re

import keras
import numpy as np
import tensorflow as tf


def majority_class(train_labels, eval_labels):
    """Predicts the most frequent training label for every example."""
    majority = collections.Counter(np.asarray(train_labels).tolist()).most_common(1)[0][0]
    return np.full(len(eval_labels), majority)


def pair_texts(texts, pairs):
    """One string per example for bag-of-words baselines: a pair's texts concatenated."""
    return [f"{text} [SEP] {pair}" if pair else text for text, pair in zip(texts, pairs)]


def _tfidf_linear(train_texts, targets, eval_texts, outputs, loss, seed, l2=1e-4):
    """Unigram+bigram TF-IDF features into an L2-regularised linear layer, in Keras."""
    keras.utils.set_random_seed(seed)
    vectorizer = keras.layers.TextVectorization(max_tokens=20000, ngrams=2,
                                                output_mode="tf_idf")
    vectorizer.adapt(tf.constant(train_texts))
    features = vectorizer(tf.constant(train_texts))
    model = keras.Sequential([keras.layers.Dense(
        outputs, kernel_regularizer=keras.regularizers.l2(l2))])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=loss)
    # About 1,500 optimizer steps whatever the data size (enough to converge), as one
    # pass over a finite repeated dataset: per-epoch overhead would dominate tiny sets.
    repeats = max(1, 1500 // -(-len(train_texts) // 64))
    data = tf.data.Dataset.from_tensor_slices((features, np.asarray(targets)))
    data = data.shuffle(len(train_texts), seed=seed).repeat(repeats).batch(64)
    model.fit(data, epochs=1, shuffle=False, verbose=0)  # the dataset shuffles itself
    return model.predict(vectorizer(tf.constant(eval_texts)), verbose=0)


def tfidf_logistic_regression(train_texts, train_labels, eval_texts, num_classes, seed=0):
    """TF-IDF features and a softmax regression; predicted class ids."""
    logits = _tfidf_linear(train_texts, train_labels, eval_texts, num_classes,
                           keras.losses.SparseCategoricalCrossentropy(from_logits=True), seed)
    return np.argmax(logits, -1)


def mean_target(train_targets, eval_targets):
    """Regression's majority class: the training mean for every example."""
    return np.full(len(eval_targets), float(np.mean(train_targets)))


RIDGE_PENALTIES = (0.1, 1.0, 10.0, 100.0)


def tfidf_ridge_regression(train_texts, train_targets, eval_texts, seed=0, max_tokens=5000):
    """TF-IDF features (unigrams and bigrams) and ridge regression solved in closed form,
    its penalty chosen on a tenth of the training set held out. Closed form, not Adam:
    Adam's per-weight steps give rare features large weights, worse than the mean."""
    vectorizer = keras.layers.TextVectorization(max_tokens=max_tokens, ngrams=2,
                                                output_mode="tf_idf")
    vectorizer.adapt(tf.constant(train_texts))
    features = vectorizer(tf.constant(train_texts)).numpy().astype(np.float64)
    targets = np.asarray(train_targets, np.float64)
    held = np.zeros(len(targets), bool)
    held[np.random.default_rng(seed).permutation(len(targets))[:max(1, len(targets) // 10)]] = 1
    # Sums over all rows and over the held-out rows: the kept rows' are their difference,
    # so the one large product (features' Gram matrix) is computed once.
    sums = {part: (rows.sum(), features[rows].sum(0), targets[rows].sum(),
                   features[rows].T @ features[rows], features[rows].T @ targets[rows])
            for part, rows in (("all", np.ones(len(targets), bool)), ("held", held))}
    sums["kept"] = tuple(a - b for a, b in zip(sums["all"], sums["held"]))

    def solve(part, penalty):
        count, feature_sum, target_sum, gram, moment = sums[part]
        centre, mean = feature_sum / count, target_sum / count
        gram = gram - count * np.outer(centre, centre)  # of the centred features
        weights = np.linalg.solve(gram + penalty * np.eye(len(centre)),
                                  moment - count * centre * mean)
        return lambda f: (f - centre) @ weights + mean

    errors = [np.mean((solve("kept", penalty)(features[held]) - targets[held]) ** 2)
              for penalty in RIDGE_PENALTIES]
    best = solve("all", RIDGE_PENALTIES[int(np.argmin(errors))])
    return best(vectorizer(tf.constant(eval_texts)).numpy().astype(np.float64))


def unigram_counts(token_rows, mask_rows, vocab_size):
    counts = np.zeros(vocab_size, np.float64)
    for tokens, mask in zip(token_rows, mask_rows):
        np.add.at(counts, np.asarray(tokens)[np.asarray(mask) > 0], 1)
    return counts


def unigram_prediction(counts, targets, ignore=()):
    """Masked-LM baseline: always the most frequent token; loss under add-one unigrams."""
    counts = counts.copy()
    counts[list(ignore)] = 0
    probabilities = (counts + 1) / (counts.sum() + len(counts))
    targets = np.asarray(targets)
    return {"accuracy": float(np.mean(targets == int(np.argmax(counts)))),
            "loss": float(-np.mean(np.log(probabilities[targets])))}


def bigram_perplexity(train_windows, eval_windows, vocab_size):
    """Perplexity of a Dirichlet-smoothed bigram model: p(b|a) = (c(a,b) + p(b)) / (c(a) + 1),
    with p the add-one unigram distribution, so no probability is zero."""
    pairs = collections.Counter()
    counts = np.zeros(vocab_size)
    for ids, mask in train_windows:
        real = np.asarray(ids)[np.asarray(mask) > 0]
        np.add.at(counts, real, 1)
        pairs.update(zip(real[:-1].tolist(), real[1:].tolist()))
    unigram = (counts + 1) / (counts.sum() + vocab_size)
    previous_totals = collections.Counter()
    for (a, _), c in pairs.items():
        previous_totals[a] += c
    log_likelihood, n = 0.0, 0
    for ids, mask in eval_windows:
        real = np.asarray(ids)[np.asarray(mask) > 0].tolist()
        for a, b in zip(real[:-1], real[1:]):
            log_likelihood += np.log((pairs[(a, b)] + unigram[b]) / (previous_totals[a] + 1))
            n += 1
    return float(np.exp(-log_likelihood / max(n, 1)))


def most_frequent_tag(train_words, train_tags, eval_words):
    """Each word's most frequent training tag; the most frequent tag for unseen words."""
    by_word = collections.defaultdict(collections.Counter)
    overall = collections.Counter()
    for words, tags in zip(train_words, train_tags):
        for word, tag in zip(words, tags):
            by_word[word][tag] += 1
            overall[tag] += 1
    default = overall.most_common(1)[0][0]
    return [[by_word[w].most_common(1)[0][0] if w in by_word else default for w in words]
            for words in eval_words]


_SENTENCE = re.compile(r"[^.!?]+[.!?]*")
# Words of questions that say nothing of where the answer is ("what is meant by X?").
QUESTION_WORDS = frozenset(
    "a an the what which who whom whose when where why how is are was were be been do does "
    "did of by to in on for mean means meant name names word".split())


def _content_words(text):
    return {w for w in re.findall(r"\w+", text.lower()) if w not in QUESTION_WORDS}


def overlap_sentence(question, context, allow_no_answer):
    """The context sentence sharing the most words with the question (question words
    left out), the usual sentence-retrieval baseline of extractive QA; with
    `allow_no_answer` (SQuAD 2.0), no answer when no sentence shares a word."""
    wanted = _content_words(question)
    best, best_overlap = "", 0
    for match in _SENTENCE.finditer(context):
        overlap = len(wanted & _content_words(match.group()))
        if overlap > best_overlap:
            best, best_overlap = match.group().strip(), overlap
    if not best and not allow_no_answer:
        sentences = _SENTENCE.findall(context)
        best = sentences[0].strip() if sentences else context
    return best
