"""The agent loop: policy interface, tool-call protocol, episode, rollout engine, limits."""
