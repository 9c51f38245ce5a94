"""Benchmarks for issue 6: ratios measured side by side (python -m bench.run [--device cuda] [--quick])."""
