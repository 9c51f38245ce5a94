"""runs.store: whole shards or none, a manifest that refuses another run, the documented schema."""
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from families.config import RUNS_DIR
from runs import store

pytestmark = pytest.mark.numeric

IDENTITY = ("job", "input_fingerprint")


def manifest(**job):
    return {"format": store.FORMAT, "version": store.VERSION, "job": job, "input_fingerprint": "abc",
            "command": ["python", "-m", "runs", "--steps", str(job.get("steps"))]}


def rows(first: int, count: int) -> list[dict]:
    return [{"item_index": k, "item_id": f"row {k}", "source": "C", "status": "explained", "target": k % 3}
            for k in range(first, first + count)]


def test_the_schema_is_the_documented_table():
    lines = store.__doc__.splitlines()
    rules = [k for k, line in enumerate(lines) if line.startswith("=====")]
    table = lines[rules[1] + 1:rules[2]]
    documented = [name for line in table if line and not line[0].isspace() for name in line.split("  ")[0].split(", ")]
    assert documented == store.SCHEMA.names


def test_shards_are_read_in_item_order_with_missing_columns_null(tmp_path):
    store.open_run(tmp_path, manifest(steps=8), IDENTITY)
    store.write_shard(tmp_path, 1, rows(4, 4))
    store.write_shard(tmp_path, 0, rows(0, 4))
    table = store.read(tmp_path)
    assert table.schema == store.SCHEMA
    assert table.column("item_index").to_pylist() == list(range(8))
    assert table.column("probability").null_count == 8
    assert store.finished_shards(tmp_path) == {0, 1}
    assert pq.read_schema(store.shard_path(tmp_path, 0)) == store.SCHEMA


def test_a_failed_write_leaves_neither_shard_nor_temporary(tmp_path):
    store.open_run(tmp_path, manifest(steps=8), IDENTITY)
    bad = rows(0, 2)
    bad[1]["item_index"] = "not a number"
    with pytest.raises(pa.ArrowInvalid):  # the row does not fit the schema: refused before anything is written
        store.write_shard(tmp_path, 0, bad)
    assert not list((tmp_path / store.SHARDS).iterdir())


def test_rewriting_a_shard_replaces_it_whole(tmp_path):
    store.open_run(tmp_path, manifest(steps=8), IDENTITY)
    store.write_shard(tmp_path, 0, rows(0, 4))
    store.write_shard(tmp_path, 0, rows(0, 2))
    assert store.read(tmp_path).num_rows == 2


def test_the_same_run_continues_and_its_temporaries_go(tmp_path):
    first = store.open_run(tmp_path, manifest(steps=8), IDENTITY)
    left_over = tmp_path / store.SHARDS / ".000003.parquet.123.tmp"
    left_over.write_bytes(b"half a shard")
    again = manifest(steps=8)
    again["command"] = ["another", "spelling"]  # the command's spelling is not the run's identity
    assert store.open_run(tmp_path, again, IDENTITY) == first
    assert not left_over.exists()


@pytest.mark.parametrize("change", ["job", "input_fingerprint"])
def test_another_run_into_the_folder_is_refused_saying_what_differs(tmp_path, change):
    store.open_run(tmp_path, manifest(steps=8), IDENTITY)
    other = manifest(steps=4) if change == "job" else {**manifest(steps=8), "input_fingerprint": "changed"}
    with pytest.raises(store.RunConflict) as refusal:
        store.open_run(tmp_path, other, IDENTITY)
    assert change in str(refusal.value) and "--steps 8" in str(refusal.value)
    assert json.loads((tmp_path / store.MANIFEST).read_text())["job"] == {"steps": 8}


def test_shards_without_a_manifest_are_refused(tmp_path):
    (tmp_path / store.SHARDS).mkdir()
    store.write_shard(tmp_path, 0, rows(0, 1))
    with pytest.raises(store.RunConflict, match="no manifest.json"):
        store.open_run(tmp_path, manifest(steps=8), IDENTITY)


def test_counts_count_items_by_status(tmp_path):
    store.open_run(tmp_path, manifest(steps=8), IDENTITY)
    store.write_shard(tmp_path, 0, rows(0, 2) + rows(1, 1) + [
        {"item_index": 2, "item_id": "row 2", "status": "refused", "error": "invalid SMILES"},
        {"item_index": 3, "item_id": "row 3", "status": "skipped", "error": "active on no task"}])
    assert store.counts(tmp_path) == {"rows": 5, "items": 4, "explained": 2, "refused": 1, "skipped": 1}


