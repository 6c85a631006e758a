"""SQuAD's exact match and F1, as the official evaluate-v2.0.py script computes them
(its answer normalisation: lower case, no punctuation, no articles, single spaces;
the best score over a question's gold answers; an unanswerable question scores 1
only for the empty answer), with the answerable and unanswerable questions also
reported apart. Hand-written: the script is not a package, and the `evaluate`
library would pull in a download at run time."""

import collections
import re
import string

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text):
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(gold, predicted):
    return float(normalize_answer(gold) == normalize_answer(predicted))


def token_f1(gold, predicted):
    gold_tokens = normalize_answer(gold).split()
    predicted_tokens = normalize_answer(predicted).split()
    if not gold_tokens or not predicted_tokens:  # no-answer on either side
        return float(gold_tokens == predicted_tokens)
    common = collections.Counter(gold_tokens) & collections.Counter(predicted_tokens)
    same = sum(common.values())
    if not same:
        return 0.0
    precision, recall = same / len(predicted_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_metrics(gold_answers, predictions):
    """`gold_answers`: per question, its answer texts ([] when unanswerable);
    `predictions`: per question, the predicted text ("" for no answer). Returns
    exact and f1 (0-1) over all questions, and has_answer_* / no_answer_* apart."""
    rows = []
    for answers, predicted in zip(gold_answers, predictions):
        golds = [a for a in answers if normalize_answer(a)] or [""]
        rows.append((bool(answers), max(exact_match(g, predicted) for g in golds),
                     max(token_f1(g, predicted) for g in golds)))
    metrics = {"questions": len(rows)}
    for name, keep in (("", lambda answerable: True),
                       ("has_answer_", lambda answerable: answerable),
                       ("no_answer_", lambda answerable: not answerable)):
        chosen = [(em, f1) for answerable, em, f1 in rows if keep(answerable)]
        if name:
            metrics[f"{name}questions"] = len(chosen)
        if chosen:
            metrics[f"{name}exact"] = sum(em for em, _ in chosen) / len(chosen)
            metrics[f"{name}f1"] = sum(f1 for _, f1 in chosen) / len(chosen)
    return metrics
