"""Experiments on top of the engine: replications and executors, compare, sweep, and saved folders read back."""
