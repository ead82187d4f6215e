"""Reports built from run folders (installed as ``harness_leaderboards``): a pure function of files.

- ``load``: read run folders / results files / globs; bad files become warnings naming them.
- ``analytics``: crops vs target boxes (IoU, coverage) and key frames, from samples.jsonl.
- ``tables``: pandas tables (model x task, tool use, breakdowns) and the published reference rows.
- ``plots``: matplotlib (Agg) PNGs; ``trainlog``: training logs for the training plots.
- ``report`` / ``html``: the report value and its Markdown, CSV, JSON and self-contained HTML.
- ``build``: ``harness leaderboard``; ``viewer``: ``harness view``; ``rescore``: ``harness rescore``.
- ``breakdowns``: the built-in ``harness_leaderboard_sections`` plugin (per-task breakdown tables).

Nothing here is imported by ``import harness``; pandas and matplotlib load only when a report is made.
"""
