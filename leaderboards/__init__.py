"""Reports built from run folders (installed as ``harness_leaderboards``): tables, plots, HTML."""
