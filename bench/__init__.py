"""Benchmarks that measure a running Parley server from outside, the way design/BENCHMARKS.md describes."""
