"""Hyper-parameter search (`tunesmith tune`): Optuna over normal tunesmith runs."""
