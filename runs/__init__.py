"""Dataset runs: explain a whole collection into a Parquet results store, locally or on Ray, and compare runs.
Knows the family contract, never a family's classes: `runner` (the command line, also `python -m runs`), `job`
(what a run's job decides), `worker` (a shard's items into rows), `driver` (the lock, the manifest and the shards
written), `ray_workers` (shards on Ray actors), `store` (the results store), `comparison` (two runs side by side)."""