def test_pixel_maps_keep_float16_precision_relative_to_their_largest_pixel():
    rng = np.random.default_rng(0)
    scores = rng.normal(scale=1e-5, size=(7, 5))  # probability-sized attributions: float16 subnormals unscaled
    row = store.encode_pixel_map(scores)
    back = store.pixel_map(row)
    assert back.shape == (7, 5) and back.dtype == np.float32
    # float16 rounds to 2**-11 relative for scaled values above its smallest normal 2**-14, to 2**-25 absolute
    # below; float32's 2**-24 for the scaling back
    scale = np.abs(scores).max()
    bound = np.maximum(2.0 ** -11 * np.abs(scores), 2.0 ** -25 * scale) + 2.0 ** -23 * np.abs(scores)
    assert np.all(np.abs(back - scores) <= bound)
    assert np.all(store.pixel_map(store.encode_pixel_map(np.zeros((2, 3)))) == 0)


def test_listing_leaves_the_per_item_scores_out_and_reads_one_file_once_the_run_is_complete(tmp_path):
    store.open_run(tmp_path, manifest(steps=8, shard_size=4), IDENTITY)
    for shard in range(3):
        store.write_shard(tmp_path, shard, [dict(row, scores=[1.0, 2.0]) for row in rows(4 * shard, 4)])
    while_running = store.listing(tmp_path)
    assert list(while_running.columns) == store.LISTING_COLUMNS and "scores" not in while_running
    assert while_running.item_index.tolist() == list(range(12))
    store.write_listing(tmp_path)
    store.write_shard(tmp_path, 0, rows(0, 2))  # a shard changed behind the listing's back: seen while running
    assert len(store.listing(tmp_path)) == 10
    done = store.read_manifest(tmp_path) | {"status": "complete"}
    store.write_manifest(tmp_path, done)
    assert store.listing(tmp_path).equals(while_running)  # complete: the one file, as it was written


def test_item_rows_read_the_shards_that_hold_the_items(tmp_path):
    store.open_run(tmp_path, manifest(steps=8, shard_size=4), IDENTITY)
    for shard in range(3):
        store.write_shard(tmp_path, shard, [dict(row, scores=[float(row["item_index"])]) for row in rows(4 * shard, 4)])
    (tmp_path / "shards" / "000001.parquet").unlink()  # a shard the items do not need may be missing
    chosen = store.item_rows(tmp_path, [9, 2, 9])
    assert chosen.item_index.tolist() == [2, 9] and [list(s) for s in chosen.scores] == [[2.0], [9.0]]


def test_runs_are_listed_by_name_from_the_configured_folder_only(tmp_path, monkeypatch):
    monkeypatch.setenv(RUNS_DIR.name, str(tmp_path))
    for name, family in (("b-molecules", "molecules"), ("a-photos", "vision")):
        store.open_run(tmp_path / name, manifest(family=family), IDENTITY)
        store.write_shard(tmp_path / name, 0, rows(0, 2))
    store.open_run(tmp_path / "empty", manifest(family="vision"), IDENTITY)  # no shard yet: not offered
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{not json")
    assert list(store.list_runs()) == ["a-photos", "b-molecules"]
    assert list(store.list_runs("vision")) == ["a-photos"]
    assert store.runs_folder() == tmp_path


def test_a_folder_written_by_another_version_of_the_store_is_refused(tmp_path):
    store.open_run(tmp_path, manifest(steps=8), IDENTITY)
    old = store.read_manifest(tmp_path) | {"version": store.VERSION - 1}
    store.write_manifest(tmp_path, old)
    with pytest.raises(store.RunConflict, match="version"):
        store.open_run(tmp_path, manifest(steps=8), IDENTITY)


def test_a_run_stored_before_the_rather_than_column_still_reads_with_it_null(tmp_path):
    old_schema = store.SCHEMA.remove(store.SCHEMA.get_field_index("rather_than"))
    store.open_run(tmp_path, manifest(steps=8, shard_size=4), IDENTITY)
    for shard in range(2):
        old = pa.Table.from_pylist(rows(4 * shard, 4), schema=old_schema)
        pq.write_table(old, store.shard_path(tmp_path, shard))
    old_listing = pa.Table.from_pylist(rows(0, 8), schema=old_schema).drop_columns(list(store.PER_ITEM_COLUMNS))
    pq.write_table(old_listing, tmp_path / store.LISTING)
    while_running = store.listing(tmp_path)
    assert list(while_running.columns) == store.LISTING_COLUMNS and while_running.rather_than.isna().all()
    store.write_manifest(tmp_path, store.read_manifest(tmp_path) | {"status": "complete"})
    complete = store.listing(tmp_path)  # from the old listing file
    assert list(complete.columns) == store.LISTING_COLUMNS and complete.rather_than.isna().all()
    assert complete.item_index.tolist() == list(range(8))
    assert store.item_rows(tmp_path, [5]).rather_than.isna().all()
    assert store.read(tmp_path).schema == store.SCHEMA and store.counts(tmp_path)["explained"] == 8
