"""A vision run's misclassified photos (families.vision.run_rows, dashboard.renderers.vision_runs,
dashboard/pages/vision_runs.py) and the Vision page opening one of them: exact answers on hand-made maps and
listings, stores made by the dataset command on real photos, the pages in AppTest and in a real browser, and the
listing checked against direct predictions on the 900 sample photos."""
from __future__ import annotations

import math
import os
import pathlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from streamlit_browser import (
    ARTIFACTS,
    browser_page,
    full_screenshot,
    open_page,
    require_chromium,
    streamlit_server,
    use_fast_settings,
    wait_idle,
)

from dashboard.renderers import colours
from dashboard.renderers import vision as vision_views
from dashboard.renderers import vision_runs as vision_runs_views
from families.config import RUNS_DIR
from families.vision import run_rows as vision_runs
from families.vision.boxes import box_mask, resize_for
from families.vision.image_classifier import ImageClassifier, predict_image
from families.vision.images import load_image
from families.vision.torchvision_classifiers import load_classifier
from runs import store
from runs.job import NOTHING_TO_CONTRAST
from runs.runner import main as run_dataset

ROOT = pathlib.Path(__file__).resolve().parents[1]

MOBILENET = "models/mobilenet_v2_float/mobilenet_v2_imagenet_dequantized.pth"  # in the data folder
SAMPLE_FOLDERS = ("imagenet_samples", "imagenet_more")
WRONG_SAMPLES, RIGHT_SAMPLES = 3, 4  # the small run: sample photos MobileNetV2 gets wrong and right (top-1)


# --- exact answers on hand-made maps and listings ----------------------------------------------------------

def test_top_pixels_take_the_largest_positive_attributions_ties_to_the_earlier_pixel():
    scores = np.zeros((4, 5))
    scores[0, 0], scores[0, 1], scores[1, 1], scores[3, 4] = 5, 4, 3, -9
    # 10% of 20 pixels: the top 2
    assert np.argwhere(vision_runs.top_pixels(scores, 0.1)).tolist() == [[0, 0], [0, 1]]
    # 11% of 20 is 2.2 pixels: rounded up to 3
    assert np.argwhere(vision_runs.top_pixels(scores, 0.11)).tolist() == [[0, 0], [0, 1], [1, 1]]
    # half the pixels asked for, three positive: zeros and negatives are never top pixels
    assert vision_runs.top_pixels(scores, 0.5).sum() == 3
    ties = np.ones((4, 5))
    assert np.flatnonzero(vision_runs.top_pixels(ties, 0.1)).tolist() == [0, 1]


def test_overlap_is_the_intersection_over_union_of_the_top_pixels():
    first, second = np.zeros((4, 5)), np.zeros((4, 5))
    first[0, 0], first[0, 1], first[2, 2] = 5, 4, -7
    second[0, 1], second[2, 2], second[3, 3] = 2, 7, 1
    # blocks of one pixel, top 2: {(0,0), (0,1)} and {(2,2), (0,1)}: one shared of three
    assert vision_runs.overlap(first, second, 0.1, block=1) == pytest.approx(1 / 3, rel=1e-15)
    assert vision_runs.overlap(first, first, 0.1, block=1) == 1.0
    assert vision_runs.overlap(first, -first, 0.1, block=1) == 0.0  # -first has one positive pixel, (2,2), not first's
    assert math.isnan(vision_runs.overlap(np.zeros((4, 5)), -np.ones((4, 5)), 0.1, block=1))
    big = np.arange(400.0).reshape(20, 20)
    shifted = np.roll(big, 10)  # its top 20 pixels: 10 of big's top 20 (390..399) and 10 others (0..9)
    assert vision_runs.TOP_SHARE == 0.05 and vision_runs.top_pixels(big).sum() == 20
    assert vision_runs.overlap(big, shifted, block=1) == pytest.approx(10 / 30, rel=1e-15)


def test_the_overlap_compares_blocks_of_positive_attribution():
    scores = np.zeros((5, 5))
    scores[0, 0], scores[1, 1], scores[0, 1], scores[4, 4], scores[2, 3] = 1.0, 2.0, -8.0, 3.0, 0.5
    # 2x2 tiles, the last row and column one pixel wide; negative attribution counts as none
    expected = np.array([[3.0, 0.0, 0.0], [0.0, 0.5, 0.0], [0.0, 0.0, 3.0]])
    assert np.array_equal(vision_runs.block_sums(scores, 2), expected)
    # neighbouring pixels of one object share a block: no pixel in common, yet the same top blocks
    first, second = np.zeros((16, 16)), np.zeros((16, 16))
    first[0, 0], second[1, 1] = 1.0, 1.0
    assert vision_runs.overlap(first, second, 0.25, block=1) == 0.0
    assert vision_runs.overlap(first, second, 0.25, block=8) == 1.0


