"""Evaluation: task metrics, honest baselines on the same split, and plots."""
