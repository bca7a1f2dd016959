"""Benchmarks: `python -m bench.<name>`. Never collected by pytest."""
