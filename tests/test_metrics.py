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


def _hand_pearson(x, y):
    n = len(x)
    mx, my = sum(x) / n, sum(y) / n
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y))
    vx = sum((a - mx) ** 2 for a in x)
    vy = sum((b - my) ** 2 for b in y)
    return cov / (vx * vy) ** 0.5


def test_regression_metrics_equal_hand_computations():
    from tfllm.evaluation.metrics import regression_metrics

    targets = [0.0, 1.0, 2.5, 2.5, 4.0, 5.0]
    predictions = [0.5, 0.8, 3.0, 2.0, 4.5, 4.0]
    result = regression_metrics(targets, predictions)
    errors = [p - t for p, t in zip(predictions, targets)]
    assert np.isclose(result["mse"], sum(e * e for e in errors) / 6)
    assert np.isclose(result["mae"], sum(abs(e) for e in errors) / 6)
    assert np.isclose(result["pearson"], _hand_pearson(targets, predictions))
    # Ranks by hand: the tied 2.5s share rank 3.5; predictions 0.5 0.8 3.0 2.0 4.5 4.0.
    assert np.isclose(result["spearman"], _hand_pearson([1, 2, 3.5, 3.5, 5, 6],
                                                        [1, 2, 4, 3, 6, 5]))
    assert regression_metrics([1.0, 2.0], [3.0, 3.0])["pearson"] == 0.0  # a constant guess
    assert np.isclose(regression_metrics([3, 1, 2], [30, 10, 20])["spearman"], 1.0)


def test_regression_baselines_on_small_cases():
    from tfllm.evaluation import baselines

    assert baselines.mean_target([1.0, 2.0, 6.0], [0, 0]).tolist() == [3.0, 3.0]
    assert baselines.pair_texts(["a", "b"], ["x", ""]) == ["a [SEP] x", "b"]
    texts = ["good great fine"] * 20 + ["bad awful poor"] * 20
    predicted = baselines.tfidf_ridge_regression(texts, [5.0] * 20 + [1.0] * 20,
                                                 ["great fine", "awful poor"])
    assert predicted[0] > 4.0 and predicted[1] < 2.0


def test_entities_follow_conlleval_for_bio_iob1_and_iobes():
    from tfllm.evaluation.entities import entities

    assert entities(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 2), ("LOC", 3, 4)]
    # An I- after O or after another type starts an entity (IOB1 and sloppy BIO).
    assert entities(["I-PER", "I-PER", "I-LOC", "O", "I-ORG"]) == [
        ("PER", 0, 2), ("LOC", 2, 3), ("ORG", 4, 5)]
    assert entities(["B-PER", "B-PER"]) == [("PER", 0, 1), ("PER", 1, 2)]
    # IOBES: S- is a one-word entity, E- closes one.
    assert entities(["S-LOC", "B-PER", "I-PER", "E-PER", "S-PER"]) == [
        ("LOC", 0, 1), ("PER", 1, 4), ("PER", 4, 5)]
    assert entities(["O", "O"]) == []


def test_entity_metrics_on_a_hand_computed_case():
    from tfllm.evaluation.entities import entity_metrics

    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]]
    predicted = [["B-PER", "I-PER", "O", "O"], ["B-ORG", "B-LOC"]]
    # correct: PER, ORG; predicted 4 (PER, ORG, LOC) -> 3; gold 3.
    result = entity_metrics(gold, predicted)
    assert np.isclose(result["precision"], 2 / 3) and np.isclose(result["recall"], 2 / 3)
    assert result["per_entity"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                           "support": 1}
    assert np.isclose(result["word_accuracy"], 4 / 6)
    # A boundary off by one word is wrong, as conlleval counts it.
    assert entity_metrics([["B-PER", "I-PER"]], [["B-PER", "O"]])["f1"] == 0.0


def test_most_frequent_tag_baseline():
    from tfllm.evaluation import baselines

    predicted = baselines.most_frequent_tag(
        [["Paris", "is", "very", "big"], ["Paris", "Hilton"]],
        [["B-LOC", "O", "O", "O"], ["B-LOC", "B-PER"]],
        [["Paris", "Hilton", "unseen"]])
    assert predicted == [["B-LOC", "B-PER", "O"]]