def listing_row(item: int, chosen_as: str | None, target: int | None, predicted: int | None, truth: int | None,
                rank: int | None, probability: float | None, relative_delta: float = float("nan"),
                status: str = "explained") -> dict:
    names = {0: "tench", 1: "goldfish", 2: "shark", 3: "hen", 4: "ostrich"}
    return {"item_index": item, "item_id": f"images/p{item}.JPEG", "source": f"images/p{item}.JPEG",
            "status": status, "target": target, "target_name": names.get(target), "chosen_as": chosen_as,
            "predicted": predicted, "truth": truth, "truth_rank": rank, "probability": probability,
            "relative_delta": relative_delta}


def hand_made_listing() -> pd.DataFrame:
    """As store.listing gives it: nullable integers are floats."""
    return pd.DataFrame([
        listing_row(0, "predicted+truth", 0, 0, 0, 1, 0.9, 0.01),
        listing_row(1, "predicted", 2, 2, 1, 2, 0.6, 0.02), listing_row(1, "truth", 1, 2, 1, 2, 0.3, 0.05),
        listing_row(2, "predicted", 3, 3, 4, 7, 0.8, 0.03), listing_row(2, "truth", 4, 3, 4, 7, 0.01, 0.01),
        listing_row(3, None, None, None, None, None, None, status="refused"),
        listing_row(4, None, None, 1, None, None, None, status="skipped"),
        listing_row(5, "predicted", 3, 3, 2, 3, 0.4), listing_row(5, "truth", 2, 3, 2, 3, 0.35),
    ]).astype({"target": "float64", "predicted": "float64", "truth": "float64", "truth_rank": "float64"})


def test_photo_table_pairs_each_photos_predicted_and_true_rows():
    photos = vision_runs.photo_table(hand_made_listing())
    assert photos.index.tolist() == [0, 1, 2, 5]
    assert photos.predicted_name.tolist() == ["tench", "shark", "hen", "hen"]
    assert photos.truth_name.tolist() == ["tench", "goldfish", "ostrich", "shark"]
    assert photos.confidence.tolist() == [0.9, 0.6, 0.8, 0.4]
    assert photos.truth_probability.tolist() == [0.9, 0.3, 0.01, 0.35]
    assert photos.relative_delta.tolist()[:3] == [0.01, 0.05, 0.03] and math.isnan(photos.relative_delta[5])
    assert photos.truth_rank.tolist() == [1, 2, 7, 3] and photos.correct.tolist() == [True, False, False, False]


def test_misclassified_top_1_and_top_5_most_confident_first():
    photos = vision_runs.photo_table(hand_made_listing())
    assert vision_runs.misclassified(photos, "top-1").index.tolist() == [2, 1, 5]  # confidence 0.8, 0.6, 0.4
    assert vision_runs.misclassified(photos, "top-5").index.tolist() == [2]  # the truth ranked 7


def test_filters_and_sorts():
    photos = vision_runs.misclassified(vision_runs.photo_table(hand_made_listing())).assign(
        overlap=[0.5, float("nan"), 0.1])
    assert vision_runs.filter_photos(photos, true_classes=["goldfish", "shark"]).index.tolist() == [1, 5]
    assert vision_runs.filter_photos(photos, predicted_classes=["hen"]).index.tolist() == [2, 5]
    assert vision_runs.filter_photos(photos, confidence=(0.4, 0.6)).index.tolist() == [1, 5]  # a closed range
    assert vision_runs.filter_photos(photos, overlap=(0.0, 0.2)).index.tolist() == [5]  # no overlap: left out
    assert vision_runs.filter_photos(photos, max_relative_delta=0.04).index.tolist() == [2]  # 0.03; 0.05 and NaN out
    assert vision_runs.sort_photos(photos, "overlap, lowest first").index.tolist() == [5, 2, 1]
    assert vision_runs.sort_photos(photos, "overlap, highest first").index.tolist() == [2, 5, 1]
    assert vision_runs.sort_photos(photos, "true class").index.tolist() == [1, 2, 5]
    assert vision_runs.sort_photos(photos, "completeness error, largest first").index.tolist() == [1, 2, 5]



