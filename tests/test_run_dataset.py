"""python -m runs: a collection explained into the results store, every item exactly once, even when killed."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch
from rdkit import Chem

from families.language import load_language_model
from families.language.collection import TextWindows
from families.language.ptb import read_words
from families.molecules.collection import MoleculeTable
from families.registry import FAMILIES
from families.vision.collection import PhotoFolder
from ig_core import AttributionEngine, Contrast, ScanSettings
from runs import store
from runs.job import NOTHING_TO_CONTRAST, check_policy, choose_targets, no_target_reason
from runs.runner import main

pytestmark = pytest.mark.numeric

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASKS = ["NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma", "SR-ARE",
         "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53"]
# sums in float64 of the same float32 attributions in another order (per atom, word or pixel, then all; or all at
# once) differ by float64 rounding, ~1e-16 of the terms: 1e-9 leaves room for terms that cancel a million-fold
SUM_RTOL = 1e-9
TIMINGS = ["seconds_parse", "seconds_scan"]


def molecule_args(data, out, *extra):
    return ["--family", "molecules", "--input", str(data / "molecules" / "tox21_moleculenet.csv"), "--model",
            "w2n2", "--targets", "actives", "--rule", "gauss-legendre", "--steps", "8", "--limit", "200",
            "--shard-size", "16", "--quiet", "--out", str(out), *extra]


@pytest.fixture(scope="module")
def molecule_run(shared_data, tmp_path_factory, single_thread):
    out = tmp_path_factory.mktemp("runs") / "tox21"
    assert main(molecule_args(shared_data, out)) == 0
    return out


def frame(out) -> pd.DataFrame:
    return store.read(out).to_pandas()


def assert_scores_add_up(rows: pd.DataFrame, totals: list[float]) -> None:
    """The domain's units hold the whole attribution: sum(scores) = F(input) - F(baseline) + delta."""
    expected = rows.score_input - rows.score_baseline + rows.delta
    np.testing.assert_allclose(totals, expected, rtol=SUM_RTOL, atol=0)


def test_200_molecules_every_active_task_explained_atom_by_atom_and_bond_by_bond(molecule_run, shared_data):
    table = store.read(molecule_run)
    assert table.schema == store.SCHEMA
    rows = table.to_pandas()
    labels = pd.read_csv(shared_data / "molecules" / "tox21_moleculenet.csv", nrows=200)
    actives = [[task for task in TASKS if row[task] == 1] for _, row in labels.iterrows()]
    assert sorted(set(rows.item_index)) == list(range(200))
    explained = rows[rows.status == "explained"]
    assert [list(group.target_name) for _, group in explained.groupby("item_index")] == [a for a in actives if a]
    assert (explained.chosen_as == "active").all() and (explained.target_truth == 1).all()
    assert explained.source.tolist() == [labels.smiles[k] for k in explained.item_index]
    skipped = rows[rows.status == "skipped"]
    assert skipped.item_index.tolist() == [k for k, a in enumerate(actives) if not a]
    assert skipped.target.isna().all() and (skipped.error == "active on no task of the model").all()
    for _, row in explained.iterrows():
        mol = Chem.MolFromSmiles(row.source)
        assert len(row.score_names) == mol.GetNumAtoms() + mol.GetNumBonds() + 1  # and "non-bonded pairs"
    assert_scores_add_up(explained, [sum(s) for s in explained.scores])
    assert ((explained.probability > 0) & (explained.probability < 1)).all()
    # F is the log-odds and the probability column its sigmoid: the same float32 logits from batches of other sizes
    # (a few hundred roundings, each 2**-24 relative), through a sigmoid whose slope is at most 1/4
    np.testing.assert_allclose(explained.probability, 1 / (1 + np.exp(-explained.score_input)), rtol=0, atol=1e-5)
    assert (explained.points_evaluated == 10).all()  # 8 Gauss-Legendre nodes and the two ends
    manifest = store.read_manifest(molecule_run)
    assert manifest["status"] == "complete" and manifest["items"] == 200 and manifest["shards"] == 13
    assert manifest["counts"] == {"rows": len(rows), "items": 200, "explained": explained.item_index.nunique(),
                                  "refused": 0, "skipped": len(skipped)}
    assert manifest["job"]["settings"]["rule"] == "gauss-legendre" and manifest["job"]["targets"] == "actives"


