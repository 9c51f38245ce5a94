"""Benchmarks of the engine against Captum and the bare model: ratios measured side by side
(python -m bench.run [--device cuda] [--quick])."""
