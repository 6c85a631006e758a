"""Entity-level precision, recall and F1 of tag sequences, as conlleval (CoNLL-2003's
scorer) and seqeval's default mode count them: BIO, IOB1 and IOBES tags, an entity
correct only when its type and both boundaries are. Written here because seqeval is
a scikit-learn-era package outside this stack, and the rules are a few lines."""

import collections


def _split(tag):
    if tag in ("O", ""):
        return "O", ""
    prefix, _, kind = tag.partition("-")
    return (prefix, kind) if kind else ("I", prefix)  # a bare "PER" reads as I-PER


def _ends(previous, tag, previous_type, kind):
    return (previous in ("E", "S")
            or (previous == "B" and tag in ("B", "S", "O"))
            or (previous == "I" and tag in ("B", "S", "O"))
            or (previous != "O" and previous_type != kind))


def _starts(previous, tag, previous_type, kind):
    return (tag in ("B", "S")
            or (previous in ("E", "S", "O") and tag in ("E", "I"))
            or (tag != "O" and previous_type != kind))


def entities(tags):
    """[(type, first word, last word + 1)] of one sentence's tags."""
    found, start, previous, previous_type = [], None, "O", ""
    for index, tag in enumerate(list(tags) + ["O"]):
        prefix, kind = _split(tag)
        if start is not None and _ends(previous, prefix, previous_type, kind):
            found.append((previous_type, start, index))
            start = None
        if _starts(previous, prefix, previous_type, kind) and prefix != "O":
            start = index
        previous, previous_type = prefix, kind
    return found


def entity_metrics(gold_sentences, predicted_sentences):
    """Micro precision/recall/F1 over all entities, and per entity type."""
    counts = collections.defaultdict(lambda: [0, 0, 0])  # correct, predicted, gold
    for gold_tags, predicted_tags in zip(gold_sentences, predicted_sentences):
        gold, predicted = set(entities(gold_tags)), set(entities(predicted_tags))
        for kind, *_ in gold:
            counts[kind][2] += 1
        for entity in predicted:
            counts[entity[0]][1] += 1
            counts[entity[0]][0] += entity in gold

    def scores(correct, predicted, gold):
        precision = correct / predicted if predicted else 0.0
        recall = correct / gold if gold else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return {"precision": precision, "recall": recall, "f1": f1, "support": gold}

    total = [sum(c[i] for c in counts.values()) for i in range(3)]
    words = sum(len(t) for t in gold_sentences)
    right = sum(g == p for gs, ps in zip(gold_sentences, predicted_sentences)
                for g, p in zip(gs, ps))
    return {**{k: v for k, v in scores(*total).items() if k != "support"},
            "word_accuracy": right / words if words else 0.0,
            "per_entity": {kind: scores(*c) for kind, c in sorted(counts.items())}}