def test_the_listing_shows_n_a_where_a_photo_has_no_overlap_or_completeness_error():
    photos = vision_runs.misclassified(vision_runs.photo_table(hand_made_listing())).assign(
        overlap=[0.25, float("nan"), 0.5])  # photos 2, 1, 5: photo 5's method row has no completeness error
    table = vision_runs_views.listing_frame(photos, 0.04)
    assert table["overlap"].tolist() == ["0.250", "n/a", "0.500"]
    assert table["completeness error"].tolist() == ["0.030", "0.050", "n/a"]  # Streamlit would show "None"
    assert table["adds up"].tolist() == ["yes", "NO", "n/a"]  # within 4%, over it, no completeness law

def test_the_gallery_maps_are_signed_by_default_and_carry_their_legend():
    scores = np.zeros((10, 240))
    scores[:, :80], scores[:, -80:] = 2.0, -2.0  # a stored map: colour channels summed
    photo = Image.new("RGB", (240, 10), (255, 255, 255))
    assert list(vision_runs_views.MAP_VIEWS)[0] == "signed"
    signed = np.asarray(vision_runs_views.map_picture(photo, scores), dtype=float)
    np.testing.assert_allclose(signed[:10, :80], np.broadcast_to(255 * np.array(colours.POSITIVE), (10, 80, 3)), atol=1)
    np.testing.assert_allclose(signed[:10, -80:], np.broadcast_to(255 * np.array(colours.NEGATIVE), (10, 80, 3)),
                               atol=1)
    np.testing.assert_array_equal(signed[10:], np.asarray(vision_views.map_legend("signed", 2.0, width=240)))
    for view, (polarity, style) in vision_runs_views.MAP_VIEWS.items():
        picture = np.asarray(vision_runs_views.map_picture(photo, scores, view))
        np.testing.assert_array_equal(picture[10:], np.asarray(vision_views.map_legend(polarity, 2.0, style, 240)))


def test_confusion_counts_which_true_classes_go_to_which_predictions():
    photos = pd.DataFrame({"truth": [1, 1, 2, 1, 4, 2], "truth_name": ["goldfish", "goldfish", "shark", "goldfish",
                                                                     "ostrich", "shark"],
                           "predicted": [2, 2, 1, 3, 3, 1], "predicted_name": ["shark", "shark", "goldfish", "hen",
                                                                               "hen", "goldfish"]})
    counts = vision_runs.confusion(photos)
    assert counts.values.tolist() == [[1, "goldfish", 2, "shark", 2], [2, "shark", 1, "goldfish", 2],
                                      [1, "goldfish", 3, "hen", 1], [4, "ostrich", 3, "hen", 1]]
    table = vision_runs_views.confusion_frame(counts)
    assert table.columns.tolist() == ["true class", "predicted as", "photos"]
    assert table.iloc[0].tolist() == ["goldfish (1)", "shark (2)", 2]
    assert vision_runs.confusion(photos.iloc[:0]).empty


def test_share_of_positive_attribution_outside_a_box():
    inside = np.zeros((4, 4), dtype=bool)
    inside[:2, :2] = True
    scores = np.zeros((4, 4))
    scores[0, 0], scores[1, 1], scores[3, 3], scores[2, 0] = 2, 1, 1, -8  # the negative pixel does not count
    assert vision_runs.outside_share(scores, inside) == 0.25
    assert math.isnan(vision_runs.outside_share(-np.ones((4, 4)), inside))


def test_box_shares_map_the_box_through_the_resize_and_crop_and_split_right_from_wrong():
    # a 256 x 256 photo: resized to 256 (unchanged), cropped to its centre 224 (offset 16); the box covers original
    # pixels 16..79, so crop pixels 0..63
    box = (16, 16, 79, 79)
    mask = box_mask([box], 256, 256)
    assert mask.sum() == 64 * 64 and mask[:64, :64].all()
    right, wrong_predicted, wrong_truth = np.zeros((224, 224)), np.zeros((224, 224)), np.zeros((224, 224))
    right[10, 10], right[100, 100] = 3, 1  # 1/4 outside
    wrong_predicted[100, 100], wrong_predicted[0, 0] = 1, 1  # 1/2 outside
    wrong_truth[63, 63], wrong_truth[64, 64] = 3, 1  # 1/4 outside: (64, 64) is the first pixel outside
    photos = pd.DataFrame({"item_id": ["images/a.JPEG", "images/b.JPEG", "images/c.JPEG"],
                           "source": ["images/a.JPEG", "images/b.JPEG", "images/c.JPEG"],
                           "correct": [True, False, False]}, index=[4, 7, 9])
    maps = {4: (right, right), 7: (wrong_predicted, wrong_truth), 9: (right, right)}
    boxes = {"a.JPEG": [box], "b.JPEG": [box]}  # c has none
    shares = vision_runs.box_shares(photos, maps, boxes, {4: (256, 256), 7: (256, 256), 9: (256, 256)})
    assert shares.item_index.tolist() == [4, 7]
    assert shares.outside_predicted.tolist() == [0.25, 0.5] and shares.outside_truth.tolist() == [0.25, 0.25]
    assert shares.box_area.tolist() == [64 * 64 / 224 ** 2] * 2
    summary = vision_runs.box_summary(shares)
    assert summary.values.tolist() == [["right", 1, 0.25, 0.25], ["wrong", 1, 0.5, 0.25]]


