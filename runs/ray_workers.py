"""Shards of a dataset run spread over Ray actors, one Worker each (one per GPU where the cluster has GPUs).

The actors only compute; the driver (runs.driver) keeps the folder's lock and writes every shard, so a shard Ray
runs again on a restarted actor is still written once, atomically. Ray is optional (requirements-ray.txt) and
imported only when a run asks for it.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
from typing import Callable

import torch

from families.collection import Item
from runs.worker import Worker

PROJECT = pathlib.Path(__file__).resolve().parent.parent  # what the actors import


@dataclasses.dataclass(frozen=True)
class RayOptions:
    """Where and how a run spreads over Ray: an existing cluster's address, or None for a local Ray started for the
    run; workers (actors; default: one per GPU of the cluster, else its CPUs over `threads`); torch threads each."""

    address: str | None = None
    workers: int | None = None
    threads: int = 1


class ShardActor:
    """A Ray actor's state: one Worker, so one model, loaded once and used for every shard sent to it."""

    def __init__(self, job: dict, device: str | None, threads: int):
        torch.set_num_threads(threads)
        self.worker = Worker(job, device)

    def model_key(self) -> str:
        return self.worker.model.key

    def shard_rows(self, k: int, items: list[Item]) -> tuple[int, list[dict]]:
        return k, self.worker.shard_rows(items)


def connect_ray(options: RayOptions) -> bool:
    """Join the cluster at options.address, or start a local Ray for the workers; True when this call started or
    joined it (the run then shuts it down), False when this process is connected already."""
    import ray

    if ray.is_initialized():
        return False
    # the actors import this project and read the data as this process does (on a cluster: the same paths), with
    # the same configuration and on the same CPU kernels
    env = {name: value for name, value in os.environ.items() if name.startswith("IG_") or name == "ATEN_CPU_CAPABILITY"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")]))
    local = {} if options.address else {"num_cpus": (options.workers or 2) * options.threads,
                                        "object_store_memory": 200 * 2**20, "include_dashboard": False}
    ray.init(address=options.address, runtime_env={"env_vars": env}, log_to_driver=False,
             logging_level="warning", **local)
    return True


class RayShards:
    """Shards explained by Ray actors, as they come back."""

    RETRIES = 2  # an actor that dies is restarted (its model loaded again) and its shard run again

    def __init__(self, job: dict, device: str | None, options: RayOptions):
        import ray

        self.ray = ray
        self.started = connect_ray(options)
        gpus = int(ray.cluster_resources().get("GPU", 0)) if device in (None, "cuda") else 0
        cpus = int(ray.cluster_resources().get("CPU", 1))
        count = options.workers or gpus or max(cpus // options.threads, 1)
        actor = ray.remote(ShardActor).options(num_cpus=options.threads, num_gpus=1 if gpus else 0,
                                               max_restarts=self.RETRIES, max_task_retries=self.RETRIES)
        self.actors = [actor.remote(job, device, options.threads) for _ in range(count)]
        self.model_key = ray.get(self.actors[0].model_key.remote())

    def explained(self, shards: list[list[Item]], pending: list[int], done: Callable[[int], object]):
        from ray.util import ActorPool

        pool = ActorPool(self.actors)
        for k, rows in pool.map_unordered(lambda actor, k: actor.shard_rows.remote(k, shards[k]), pending):
            done(len(shards[k]))
            yield k, rows

    def close(self) -> None:
        for actor in self.actors:
            self.ray.kill(actor)
        if self.started:
            self.ray.shutdown()
