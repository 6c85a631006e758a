"""Benchmarks: side-by-side ratios measured in one run (these machines are noisy)."""