def test_a_photo_path_stays_inside_the_runs_folder(tmp_path):
    manifest = {"job": {"input": str(tmp_path)}}
    assert vision_runs.photo_path(manifest, "images/a.JPEG") == tmp_path / "images" / "a.JPEG"
    for source in ("../secret.JPEG", "/etc/passwd", "images/../../x.JPEG", ""):
        with pytest.raises(ValueError, match="not inside its folder"):
            vision_runs.photo_path(manifest, source)


def test_the_network_view_is_the_classifiers_resize_and_centre_crop(shared_data):
    classifier = ImageClassifier(model=None, arch="", key="", categories=[], weights_source="")
    image = load_image(shared_data / "imagenet_samples" / "images" / "n01440764_tench.JPEG")
    expected = np.asarray(classifier.crop(image))
    assert np.array_equal(np.asarray(vision_runs.network_view(image, 224)), expected)
    assert resize_for(224) == 256 and resize_for(299) == 342  # Inception v3's


# --- a run of 12 real photos: 7 sample photos and the 5 photos with human boxes ------------------------------

@pytest.fixture(scope="module")
def classifier(shared_data, single_thread):
    return load_classifier("mobilenet_v2", shared_data / MOBILENET, "cpu")


def top1(classifier, path: pathlib.Path) -> int:
    return int(np.argmax(predict_image(classifier, load_image(path)).probabilities))


@pytest.fixture(scope="module")
def small_run(shared_data, classifier, tmp_path_factory):
    """A runs folder with "mixed": the first WRONG_SAMPLES sample photos MobileNetV2 gets wrong and the first
    RIGHT_SAMPLES it gets right (predicted here, directly), and the 5 photos with boxes, explained by integrated
    gradients (a cheap fixed rule) for the predicted and the true label. Returns (runs folder, run folder, the
    wrong samples' file names)."""
    samples = pd.read_csv(shared_data / "imagenet_samples" / "labels.csv")
    wrong, right = [], []
    for row in samples.itertuples():
        if len(wrong) == WRONG_SAMPLES and len(right) == RIGHT_SAMPLES:
            break
        chosen = wrong if top1(classifier, shared_data / "imagenet_samples" / row.file) != row.class_index else right
        if len(chosen) < (WRONG_SAMPLES if chosen is wrong else RIGHT_SAMPLES):
            chosen.append(row)
    boxed = pd.read_csv(shared_data / vision_runs.BOXES_FOLDER / "boxes.csv").drop_duplicates("file")
    folder = tmp_path_factory.mktemp("photos") / "mixed"
    (folder / "images").mkdir(parents=True)
    labels = []
    for origin, rows in (("imagenet_samples", wrong + right), (vision_runs.BOXES_FOLDER, list(boxed.itertuples()))):
        for row in rows:
            os.symlink(shared_data / origin / row.file, folder / row.file)
            labels.append({"file": row.file, "class_index": row.class_index, "class_name": row.class_name})
    pd.DataFrame(labels).to_csv(folder / "labels.csv", index=False)
    runs = tmp_path_factory.mktemp("runs")
    assert run_dataset(["--family", "vision", "--input", str(folder), "--model", "mobilenet_v2", "--targets", "both",
                        "--rule", "gauss-legendre", "--steps", "4", "--shard-size", "5", "--quiet",
                        "--out", str(runs / "mixed")]) == 0
    return runs, runs / "mixed", [row.file for row in wrong]


def read_label_maps(run: pathlib.Path, item_indices) -> dict:
    """The two labels' maps of some photos of the run, read as the runs page reads them."""
    return vision_runs.label_maps(store.item_rows(run, list(item_indices)), store.pixel_map)


def expected_wrong(shared_data, classifier, folder: pathlib.Path) -> set[str]:
    """The photos of a folder whose top-1 prediction, computed directly (no store), differs from labels.csv."""
    labels = pd.read_csv(folder / "labels.csv")
    return {row.file for row in labels.itertuples() if top1(classifier, folder / row.file) != row.class_index}


