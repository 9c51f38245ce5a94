"""The driver of a dataset run: it holds the run folder's lock, writes the manifest and every shard, atomically,
whether the shards are explained in this process (`LocalShards`) or on Ray actors (runs.ray_workers).

The items of the input are cut into shards of the job's shard_size items in input order; a shard is explained whole
and written atomically, so a run killed at any moment and started again with the same job computes only the shards
that are missing. The folder remembers its run (manifest.json): another job into it is refused. Items the family
refuses (an unreadable photo, an invalid SMILES) are stored with the reason and skipped.
"""
from __future__ import annotations

import datetime
import fcntl
import json
import pathlib
import platform
import time
from typing import Callable, Sequence

import pyarrow
import torch

from families.collection import Item
from families.registry import FAMILIES
from runs import store
from runs.job import check_policy, collection_of
from runs.ray_workers import RayOptions, RayShards
from runs.worker import Worker


def hold_lock(folder: pathlib.Path):
    """An exclusive lock on the folder for the run's life (the system drops it when the process dies)."""
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / ".lock", "w")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise store.RunConflict(f"another run is writing to {folder} now") from None
    return handle


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class LocalShards:
    """Shards explained one after another by one Worker in this process."""

    def __init__(self, job: dict, device: str | None):
        self.worker = Worker(job, device)
        self.model_key = self.worker.model.key

    def explained(self, shards: list[list[Item]], pending: list[int], done: Callable[[int], object]):
        for k in pending:
            yield k, self.worker.shard_rows(shards[k], done)

    def close(self) -> None:
        pass


def run(job: dict, out: pathlib.Path, command: Sequence[str], device: str | None = None,
        show_progress: bool = True, ray: RayOptions | None = None) -> dict:
    """Explain every item of the job's input into `out` (continuing the run there), in this process or on Ray
    actors; returns the manifest."""
    job = json.loads(json.dumps(job))  # as the manifest holds it, so a restart compares like with like
    out = pathlib.Path(out)
    lock = hold_lock(out)
    try:
        collection = collection_of(job)
        check_policy(job["targets"], collection, FAMILIES[job["family"]])
        items = collection.items()[:job["limit"]]
        size = job["shard_size"]
        shards = [items[k:k + size] for k in range(0, len(items), size)]
        backend = RayShards(job, device, ray) if ray else LocalShards(job, device)
        try:
            manifest = store.open_run(out, {
                "format": store.FORMAT, "version": store.VERSION, "job": job, "model_key": backend.model_key,
                "input_fingerprint": collection.fingerprint(), "command": list(command), "items": len(items),
                "shards": len(shards), "status": "running", "created": now(),
                "versions": {"python": platform.python_version(), "torch": torch.__version__,
                             "pyarrow": pyarrow.__version__}}, identity=("job", "model_key", "input_fingerprint"))
            start = time.perf_counter()
            write_shards(out, backend, shards, job["family"], show_progress)
        finally:
            backend.close()
        store.write_listing(out)
        manifest.update(status="complete", counts=store.counts(out), finished=now(),
                        seconds_last_session=round(time.perf_counter() - start, 3))
        store.write_manifest(out, manifest)
        return manifest
    finally:
        lock.close()


def write_shards(out: pathlib.Path, backend, shards: list[list[Item]], label: str, show_progress: bool) -> None:
    """Every shard not yet in the store, explained by the backend and written as it comes back, with a progress
    bar of items (items/s and the time left)."""
    from tqdm import tqdm

    done = store.finished_shards(out)
    pending = [k for k in range(len(shards)) if k not in done]
    total = sum(len(shard) for shard in shards)
    with tqdm(total=total, initial=total - sum(len(shards[k]) for k in pending), unit="item", desc=label,
              disable=not show_progress, mininterval=1.0) as bar:
        for k, rows in backend.explained(shards, pending, bar.update):
            store.write_shard(out, k, rows)
