"""Benchmarks: side-by-side ratios measured in one run (these machines are noisy)."""

import json
import os


def save(path, results):
    """Writes one benchmark's results as JSON (what `python -m benchmarks` reports)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(results, f, indent=2)