def test_the_small_run_lists_its_misclassified_photos_and_their_boxes(small_run, shared_data, classifier):
    runs, run, wrong_samples = small_run
    manifest = store.read_manifest(run)
    photos = vision_runs.photo_table(store.listing(run))
    assert len(photos) == 12
    wrong = vision_runs.misclassified(photos, "top-1")
    expected = expected_wrong(shared_data, classifier, vision_runs.input_folder(manifest))
    assert set(wrong.item_id) == expected and set(wrong_samples) <= expected
    assert wrong.confidence.is_monotonic_decreasing
    maps = read_label_maps(run, wrong.index)
    assert sorted(maps) == sorted(wrong.index)
    for predicted, truth in maps.values():
        assert predicted.shape == truth.shape == (224, 224) and not np.array_equal(predicted, truth)
    overlaps = vision_runs.overlaps(maps)
    assert overlaps.between(0, 1).all()
    assert overlaps.tolist() == [vision_runs.overlap(*maps[k]) for k in overlaps.index]
    boxes = vision_runs.boxes_by_file_name(vision_runs.box_folders(manifest))
    boxed_photos = vision_runs.boxed_photos(photos, boxes)
    shares = vision_runs.box_shares(boxed_photos, read_label_maps(run, boxed_photos.index), boxes,
                                    vision_runs.photo_sizes(manifest, boxed_photos))
    boxed = pd.read_csv(shared_data / vision_runs.BOXES_FOLDER / "boxes.csv").file.unique()
    assert sorted(shares.item_id) == sorted(boxed)
    assert shares.outside_predicted.between(0, 1).all() and shares.outside_truth.between(0, 1).all()
    summary = vision_runs.box_summary(shares).set_index("prediction")
    assert summary.photos.to_dict() == {"right": len(set(boxed) - expected), "wrong": len(set(boxed) & expected)}


# --- the pages in AppTest ----------------------------------------------------------------------------------

def texts(elements) -> list[str]:
    return [str(e.value) for e in elements]


@pytest.fixture
def runs_page(monkeypatch):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    def start(runs: pathlib.Path):
        monkeypatch.setenv(RUNS_DIR.name, str(runs))
        st.cache_data.clear()
        return AppTest.from_file(str(ROOT / "dashboard" / "pages" / "vision_runs.py"), default_timeout=300).run()

    yield start
    st.cache_data.clear()


def test_the_runs_page_lists_the_misclassified_photos_with_both_maps(small_run, runs_page):
    runs, run, _ = small_run
    at = runs_page(runs)
    assert not at.exception and not at.error, texts(at.error)
    photos = vision_runs.photo_table(store.listing(run))
    for criterion in vision_runs.CRITERIA:
        at.radio(key="vision_runs_criterion").set_value(criterion).run()
        wrong = vision_runs.misclassified(photos, criterion)
        assert f"**{len(wrong)} of 12 photos misclassified ({criterion})**" in texts(at.markdown)
    at.radio(key="vision_runs_criterion").set_value("top-1").run()
    wrong = vision_runs.misclassified(photos, "top-1")
    listed, confusion, boxes = at.dataframe[0].value, at.dataframe[1].value, at.dataframe[2].value
    assert listed.photo.tolist() == wrong.item_id.tolist()  # most confident first
    assert confusion.photos.sum() == len(wrong)
    assert boxes["prediction (top-1)"].tolist() == ["right", "wrong"] and boxes.photos.sum() == 5
    captions = [c for image in at.get("image") for c in image.captions]
    first = wrong.iloc[0]
    assert f"{first.item_id} as the network saw it" in captions
    assert f"Predicted: {first.predicted_name} ({first.predicted}), p = {first.confidence:.3f}" in captions
    assert f"Truth: {first.truth_name} ({first.truth}), p = {first.truth_probability:.3f}" in captions
    assert len(captions) == 3 * min(len(wrong), 4)
    # filtered by a true class: the listing and the confusion follow
    at.multiselect(key="vision_runs_truth").set_value([first.truth_name]).run()
    assert at.dataframe[0].value.photo.tolist() == wrong[wrong.truth_name == first.truth_name].item_id.tolist()
    at.selectbox(key="vision_runs_sort").set_value("overlap, lowest first").run()
    assert not at.exception and not at.error


