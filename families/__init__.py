"""The model families: the contract every family adapts its domain to (`contract`), their registry by name
(`registry`), checkpoints and the configuration read from IG_* variables; one package per family (vision,
molecules, language, tabular) with its domain code, adapter, training and evaluation."""