def test_a_run_killed_half_way_and_restarted_gives_the_same_rows_none_twice(molecule_run, shared_data, tmp_path):
    out = tmp_path / "killed"
    args = molecule_args(shared_data, out)
    env = {**os.environ, "PYTHONPATH": ROOT}
    child = subprocess.Popen([sys.executable, "-m", "runs", *args, "--threads", "1"], cwd=ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        while child.poll() is None and len(store.finished_shards(out) if out.exists() else ()) < 3:
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        _, errors = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, errors.decode()[-2000:]
    assert 3 <= len(store.finished_shards(out)) < 13 and store.read_manifest(out)["status"] == "running"
    (out / store.SHARDS / ".000012.parquet.999.tmp").write_bytes(b"half a shard")  # what a kill mid-write leaves

    assert main(args) == 0
    assert not list((out / store.SHARDS).glob(".*"))
    restarted, uninterrupted = frame(out), frame(molecule_run)
    assert not restarted.duplicated(["item_index", "target"]).any()
    pd.testing.assert_frame_equal(restarted.drop(columns=TIMINGS), uninterrupted.drop(columns=TIMINGS),
                                  check_exact=True)

    written = {path: path.stat().st_mtime_ns for path in (out / store.SHARDS).iterdir()}
    assert main(args) == 0  # a finished run started again computes nothing
    assert {path: path.stat().st_mtime_ns for path in (out / store.SHARDS).iterdir()} == written


def test_another_command_into_the_folder_is_refused(molecule_run, shared_data, capsys):
    before = store.read_manifest(molecule_run)
    assert main(molecule_args(shared_data, molecule_run)[:-2] + ["--steps", "4", "--out", str(molecule_run)]) == 2
    message = capsys.readouterr().err
    assert "holds another run" in message and '"steps": 8' in message and '"steps": 4' in message
    assert store.read_manifest(molecule_run) == before


def test_invalid_molecules_are_recorded_with_their_reason_and_the_run_goes_on(tmp_path, single_thread):
    csv = tmp_path / "few.csv"
    csv.write_text("name,SMILES,NR-AR\nethanol,CCO,1\nopen ring,C1CC,1\nempty,,1\nbenzene,c1ccccc1,0\n"
                   "acetic acid,CC(=O)O,1\n")
    out = tmp_path / "run"
    assert main(["--family", "molecules", "--input", str(csv), "--smiles-column", "SMILES", "--targets", "actives",
                 "--rule", "gauss-legendre", "--steps", "4", "--shard-size", "2", "--quiet", "--out", str(out)]) == 0
    rows = frame(out).set_index("item_id")
    assert rows.status.to_dict() == {"row 0": "explained", "row 1": "refused", "row 2": "refused",
                                     "row 3": "skipped", "row 4": "explained"}
    assert rows.loc[["row 1", "row 2"], "error"].str.len().gt(0).all()
    assert rows.loc[["row 1", "row 2"], "target"].isna().all()
    assert (rows.loc[["row 0", "row 4"], "target_name"] == "NR-AR").all()


def test_an_sdf_is_read_record_by_record_with_its_properties_as_labels(tmp_path, single_thread):
    sdf = tmp_path / "few.sdf"
    with Chem.SDWriter(str(sdf)) as writer:
        for smiles, active in (("CCO", "1"), ("c1ccccc1O", "0")):
            mol = Chem.MolFromSmiles(smiles)
            mol.SetProp("SR-p53", active)
            writer.write(mol)
    with open(sdf, "a") as f:
        f.write("not a molecule\n\n\n  garbage\nM  END\n$$$$\n")
    out = tmp_path / "run"
    assert main(["--family", "molecules", "--input", str(sdf), "--targets", "actives", "--rule", "gauss-legendre",
                 "--steps", "4", "--quiet", "--out", str(out)]) == 0
    rows = frame(out)
    assert rows.item_id.tolist() == ["record 0", "record 1", "record 2"]
    assert rows.status.tolist() == ["explained", "skipped", "refused"]
    assert rows.target_name[0] == "SR-p53" and rows.source[0] == "CCO"
    assert "record 2" in rows.error[2]


def test_20_photos_predicted_and_true_class_from_one_scan(shared_data, tmp_path, single_thread):
    photos = PhotoFolder(shared_data / "imagenet_samples").items()[:20]
    folder = tmp_path / "photos"
    (folder / "images").mkdir(parents=True)
    for item in photos:
        os.symlink(item.raw, folder / item.id)
    (folder / "images" / "broken.JPEG").write_bytes(b"\xff\xd8 not really a jpeg")
    labels = pd.read_csv(shared_data / "imagenet_samples" / "labels.csv").iloc[:20]
    broken = pd.DataFrame([{"file": "images/broken.JPEG", "class_index": 0, "class_name": "tench"}])
    pd.concat([labels, broken]).to_csv(folder / "labels.csv", index=False)
    out = tmp_path / "run"
    assert main(["--family", "vision", "--input", str(folder), "--model", "mobilenet_v2", "--targets", "both",
                 "--rule", "gauss-legendre", "--steps", "2", "--shard-size", "8", "--quiet", "--out", str(out)]) == 0
    table = store.read(out)
    assert table.schema == store.SCHEMA
    rows = table.to_pandas()
    refused = rows[rows.status == "refused"]
    assert refused.item_id.tolist() == ["images/broken.JPEG"] and refused.error.str.len().gt(0).all()
    explained = rows[rows.status == "explained"]
    truth = dict(zip(labels.file, labels.class_index))
    for item_id, group in explained.groupby("item_id", sort=False):
        (predicted,), (true,) = set(group.predicted), set(group.truth)
        assert true == truth[item_id]
        expected = ([(predicted, "predicted+truth")] if predicted == true
                    else [(predicted, "predicted"), (true, "truth")])
        assert list(zip(group.target, group.chosen_as)) == expected
        assert group.target_truth.tolist() == [float(t == true) for t in group.target]
        (rank,) = set(group.truth_rank)
        assert (rank == 1) == (predicted == true) and rank >= 1
    assert explained.item_id.nunique() == 20
    assert explained.gradient_scores.isna().all()  # photos keep one map, of the method's scores
    maps = [store.pixel_map(row) for row in explained.to_dict("records")]
    assert all(m.shape == (224, 224) for m in maps)
    # float16 keeps 2**-11 of each scaled pixel above its smallest normal and 2**-25 of the scale below; the
    # float32 sum of the three colour channels rounds 256 times finer
    bounds = [np.maximum(2.0 ** -11 * np.abs(m), 2.0 ** -25 * scale).sum()
              for m, scale in zip(maps, explained.map_scale)]
    expected = explained.score_input - explained.score_baseline + explained.delta
    assert np.all(np.abs(np.array([m.astype(np.float64).sum() for m in maps]) - expected) <= bounds)


def test_200_text_windows_explain_the_word_that_follows(shared_data, tmp_path, single_thread):
    text = shared_data / "ptb" / "ptb.test.txt"
    out = tmp_path / "run"
    assert main(["--family", "language", "--input", str(text), "--targets", "next_word", "--text-format", "tokens",
                 "--window", "20", "--limit", "200", "--rule", "gauss-legendre", "--steps", "4", "--quiet",
                 "--out", str(out)]) == 0
    table = store.read(out)
    assert table.schema == store.SCHEMA
    rows = table.to_pandas()
    words = read_words(text)
    vocab = load_language_model().vocab
    assert rows.item_id.tolist() == [f"tokens {20 * k}-{20 * k + 20}" for k in range(200)]
    assert rows.source.tolist() == [" ".join(words[20 * k:20 * k + 20]) for k in range(200)]
    assert (rows.status == "explained").all() and (rows.chosen_as == "next_word").all()
    assert rows.target.tolist() == rows.truth.tolist() == [vocab.id(words[20 * k + 20]) for k in range(200)]
    assert rows.target_name.tolist() == [vocab.words[vocab.id(words[20 * k + 20])] for k in range(200)]
    assert [len(names) for names in rows.score_names] == [20] * 200
    assert rows.score_names[0][1] == f"2 {words[1]}"
    assert_scores_add_up(rows, [sum(s) for s in rows.scores])
    assert rows.target_truth.eq(1).all()
    # the same float32 softmax of the same logits, from batches of other sizes: float32 rounding of a few hundred
    # operations, each 2**-24 relative
    np.testing.assert_allclose(rows.probability, rows.score_input, rtol=1e-5)
    assert ((rows.truth_rank == 1) == (rows.predicted == rows.truth)).all()
    # gradient x input per word, read off the run's scan, is the Language family's own gradient row: the same
    # float32 gradient at the text from batches of other sizes
    family = FAMILIES["language"]
    model = family.load(family.sources()[0], torch.device("cpu"))
    windows = TextWindows(text, window=20, stride=20, text_format="tokens")
    for item, row in zip(windows.items()[:3], rows.itertuples()):
        explanation = family.explain(AttributionEngine("cpu"), model, windows.parse(family, model, item), [row.target],
                                     ScanSettings(rule="gauss-legendre", steps=4))
        expected = explanation.gradient_x_input[0]
        np.testing.assert_allclose(row.gradient_scores, expected, rtol=0,
                                   atol=GRADIENT_BATCH_RTOL * np.abs(expected).sum())


def test_policies_that_the_input_cannot_serve_are_refused_before_any_work(shared_data):
    photos, molecules = PhotoFolder(shared_data / "imagenet_samples"), MoleculeTable(shared_data / "x.csv")
    vision, chemistry = FAMILIES["vision"], FAMILIES["molecules"]
    with pytest.raises(ValueError, match="actives"):
        check_policy("actives", photos, vision)
    with pytest.raises(ValueError, match="one label per task"):
        check_policy("truth", molecules, chemistry)
    with pytest.raises(ValueError, match="text windows"):
        check_policy("next_word", photos, vision)
    check_policy("contrast", photos, vision)
    with pytest.raises(ValueError, match="the tabular family offers no contrasts"):
        check_policy("contrast", photos, FAMILIES["tabular"])
    # molecules contrast tasks, yet a molecule CSV holds one label per task, not one true target to contrast with
    with pytest.raises(ValueError, match="contrast needs one true target per item.*serves predicted, actives$"):
        check_policy("contrast", molecules, chemistry)


def test_the_contrast_policy_is_refused_for_a_molecule_csv_before_any_run_starts(shared_data, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(molecule_args(shared_data, out)[:6] + ["--targets", "contrast", "--quiet", "--out", str(out)]) == 2
    assert "contrast needs one true target per item" in capsys.readouterr().err
    assert store.read_manifest(out) is None


def test_target_policies():
    assert choose_targets("both", 3, 3, []) == [(3, "predicted+truth")]
    assert choose_targets("both", 3, 5, []) == [(3, "predicted"), (5, "truth")]
    assert choose_targets("truth", 3, None, []) == []
    assert choose_targets("actives", 3, None, [1, 4]) == [(1, "active"), (4, "active")]
    assert choose_targets("predicted", 3, None, [1]) == [(3, "predicted")]
    assert choose_targets("contrast", 3, 5, []) == [(Contrast(3, 5), "contrast")]
    assert choose_targets("contrast", 3, 3, []) == [] and no_target_reason("contrast", 3, 3) == NOTHING_TO_CONTRAST
    assert choose_targets("contrast", 3, None, []) == []
    assert no_target_reason("contrast", 3, None) == "no ground truth the model can explain"


BATCHED_JOBS = {
    "molecules": ["--family", "molecules", "--input", "molecules/tox21_moleculenet.csv", "--targets", "actives",
                  "--limit", "60"],
    "windows": ["--family", "language", "--input", "ptb/ptb.test.txt", "--targets", "next_word", "--text-format",
                "tokens", "--limit", "40"],
    "photos": ["--family", "vision", "--input", "imagenet_samples", "--model", "mobilenet_v2", "--targets", "both",
               "--limit", "3"],
}
# F and the attributions come from float32 passes over batches of other shapes (items stacked, molecules padded),
# whose reductions round in another order: a few hundred operations of 2**-24 each, relative to the terms
BATCH_RTOL = 1e-5
# the gradient at a window's word (gradient x input) passes back through up to 20 steps of both 200-unit layers of
# the shipped LSTM, each step a sum over the hidden units: 20 * 2 * 200 roundings of 2**-24, relative to the terms
GRADIENT_BATCH_RTOL = 20 * 2 * 200 * 2.0**-24


@pytest.mark.parametrize("kind", BATCHED_JOBS)
def test_items_explained_together_give_the_rows_of_items_explained_one_at_a_time(kind, shared_data, tmp_path,
                                                                                   single_thread):
    args = [str(shared_data / a) if a == BATCHED_JOBS[kind][3] else a for a in BATCHED_JOBS[kind]]
    runs = {}
    for batch in (1, 16):
        out = tmp_path / str(batch)
        assert main(args + ["--rule", "gauss-legendre", "--steps", "4", "--batch-items", str(batch), "--quiet",
                            "--out", str(out)]) == 0
        runs[batch] = frame(out)
    alone, together = runs[1], runs[16]
    floats = ["score_input", "score_baseline", "delta", "relative_delta", "probability", "scores", "pixel_map",
              "map_scale", "gradient_scores"]
    pd.testing.assert_frame_equal(alone.drop(columns=floats + TIMINGS), together.drop(columns=floats + TIMINGS),
                                  check_exact=True)
    explained = alone.status == "explained"
    a, b = alone[explained], together[explained]
    if kind == "photos":
        sizes = [np.abs(store.pixel_map(row)).sum() for row in a.to_dict("records")]
        differences = [np.abs(store.pixel_map(x) - store.pixel_map(y)).max()
                       for x, y in zip(a.to_dict("records"), b.to_dict("records"))]
    else:
        sizes = [np.abs(s).sum() for s in a.scores]
        differences = [np.abs(np.subtract(x, y)).max() for x, y in zip(a.scores, b.scores)]
        gradient_sizes = [np.abs(s).sum() for s in a.gradient_scores]
        assert all(np.abs(np.subtract(x, y)).max() <= GRADIENT_BATCH_RTOL * size
                   for x, y, size in zip(a.gradient_scores, b.gradient_scores, gradient_sizes))
    assert np.all(np.array(differences) <= BATCH_RTOL * np.array(sizes))
    scales = {name: terms_of_f(kind, a, name) for name in ("score_input", "score_baseline")}
    for name, scale in scales.items():
        assert np.all(np.abs(b[name] - a[name]) <= BATCH_RTOL * scale), name
    # the probability is F where F is a softmax output; a molecule's is the sigmoid of its log-odds, whose slope is
    # at most 1/4: it moves by at most a quarter of the log-odds' rounding
    probability_scale = scales["score_input"] / 4 if kind == "molecules" else np.abs(a.probability.to_numpy())
    assert np.all(np.abs(b.probability - a.probability) <= BATCH_RTOL * probability_scale)
    # delta is F(input) - F(baseline) subtracted from the attributions' sum: its rounding is that of its terms
    terms = scales["score_input"] + scales["score_baseline"] + np.array(sizes)
    assert np.all(np.abs(b.delta - a.delta) <= BATCH_RTOL * terms)


def terms_of_f(kind: str, rows: pd.DataFrame, name: str) -> np.ndarray:
    """The size of the terms whose rounding F carries: |F| itself, or for a molecule, whose F is the log-odds l1 - l0
    of its task, |l1| + |l0| (a log-odds near 0 is a difference of two larger logits, and rounds like them)."""
    if kind != "molecules":
        return np.abs(rows[name].to_numpy())
    family = FAMILIES["molecules"]
    model = family.load(family.source_named(None), torch.device("cpu"))  # the model the runs chose: none named
    sizes = []
    for row in rows.itertuples():
        features = family.parse(model, row.source)
        request = family.engine_input(model, features)
        tensors = request.inputs if name == "score_input" else request.baseline
        with torch.no_grad():
            logits = model.module.bind(features, output="logits")(*tensors)[0, int(row.target)]
        sizes.append(float(logits.abs().sum()))
    return np.array(sizes)


@pytest.mark.parametrize("kind", ["molecules", "windows"])
def test_items_refined_together_each_stop_at_the_tolerance_on_the_points_they_take_alone(kind, shared_data, tmp_path,
                                                                                          single_thread):
    """The adaptive rule refines each item of a call on its own grid: an item takes the points it takes alone, not
    the union of its group's. Another batch shape rounds the interval errors another way, which can break a near
    tie between two intervals the other way: a grid may then differ by a point or so, and its sums by its error."""
    args = [str(shared_data / a) if a == BATCHED_JOBS[kind][3] else a for a in BATCHED_JOBS[kind]]
    runs = {}
    for batch in (1, 16):
        out = tmp_path / str(batch)
        assert main(args + ["--steps", "4", "--batch-items", str(batch), "--quiet", "--out", str(out)]) == 0
        runs[batch] = frame(out)
    alone, together = runs[1], runs[16]
    explained = alone.status == "explained"
    assert explained.sum() >= 20 and (together.status == alone.status).all()
    a, b = alone[explained], together[explained]
    for rows in (a, b):  # the default settings: the adaptive rule to 1%, within its budget of 512 points
        assert (rows.rule == "adaptive").all() and (rows.relative_delta <= 0.01).all()
    assert np.all(np.abs(b.points_evaluated - a.points_evaluated) <= 0.1 * a.points_evaluated + 2)
    assert np.mean(b.points_evaluated == a.points_evaluated) >= 0.9
    relative = [np.abs(np.subtract(x, y)).max() / np.abs(x).sum() for x, y in zip(a.scores, b.scores)]
    assert np.median(relative) <= BATCH_RTOL  # most grids are the same, their sums the same up to rounding