def test_runs_the_page_cannot_use_get_a_clear_message(small_run, runs_page, tmp_path, shared_data):
    at = runs_page(tmp_path / "none")
    assert not at.exception and any("No vision runs in the runs folder" in i for i in texts(at.info))
    runs = tmp_path / "runs"
    folder = vision_runs.input_folder(store.read_manifest(small_run[1]))
    assert run_dataset(["--family", "vision", "--input", str(folder), "--model", "mobilenet_v2", "--targets",
                        "predicted", "--method", "gradient", "--limit", "2", "--quiet", "--out",
                        str(runs / "predicted only")]) == 0
    at = runs_page(runs)
    assert not at.exception and not at.error
    assert any("explains only the predicted label" in w and "--targets both" in w for w in texts(at.warning))
    unlabelled = tmp_path / "unlabelled"
    unlabelled.mkdir()
    os.symlink(shared_data / "imagenet_samples" / "images" / "n01440764_tench.JPEG", unlabelled / "tench.JPEG")
    assert run_dataset(["--family", "vision", "--input", str(unlabelled), "--model", "mobilenet_v2", "--targets",
                        "both", "--method", "gradient", "--quiet", "--out", str(runs / "unlabelled")]) == 0
    at.run().selectbox(key="vision_runs_run").set_value("unlabelled").run()
    assert not at.exception and not at.error
    assert any("has a ground truth" in i for i in texts(at.info))


# the engine's forward at the photo (in a batch of path points) and a lone forward reduce in other orders: a few
# hundred float32 roundings of 2**-24, relative to the logits
FORWARD_RTOL = 1e-5


def test_a_contrast_run_explains_a_misclassified_photos_prediction_rather_than_its_truth(shared_data, classifier,
                                                                                          tmp_path):
    samples = pd.read_csv(shared_data / "imagenet_samples" / "labels.csv")
    wrong, right = [], []
    for row in samples.itertuples():
        if len(wrong) == 2 and len(right) == 2:
            break
        chosen = wrong if top1(classifier, shared_data / "imagenet_samples" / row.file) != row.class_index else right
        if len(chosen) < 2:
            chosen.append(row)
    folder = tmp_path / "photos"
    (folder / "images").mkdir(parents=True)
    for row in wrong + right:
        os.symlink(shared_data / "imagenet_samples" / row.file, folder / row.file)
    pd.DataFrame([{"file": r.file, "class_index": r.class_index, "class_name": r.class_name} for r in wrong + right]
                 ).to_csv(folder / "labels.csv", index=False)
    out = tmp_path / "run"
    assert run_dataset(["--family", "vision", "--input", str(folder), "--model", "mobilenet_v2", "--targets",
                        "contrast", "--rule", "gauss-legendre", "--steps", "4", "--limit", "4", "--quiet",
                        "--out", str(out)]) == 0
    rows = store.read(out).to_pandas().set_index("item_id")
    assert sorted(rows.index) == sorted(r.file for r in wrong + right)  # one row a photo
    skipped = rows.loc[[r.file for r in right]]
    assert (skipped.status == "skipped").all() and (skipped.error == NOTHING_TO_CONTRAST).all()
    assert skipped.rather_than.isna().all() and (skipped.predicted == [r.class_index for r in right]).all()
    for row in wrong:
        stored = rows.loc[row.file]
        logits = classifier.model(classifier.preprocess(load_image(shared_data / "imagenet_samples" / row.file)))[0]
        predicted = int(logits.argmax())
        assert (stored.status, stored.chosen_as) == ("explained", "contrast")
        assert (stored.target, stored.rather_than, stored.truth) == (predicted, row.class_index, row.class_index)
        assert stored.target_name == classifier.categories[predicted]
        contrast = float(logits[predicted] - logits[row.class_index])  # F on the logits, not the softmax
        scale = float(logits[predicted].abs() + logits[row.class_index].abs())
        assert abs(stored.score_input - contrast) <= FORWARD_RTOL * scale
        # the stored map holds the whole contrast: its float16 rounding (2**-11 of a scaled pixel above the smallest
        # normal, 2**-25 of the scale below) bounds its sum's distance from F(input) - F(baseline) + delta
        pixels = store.pixel_map(stored.to_dict())
        bound = np.maximum(2.0 ** -11 * np.abs(pixels), 2.0 ** -25 * stored.map_scale).sum()
        expected = stored.score_input - stored.score_baseline + stored.delta
        assert abs(pixels.astype(np.float64).sum() - expected) <= bound


@pytest.fixture
def vision_page(monkeypatch, shared_data):
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from ig_core import ScanSettings

    def start(runs: pathlib.Path, opened: dict):
        monkeypatch.setenv(RUNS_DIR.name, str(runs))
        monkeypatch.setenv("IG_VISION_ARCH", "mobilenet_v2")
        monkeypatch.setenv("IG_VISION_WEIGHTS", str(shared_data / MOBILENET))
        st.cache_data.clear()
        at = AppTest.from_file(str(ROOT / "dashboard" / "pages" / "vision.py"), default_timeout=300)
        at.session_state["scan_settings"] = ScanSettings(rule="trapezoid", steps=4)  # the page's plumbing only
        at.session_state[vision_runs_views.OPENED_PHOTO_KEY] = opened  # as the runs page leaves it
        at.session_state[vision_runs_views.SOURCE_KEY] = vision_runs_views.RUN_SOURCE
        return at.run()

    yield start
    st.cache_data.clear()


