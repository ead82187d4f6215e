"""Interoperation: the lm-eval bridge and harness serve."""
