"""Benchmarks: figures to take before and after a change to a hot path (not tests; see README.md)."""
