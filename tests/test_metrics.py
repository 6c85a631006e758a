import numpy as np

from tfllm.evaluation.metrics import classification_metrics, confusion_matrix


def test_metrics_on_a_hand_computed_case():
    labels = [0, 0, 0, 1, 1, 2]
    predictions = [0, 0, 1, 1, 2, 2]
    # class 0: P=2/2 R=2/3; class 1: P=1/2 R=1/2; class 2: P=1/2 R=1/1
    result = classification_metrics(labels, predictions, ["a", "b", "c"])
    assert result["accuracy"] == 4 / 6
    f1 = [2 * 1 * (2 / 3) / (1 + 2 / 3), 0.5, 2 * 0.5 * 1 / 1.5]
    assert np.isclose(result["macro_f1"], np.mean(f1))
    assert result["per_class"]["a"] == {"precision": 1.0, "recall": 2 / 3,
                                        "f1": f1[0], "support": 3}
    assert result["confusion_matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_never_predicted_class_scores_zero():
    result = classification_metrics([0, 1, 1], [1, 1, 1], ["x", "y"])
    assert result["per_class"]["x"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                        "support": 1}
    assert confusion_matrix([1], [0], 2).tolist() == [[0, 0], [1, 0]]


def test_baselines_on_small_cases():
    from tfllm.evaluation import baselines

    assert baselines.majority_class([1, 1, 0], [0, 0]).tolist() == [1, 1]
    counts = baselines.unigram_counts([[5, 5, 6, 0]], [[1, 1, 1, 0]], 8)
    assert counts.tolist() == [0, 0, 0, 0, 0, 2, 1, 0]
    result = baselines.unigram_prediction(counts, [5, 6])
    assert result["accuracy"] == 0.5
    assert np.isclose(result["loss"], -np.mean(np.log([3 / 11, 2 / 11])))
    # A perfectly repetitive stream: the bigram model is nearly certain.
    stream = ([1, 2, 3] * 20, [1] * 60)
    assert baselines.bigram_perplexity([stream], [stream], 4) < 1.2
    texts = ["good great fine", "bad awful poor", "great good", "poor bad"] * 5
    labels = [1, 0, 1, 0] * 5
    predicted = baselines.tfidf_logistic_regression(texts, labels, ["fine good", "awful"], 2)
    assert predicted.tolist() == [1, 0]
