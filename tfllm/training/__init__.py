"""Training: strategy selection, optimizers and schedules, tasks, the custom loop."""
