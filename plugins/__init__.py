"""Trainer plugins (installed as ``harness_plugins``), registered through the same hooks as
third-party plugins. The TRL SFT and curiosity-GRPO trainers land here."""
