"""Runs: evaluate, run-folder I/O, shards, merge, accelerate launch, the run-folder lock."""
