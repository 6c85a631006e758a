"""Quality gates: parsing, bounds with margins and ratios, and clear errors."""

import pytest

from tfllm.errors import ConfigError
from tfllm.evaluation.gates import Gate, reason

RESULTS = {"model": {"accuracy": 0.20, "perplexity": 120.0},
           "unigram": {"accuracy": 0.05},
           "bigram": {"perplexity": 170.0}}


@pytest.mark.parametrize("text, bound, passed", [
    ("accuracy >= unigram + 0.10", 0.15, True),
    ("accuracy>=unigram+0.16", 0.21, False),
    ("accuracy > unigram - 0.01", 0.04, True),
    ("perplexity <= 0.75 * bigram", 127.5, True),
    ("perplexity<=0.7*bigram", 119.0, False),
    ("perplexity < 120", 120.0, False),  # strict: a tie does not pass
    ("perplexity <= 120", 120.0, True),
    ("accuracy >= 2 * unigram", 0.10, True),
    ("accuracy >= 1e-1", 0.1, True),
])
def test_a_gate_compares_the_model_with_its_bound(text, bound, passed):
    outcome = Gate.parse(text).check(RESULTS)
    assert outcome["bound"] == pytest.approx(bound)
    assert outcome["passed"] is passed
    assert outcome["value"] == RESULTS["model"][Gate.parse(text).metric]
    assert outcome["gate"] == " ".join(text.split())


def test_a_failed_gate_says_by_how_much():
    outcome = Gate.parse("perplexity <= 0.7 * bigram").check(RESULTS)
    assert reason(outcome) == ("perplexity <= 0.7 * bigram failed: 120.0000 against a bound "
                               "of 119.0000")


@pytest.mark.parametrize("text", ["accuracy", "accuracy => unigram", "accuracy >= unigram +",
                                  ">= unigram", "accuracy >= uni gram", "accuracy >= -1"])
def test_a_gate_that_cannot_be_read_is_a_config_error(text):
    with pytest.raises(ConfigError, match="Cannot read the gate .* METRIC OP"):
        Gate.parse(text)


@pytest.mark.parametrize("text, message", [
    ("accuracy >= trigram", "no baseline 'trigram' to gate on; it has bigram, model, unigram"),
    ("perplexity <= unigram", "'unigram' results have no metric 'perplexity'; they have "
                              "accuracy"),
    ("f1 >= 0.5", "'model' results have no metric 'f1'"),
])
def test_a_gate_on_a_missing_baseline_or_metric_names_what_there_is(text, message):
    with pytest.raises(ConfigError, match=message):
        Gate.parse(text).check(RESULTS)
