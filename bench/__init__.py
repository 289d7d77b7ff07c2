"""DR Console benchmarks: `python -m bench` (see bench/README.md).

Every figure is a median, a p95, a ratio or a count measured against a baseline taken in the
same run; nothing here checks an absolute time in a test.
"""