def test_the_vision_page_opens_a_runs_photo_with_its_ground_truth_to_compare(small_run, vision_page):
    runs, run, _ = small_run
    wrong = vision_runs.misclassified(vision_runs.photo_table(store.listing(run)))
    photo = wrong.iloc[0]
    at = vision_page(runs, {"run": "mixed", "item_index": int(photo.name)})
    assert not at.exception and not at.error, texts(at.error)
    source = at.radio(key="vision_source")
    assert (source.options == [vision_runs_views.RUN_SOURCE, "Sample photo", "Upload"]
            and source.value == vision_runs_views.RUN_SOURCE)
    assert any(c.startswith(f"{photo.item_id} of the run mixed: predicted {photo.predicted_name}")
               for c in texts(at.caption))
    truth = f"{photo.truth_name} ({photo.truth})"
    assert any(f"ground truth: **{truth}**" in m for m in texts(at.markdown))
    [compare] = [s for s in at.selectbox if s.label == "Compare with a second label (same scan)"]
    assert compare.value == photo.truth
    [button] = [b for b in at.button if b.label == "Explain"]
    button.click().run()
    assert not at.exception and not at.error, texts(at.error)
    captions = [c for image in at.get("image") for c in image.captions]
    assert any(c.startswith(f"{photo.truth_name} (ground truth): softmax") for c in captions), captions  # Figure 6
    # the other sources stay
    at.radio(key="vision_source").set_value("Sample photo").run()
    assert not at.exception and not at.error and any("Top 5" in m for m in texts(at.markdown))


def test_a_misclassified_photo_opened_from_the_runs_page_preselects_predicted_rather_than_true(small_run,
                                                                                             vision_page):
    runs, run, _ = small_run
    photo = vision_runs.misclassified(vision_runs.photo_table(store.listing(run))).iloc[0]
    at = vision_page(runs, {"run": "mixed", "item_index": int(photo.name), vision_runs_views.CONTRAST_TRUTH: True})
    assert not at.exception and not at.error, texts(at.error)
    [rather_than] = [s for s in at.selectbox if s.label == "... rather than (a contrast)"]
    [explained] = [s for s in at.selectbox if s.label == "Explain the label"]
    assert (explained.value, rather_than.value) == (photo.predicted, photo.truth)
    [button] = [b for b in at.button if b.label == "Explain"]
    button.click().run()
    assert not at.exception and not at.error, texts(at.error)
    assert any(c.startswith(f"F: logit of {photo.predicted_name} minus logit of {photo.truth_name}")
               for c in texts(at.caption))


def test_a_runs_photo_that_is_gone_is_a_clear_error(small_run, vision_page, tmp_path):
    runs, _, _ = small_run
    at = vision_page(runs, {"run": "deleted", "item_index": 0})
    assert not at.exception and any("no longer in the runs folder" in e for e in texts(at.error))
    at = vision_page(runs, {"run": "mixed", "item_index": 999})
    assert not at.exception and any("has no explained photo number 999" in e for e in texts(at.error))



# --- the 900 sample photos: the listing against direct predictions --------------------------------------------

@pytest.fixture(scope="module")
def all_samples(shared_data, tmp_path_factory) -> pathlib.Path:
    """The 900 sample photos in one folder, their file names prefixed by their folder, with one labels.csv."""
    folder = tmp_path_factory.mktemp("samples") / "all"
    folder.mkdir()
    labels = []
    for origin in SAMPLE_FOLDERS:
        for row in pd.read_csv(shared_data / origin / "labels.csv").itertuples():
            name = f"{origin}_{pathlib.PurePath(row.file).name}"
            os.symlink(shared_data / origin / row.file, folder / name)
            labels.append({"file": name, "class_index": row.class_index, "class_name": row.class_name})
    pd.DataFrame(labels).to_csv(folder / "labels.csv", index=False)
    return folder


