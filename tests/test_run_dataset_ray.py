"""A dataset run on Ray: the same job on a local Ray cluster of 2 workers gives the local run's rows, each once,
even when an actor dies with a shard in flight and Ray runs the shard again."""
import pandas as pd
import pyarrow as pa
import pytest
import ray

from runs import store
from runs.job import collection_of
from runs.ray_workers import RayOptions, RayShards, connect_ray
from runs.runner import job_of, main, parse_args

pytestmark = pytest.mark.numeric

TIMINGS = ["seconds_parse", "seconds_scan"]
WORKERS = RayOptions(workers=2, threads=1)


def job_args(data, out):
    return ["--family", "molecules", "--input", str(data / "molecules" / "tox21_moleculenet.csv"), "--model", "w2n2",
            "--targets", "actives", "--rule", "gauss-legendre", "--steps", "8", "--limit", "60", "--shard-size", "8",
            "--batch-items", "4", "--threads", "1", "--quiet", "--out", str(out)]


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray of 2 CPUs for the module (a start costs seconds); the runs join it and leave it running."""
    assert connect_ray(WORKERS)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def local_rows(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "run"
    assert main(job_args(shared_data, out)) == 0
    return store.read(out).to_pandas().drop(columns=TIMINGS)


# Tolerance zero: each actor runs the local run's code (Worker.shard_rows) on the same shards, grouped the same way,
# with one torch thread and the driver's CPU kernels (ATEN_CPU_CAPABILITY travels with the job), so every float32
# operation repeats in the same order. Actors on other machines' CPUs would round differently (float32 rounding).
def test_two_ray_workers_give_the_local_rows_each_once(local_ray, local_rows, shared_data, tmp_path):
    out = tmp_path / "ray"
    assert main(job_args(shared_data, out) + ["--ray", "--workers", "2"]) == 0
    rows = store.read(out).to_pandas().drop(columns=TIMINGS)
    assert sorted(set(rows.item_index)) == list(range(60))
    assert not rows.duplicated(["item_index", "target"]).any()
    pd.testing.assert_frame_equal(rows, local_rows, check_exact=True)
    manifest = store.read_manifest(out)
    assert manifest["status"] == "complete" and manifest["counts"]["items"] == 60


def test_a_shard_whose_actor_dies_runs_again_and_comes_back_once(local_ray, local_rows, shared_data, tmp_path):
    job = job_of(parse_args(job_args(shared_data, tmp_path / "unused")))
    items = collection_of(job).items()[:60]
    shards = [items[k:k + 8] for k in range(0, 60, 8)]
    backend = RayShards(job, "cpu", WORKERS)
    try:
        returned = backend.explained(shards, list(range(len(shards))), lambda n: None)
        first = next(returned)  # both actors hold a shard now: kill one mid-shard, allowing Ray to restart it
        ray.kill(backend.actors[0], no_restart=False)
        results = [first, *returned]
    finally:
        backend.close()
    assert sorted(k for k, _ in results) == list(range(len(shards)))
    rows = pa.Table.from_pylist([row for _, shard in sorted(results, key=lambda r: r[0]) for row in shard],
                                schema=store.SCHEMA).to_pandas()
    pd.testing.assert_frame_equal(rows.drop(columns=TIMINGS), local_rows, check_exact=True)
