"""Dataset runs: explain a whole collection into a Parquet results store, locally or on Ray, and compare runs.
Knows the family contract, never a family's classes."""