def test_900_photos_the_listing_is_exactly_the_photos_predicted_wrong(all_samples, classifier, tmp_path):
    out = tmp_path / "all"
    assert run_dataset(["--family", "vision", "--input", str(all_samples), "--model", "mobilenet_v2", "--targets",
                        "both", "--method", "gradient", "--quiet", "--out", str(out)]) == 0
    photos = vision_runs.photo_table(store.listing(out))
    assert len(photos) == 900
    labels = pd.read_csv(all_samples / "labels.csv")
    ranks = {}
    for row in labels.itertuples():  # directly, no store involved
        probabilities = predict_image(classifier, load_image(all_samples / row.file)).probabilities
        ranks[row.file] = 1 + int((probabilities > probabilities[row.class_index]).sum())
    top1_wrong = set(vision_runs.misclassified(photos, "top-1").item_id)
    top5_wrong = set(vision_runs.misclassified(photos, "top-5").item_id)
    assert top1_wrong == {file for file, rank in ranks.items() if rank > 1}
    assert top5_wrong == {file for file, rank in ranks.items() if rank > 5}
    print(f"MobileNetV2 on the 900 sample photos: {len(top1_wrong)} misclassified top-1, {len(top5_wrong)} top-5")


# --- a real browser ----------------------------------------------------------------------------------------

def test_browser_lists_the_misclassified_photos_and_opens_one_on_the_vision_page(small_run, shared_data, tmp_path):
    from playwright.sync_api import expect

    require_chromium()
    runs, run, _ = small_run
    wrong = vision_runs.misclassified(vision_runs.photo_table(store.listing(run)))
    first = wrong.iloc[0]
    with streamlit_server(tmp_path, IG_RUNS_DIR=str(runs), IG_DATA_DIR=str(shared_data),
                          IG_VISION_ARCH="mobilenet_v2", IG_VISION_WEIGHTS=str(shared_data / MOBILENET)) as url, \
            browser_page("vision-runs") as page:
        page.goto(url)
        main = page.locator("[data-testid='stMain']")
        use_fast_settings(page)  # the Vision page's scan below: its plumbing, not its accuracy
        open_page(page, "Vision: a run's misclassifications")
        expect(main.get_by_text(f"{len(wrong)} of 12 photos misclassified (top-1)")).to_be_visible()
        wait_idle(page)
        expect(main.get_by_text(f"Predicted: {first.predicted_name} ({first.predicted}), "
                                f"p = {first.confidence:.3f}")).to_be_visible()
        expect(main.get_by_text(f"Truth: {first.truth_name} ({first.truth})", exact=False)).to_be_visible()
        page.wait_for_load_state("networkidle")
        images = main.locator("[data-testid='stImage'] img")
        expect(images).to_have_count(3 * min(len(wrong), 4))  # the photo and its two maps
        for i in range(images.count()):
            images.nth(i).scroll_into_view_if_needed()
            page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=images.nth(i).element_handle())
        # the photos, the confusion, the boxes' summary and (in an expander) their photos
        expect(main.locator("[data-testid='stDataFrame']")).to_have_count(4)
        assert main.locator("[data-testid='stException']").count() == 0
        assert main.locator("[data-testid='stAlertContentError']").count() == 0
        full_screenshot(page, "vision-runs.png")

        main.get_by_role("button", name="Open on the Vision page").first.click()
        expect(main.get_by_text(f"{first.item_id} of the run mixed: predicted", exact=False)).to_be_visible()
        expect(main.get_by_text("Top 5 (softmax)")).to_be_visible()
        expect(main.get_by_text(f"ground truth: {first.truth_name} ({first.truth})", exact=False)).to_be_visible()
        wait_idle(page)
        main.get_by_role("button", name="Explain", exact=True).click()
        # predicted rather than true, preselected: the contrast beside the two labels alone
        expect(main.get_by_text("6. Two labels and their contrast side by side (Figure 6)")).to_be_visible(
            timeout=240_000)
        expect(main.get_by_text(f"{first.predicted_name} rather than {first.truth_name}: logit difference",
                                exact=False)).to_be_visible()
        expect(main.get_by_text(f"{first.truth_name} (ground truth): softmax", exact=False)).to_be_visible()
        assert main.locator("[data-testid='stException']").count() == 0
        full_screenshot(page, "vision-runs-opened.png")

        # a click on the listing's second row opens that photo
        second = wrong.iloc[1]
        open_page(page, "Vision: a run's misclassifications")
        table = main.locator("[data-testid='stDataFrame']").first
        expect(table).to_be_visible()
        wait_idle(page)
        box = table.bounding_box()
        row_height = 35  # Streamlit's data grid: a header and rows of 35 px, the selection boxes first
        page.mouse.click(box["x"] + 15, box["y"] + row_height * 2 + row_height / 2)
        expect(main.get_by_text(f"{second.item_id} of the run mixed: predicted", exact=False)).to_be_visible()
    assert (ARTIFACTS / "vision-runs.png").stat().st_size > 50_000
    assert (ARTIFACTS / "vision-runs-opened.png").stat().st_size > 50_000
