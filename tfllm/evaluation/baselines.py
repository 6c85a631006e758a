"""Baselines computed on the same split as the model, so a number means something."""

import collections

import keras
import numpy as np
import tensorflow as tf


def majority_class(train_labels, eval_labels):
    """Predicts the most frequent training label for every example."""
    majority = collections.Counter(np.asarray(train_labels).tolist()).most_common(1)[0][0]
    return np.full(len(eval_labels), majority)


def tfidf_logistic_regression(train_texts, train_labels, eval_texts, num_classes, seed=0):
    """Unigram+bigram TF-IDF features and an L2-regularised softmax regression, in Keras."""
    keras.utils.set_random_seed(seed)
    vectorizer = keras.layers.TextVectorization(max_tokens=20000, ngrams=2,
                                                output_mode="tf_idf")
    vectorizer.adapt(tf.constant(train_texts))
    features = vectorizer(tf.constant(train_texts))
    classifier = keras.Sequential([keras.layers.Dense(
        num_classes, kernel_regularizer=keras.regularizers.l2(1e-4))])
    classifier.compile(optimizer=keras.optimizers.Adam(1e-2),
                       loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    # About 1,500 optimizer steps whatever the data size (enough to converge), as one
    # pass over a finite repeated dataset: per-epoch overhead would dominate tiny sets.
    repeats = max(1, 1500 // -(-len(train_texts) // 64))
    data = tf.data.Dataset.from_tensor_slices((features, np.asarray(train_labels)))
    data = data.shuffle(len(train_texts), seed=seed).repeat(repeats).batch(64)
    classifier.fit(data, epochs=1, shuffle=False, verbose=0)  # the dataset shuffles itself
    return np.argmax(classifier.predict(vectorizer(tf.constant(eval_texts)), verbose=0), -1)


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
