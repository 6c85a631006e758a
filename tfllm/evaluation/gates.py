"""Quality gates: a metric compared with a baseline of the same evaluation, with a
margin or a ratio, e.g. `accuracy >= unigram + 0.10` or `perplexity <= 0.75 * bigram`.

TFX's Evaluator expresses the same thing as a value threshold plus a change
threshold against a baseline model; here the reference is any entry of the
evaluation's results (a baseline fitted on the same split) or a number.
"""

import dataclasses
import operator
import re

from tfllm.errors import ConfigError

_NUMBER = r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_GATE = re.compile(
    rf"^\s*(?P<metric>[A-Za-z_]\w*)\s*(?P<op>>=|<=|>|<)\s*"
    rf"(?:(?P<factor>{_NUMBER})\s*\*\s*)?"
    rf"(?P<reference>[A-Za-z_]\w*|{_NUMBER})\s*"
    rf"(?:(?P<sign>[+-])\s*(?P<margin>{_NUMBER}))?\s*$")
_OPERATORS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}


@dataclasses.dataclass(frozen=True)
class Gate:
    """`metric op factor * reference + margin`; `reference` is a results entry or a number."""

    text: str
    metric: str
    op: str
    reference: str
    factor: float = 1.0
    margin: float = 0.0

    @classmethod
    def parse(cls, text):
        match = _GATE.match(text)
        if not match:
            raise ConfigError(
                f"Cannot read the gate {text!r}: write METRIC OP [FACTOR *] REFERENCE "
                "[+|- MARGIN], with OP one of >=, >, <=, <, and REFERENCE a baseline of the "
                "evaluation or a number, e.g. 'accuracy >= unigram + 0.10' or "
                "'perplexity <= 0.75 * bigram'.")
        margin = float(match["margin"] or 0.0) * (-1 if match["sign"] == "-" else 1)
        return cls(" ".join(text.split()), match["metric"], match["op"], match["reference"],
                   float(match["factor"] or 1.0), margin)

    def check(self, results):
        """This gate on `results` ({"model": metrics, baseline: metrics, ...}): a dict
        with the model's value, the reference's, the bound and whether it passed."""
        value = _metric(results, "model", self.metric)
        try:
            reference = float(self.reference)
        except ValueError:
            reference = _metric(results, self.reference, self.metric)
        bound = self.factor * reference + self.margin
        return {"gate": self.text, "value": value, "reference": reference, "bound": bound,
                "passed": bool(_OPERATORS[self.op](value, bound))}


def _metric(results, name, metric):
    if name not in results:
        raise ConfigError(f"The evaluation has no baseline {name!r} to gate on; it has "
                          f"{', '.join(sorted(results))}.")
    value = results[name].get(metric)
    if not isinstance(value, (int, float)):
        known = sorted(k for k, v in results[name].items() if isinstance(v, (int, float)))
        raise ConfigError(f"The evaluation's {name!r} results have no metric {metric!r}; "
                          f"they have {', '.join(known)}.")
    return float(value)


def reason(outcome):
    """Why a failed gate refuses, in words."""
    return (f"{outcome['gate']} failed: {outcome['value']:.4f} against a bound of "
            f"{outcome['bound']:.4f}")
