"""Vision evaluation (Section 2.5): AOPC pixel ablation, box localization and the runner.

Synthetic models whose answers are known by hand, then a real-model smoke test and the page."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torchvision import transforms

import ig_core
from dashboard.renderers import vision_eval as vision_eval_views
from families.vision import evaluation, photo_evaluation
from families.vision.boxes import box_mask, localization, map_box
from families.vision.curves import (
    BLUR_SIGMA,
    aopc_curve,
    blurred,
    curve_auc,
    deletion_insertion_scores,
    fraction_counts,
    perturbation_scores,
    pixel_ranks,
)
from families.vision.evaluation_report import mean_curves, summarize_methods
from families.vision.evaluation_studies import FULL_STUDY, QUICK_LOOK, capped_scan
from families.vision.image_classifier import ImageClassifier
from families.vision.importance import pixel_importance
from families.vision.photo_evaluation import evaluate_photos, method_options, noise_fill, saturation_alpha
from families.vision.photos import Photo, list_photos
from families.vision.torchvision_classifiers import load_classifier
from families.vision.weights import LOCAL_WEIGHTS
from ig_core import AttributionEngine, ScanSettings

ROOT = Path(__file__).resolve().parents[1]
EPS = torch.finfo(torch.float32).eps
pytestmark = pytest.mark.numeric


class Linear(torch.nn.Module):
    """logits = [w . x, 0]: with output "identity" the target-0 score is linear in x."""

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = torch.nn.Parameter(w.clone())

    def forward(self, x):
        s = (x * self.w).flatten(1).sum(1)
        return torch.stack([s, torch.zeros_like(s)], 1)


@pytest.fixture
def engine():
    return AttributionEngine(device="cpu", max_batch=16)


# --- pixel importance, AOPC ------------------------------------------------------------------------

def test_pixel_importance_modes():
    # small integers and halves: their sums over three channels are exact in float32, so equality is the answer
    a = torch.tensor([[[1.0, -2.0]], [[-3.0, 1.0]], [[1.0, 0.5]]])  # [3, 1, 2]
    assert torch.equal(pixel_importance(a), torch.tensor([[5.0, 3.5]]))  # Eq. 1: sum_c |a|
    assert torch.equal(pixel_importance(a, "sum"), torch.tensor([[-1.0, -0.5]]))
    assert torch.equal(pixel_importance(a, "positive"), torch.tensor([[0.0, 0.0]]))
    assert pixel_importance(a.unsqueeze(0).repeat(4, 1, 1, 1)).shape == (4, 1, 2)
    with pytest.raises(ValueError):
        pixel_importance(a, "max")


def test_aopc_curve_by_hand():
    curve = aopc_curve(np.array([[1.0, 0.5, 0.2]]))
    np.testing.assert_allclose(curve, [[0.0, 0.25, (0.5 + 0.8) / 3]])


def test_ablating_top_w_times_x_first_gives_the_largest_drop(engine):
    g = torch.Generator().manual_seed(0)
    w = torch.rand(1, 3, 8, 8, generator=g) + 0.1
    x = torch.rand(1, 3, 8, 8, generator=g) ** 3  # |w| and |w * x| rank the pixels differently
    model = engine.prepare(Linear(w))
    result = engine.attribute(model, x, 0, 0.0, steps=4, rule="trapezoid")
    torch.testing.assert_close(result.attributions, (w * x)[0].expand_as(result.attributions), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(result.gradient_at_input, w.expand_as(result.gradient_at_input))

    importance = {"ig": pixel_importance(result.attributions.unsqueeze(0) if result.attributions.dim() == 3
                                         else result.attributions),
                  "gradient": pixel_importance(result.gradient_at_input.reshape(x.shape)),
                  "random": torch.rand(1, 8, 8, generator=g)}
    scores = perturbation_scores(model, x, [0], importance, torch.zeros(3, 8, 8), pixels_per_step=4,
                                 steps=16, output="identity", max_batch=7)
    contrib = (w * x).sum(1).flatten()  # per-pixel contribution, all positive
    best = torch.sort(contrib, descending=True).values
    expected = [float(contrib.sum() - best[:4 * k].sum()) for k in range(17)]
    # each score and each expected value is a float32 sum (or a difference of two) of at most 192 products w * x >= 0:
    # each sum is rounded by a few eps of their total, 16 eps covers both sides; an AOPC curve averages such drops
    rounding = 16 * EPS * float((w * x).sum())
    np.testing.assert_allclose(scores["ig"][0], expected, rtol=0, atol=rounding)  # greedy = optimal
    curves = {m: aopc_curve(s)[0] for m, s in scores.items()}
    assert np.all(curves["ig"] >= curves["gradient"] - 2 * rounding)
    assert np.all(curves["ig"] >= curves["random"] - 2 * rounding)
    assert curves["ig"][-1] > curves["gradient"][-1] + 1e-3
    assert scores["ig"][0, -1] == pytest.approx(0.0, abs=1e-5)  # 16 steps x 4 = all 64 pixels


def test_regions_are_ablated_whole_in_order():
    imp = torch.zeros(1, 4, 4)
    imp[0, 2:, 2:] = 5.0  # block (1, 1) first
    imp[0, :2, :2] = 1.0  # then block (0, 0)
    ranks = pixel_ranks(imp, region=2).view(4, 4)
    assert set(ranks[2:, 2:].flatten().tolist()) == {0, 1, 2, 3}
    assert set(ranks[:2, :2].flatten().tolist()) == {4, 5, 6, 7}


def test_tied_pixels_are_ranked_in_a_fixed_random_order_after_the_more_important_ones():
    imp = torch.zeros(1, 8, 8)
    imp[0, :, 4:] = 2.0  # a region map: the right half is one region, the left half another
    ranks = pixel_ranks(imp).view(8, 8)
    assert set(ranks[:, 4:].flatten().tolist()) == set(range(32))  # the denser region first, whole
    right = ranks[:, 4:].flatten()
    assert not torch.equal(right, torch.sort(right).values)  # not in raster order
    # the same computation on the same shape, and ranks are integers: equal bit for bit
    assert torch.equal(pixel_ranks(imp), pixel_ranks(imp.clone()))


# --- deletion and insertion ------------------------------------------------------------------------

def _linear_photo(n: int = 1):
    g = torch.Generator().manual_seed(1)
    w = torch.rand(1, 3, 4, 4, generator=g) + 0.1
    x = (torch.rand(1, 3, 4, 4, generator=g) + 0.1).expand(n, 3, 4, 4).contiguous()
    return Linear(w), w, x


def test_deletion_and_insertion_curves_and_areas_on_a_linear_score():
    model, w, x = _linear_photo()
    contrib = (w * x).sum(1)  # [1, 4, 4]: the score w . x is the sum of these per-pixel terms
    ranks = {"exact": pixel_ranks(contrib)}
    total = float(contrib.sum())
    curves = deletion_insertion_scores(model, x, torch.tensor([0]), ranks, torch.zeros(3, 4, 4),
                                       torch.zeros_like(x), 4, intact=torch.tensor([total]),
                                       output="identity", max_batch=3)
    top = torch.sort(contrib.flatten(), descending=True).values
    inserted = np.array([float(top[:4 * k].sum()) for k in range(5)])  # 4 steps of 4 of the 16 pixels
    # every score is a float32 sum of at most 48 positive products w * x: a few eps of the total each
    rounding = 16 * EPS * total
    np.testing.assert_allclose(curves["deletion"]["exact"][0], total - inserted, rtol=0, atol=rounding)
    np.testing.assert_allclose(curves["insertion"]["exact"][0], inserted, rtol=0, atol=rounding)
    fractions = np.array(fraction_counts(16, 4)) / 16
    np.testing.assert_array_equal(fractions, [0, 0.25, 0.5, 0.75, 1])
    by_hand = lambda s: sum((s[k] + s[k + 1]) / 2 * 0.25 for k in range(4))  # trapezoids of width 1/4
    assert curve_auc(curves["deletion"]["exact"][0], fractions) == pytest.approx(by_hand(total - inserted),
                                                                                 abs=rounding)
    assert curve_auc(curves["insertion"]["exact"][0], fractions) == pytest.approx(by_hand(inserted),
                                                                                  abs=rounding)


def test_blurred_start_is_rises_gaussian():
    delta = torch.zeros(1, 3, 21, 21)
    delta[0, :, 10, 10] = 1.0
    out = blurred(delta)[0, 0]
    d = torch.arange(-5, 6, dtype=torch.float64)
    g = torch.exp(-d ** 2 / (2 * BLUR_SIGMA ** 2))
    kernel = torch.outer(g, g) / g.sum() ** 2  # 11 x 11, normalized to sum 1
    torch.testing.assert_close(out[5:16, 5:16].double(), kernel, rtol=0, atol=8 * EPS * float(kernel.max()))
    assert float(out.sum()) == pytest.approx(1.0, abs=64 * EPS)
    constant = torch.full((1, 3, 16, 16), -0.7)
    # reflect padding keeps it
    torch.testing.assert_close(blurred(constant), constant, rtol=0, atol=4 * EPS)


def test_random_order_removes_the_expected_share_of_a_linear_score():
    n = 400
    model, w, x = _linear_photo(n)
    contrib = (w[0] * x[0]).sum(0).flatten().double()  # 16 pixel terms
    order = torch.rand(n, 4, 4, generator=torch.Generator().manual_seed(2))  # as the runner draws its reference
    ranks = {"random": pixel_ranks(order)}
    total = float(contrib.sum())
    curves = deletion_insertion_scores(model, x, torch.zeros(n, dtype=torch.long), ranks,
                                       torch.zeros(3, 4, 4), torch.zeros_like(x), 4,
                                       intact=torch.full((n,), total), output="identity", max_batch=64)
    mean = curves["deletion"]["random"].mean(0)
    removed = np.arange(5) * 4
    expected = total * (1 - removed / 16)  # a uniformly random order removes k/16 of the sum on average
    # the sum of m of 16 terms drawn without replacement has variance m (16 - m) / 15 * var(terms); mean of n orders
    sd = np.sqrt(removed * (16 - removed) / 15 * float(contrib.var(unbiased=False)) / n)
    assert np.all(np.abs(mean - expected) <= 5 * sd + 16 * EPS * total)
    assert np.all(sd[1:4] > 0) and len({tuple(r.tolist()) for r in ranks["random"][:50]}) == 50  # distinct orders


def test_summary_per_method_by_hand():
    nan = float("nan")
    per_method = pd.DataFrame({
        "file": ["a", "b", "c"] * 2,
        "method": ["integrated_gradients"] * 3 + ["gradient"] * 3,
        "aopc": [0.1, 0.2, 0.6, 0.0, 0.3, 0.3],
        "deletion_auc": [0.5, 0.3, 0.1, 0.4, 0.4, 0.7],
        "insertion_auc": [0.2, 0.4, 0.9, 0.1, 0.2, 0.3],
        "localization": [nan, 0.8, 0.4, nan, 0.5, nan],
        "localization_positive": [nan] * 6,
        "relative_delta": [0.01, 0.03, 0.002, nan, nan, nan],
        "points_evaluated": [17, 33, 17, 0, 0, 0],
        "seconds": [2.0, 3.0, 4.0, 0.0, 0.0, 0.0],
    })
    s = summarize_methods(per_method).set_index("method")
    assert list(s.index) == ["integrated_gradients", "gradient"]  # in the order they appear
    ig, grad = s.loc["integrated_gradients"], s.loc["gradient"]
    assert ig.aopc == pytest.approx(0.3) and grad.aopc == pytest.approx(0.2)
    # standard error: sample standard deviation / sqrt(3); IG's deviations -0.2, -0.1, 0.3: variance 0.14 / 2
    assert ig.aopc_se == pytest.approx((0.07 / 3) ** 0.5) and grad.aopc_se == pytest.approx((0.03 / 3) ** 0.5)
    assert ig.deletion_auc == pytest.approx(0.3) and grad.insertion_auc == pytest.approx(0.2)
    assert (ig.boxed_photos, grad.boxed_photos) == (2, 1)
    assert ig.localization == pytest.approx(0.6) and grad.localization == pytest.approx(0.5)
    assert ig.completeness_median == pytest.approx(0.01) and np.isnan(grad.completeness_median)
    assert ig.seconds == pytest.approx(3.0) and ig.photos == 3



def every_methods_evaluation() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Curves and per-method rows of one photo for every image method and the random order."""
    methods = [*photo_evaluation.image_methods(), photo_evaluation.RANDOM]
    curves = pd.DataFrame([{"file": "a", "method": m, "curve": kind, "step": k, "pixels": 100 * k, "fraction": k / 3,
                            "score": 1 - k / 4} for m in methods for kind in ("aopc", "deletion", "insertion")
                           for k in range(4)])
    per_method = pd.DataFrame({"file": "a", "method": methods, "aopc": 0.1, "deletion_auc": 0.2, "insertion_auc": 0.3,
                               "localization": 0.5, "localization_positive": 0.5, "relative_delta": 0.01,
                               "points_evaluated": 10, "seconds": 1.0})
    return curves, per_method


@pytest.mark.parametrize("kind", ["aopc", "deletion", "insertion"])
def test_a_curve_chart_fills_the_width_and_names_every_method_as_the_table_does(kind):
    curves, per_method = every_methods_evaluation()
    table_labels = list(vision_eval_views.method_frame(per_method).method)
    spec = vision_eval_views.curve_chart(curves, kind).to_dict()
    assert spec["width"] == "container" and spec["autosize"]["type"] == "fit-x"  # the height is the plot's own
    color = spec["encoding"]["color"]
    assert color["scale"]["domain"] == table_labels  # all ten, in the table's order and words
    assert color["legend"]["symbolLimit"] == 0 and color["legend"]["labelLimit"] == 0  # none left off or cut
    shown = {row["method"] for row in spec["datasets"][spec["data"]["name"]]}
    assert shown == set(table_labels)
    for axis in ("x", "y"):  # an axis title longer than the chart's height runs off its edge
        assert 0 < len(spec["encoding"][axis]["title"]) * 7 < spec["height"]
    assert spec["title"]["text"] and "better" in spec["title"]["subtitle"]


def test_the_localization_chart_names_the_methods_as_the_table_does():
    _, per_method = every_methods_evaluation()
    table_labels = list(vision_eval_views.method_frame(per_method).method)
    spec = vision_eval_views.localization_chart(per_method).to_dict()
    assert spec["encoding"]["color"]["scale"]["domain"] == table_labels
    assert [row["method"] for row in spec["datasets"][spec["data"]["name"]]] == table_labels


def test_the_per_photo_tables_show_n_a_where_a_value_is_missing():
    nan = float("nan")
    table = pd.DataFrame({"file": ["a.png", "b.png"], "label_name": ["tench", None], "predicted_name": ["tench", "hen"],
                          "correct": [True, None], "score": [0.9, 0.4], "relative_delta": [nan, nan],
                          "steps_used": [nan, nan], "alpha_90": [0.4, nan], "saturated": [True, None],
                          "has_box": [True, True], "box_fraction": [0.3, 0.2], "box_ablation_drop": [0.2, 0.1],
                          "seconds": [1.0, 2.0]})  # integrated gradients not among the methods, b.png unlabelled
    shown = vision_eval_views.photo_frame(table)
    for column in ("label_name", "relative_delta", "steps_used", "alpha_90"):
        assert "n/a" in shown[column].tolist() and not shown[column].isna().any(), column  # Streamlit shows None
    assert shown.alpha_90.tolist() == ["0.4", "n/a"] and shown.score.tolist() == [0.9, 0.4]  # complete: numbers
    per_method = pd.DataFrame({"file": ["a.png", "b.png"] * 2, "method": ["gradient"] * 2 + ["xrai"] * 2,
                               "localization": [0.6, 0.7, 0.5, nan]})
    located = vision_eval_views.localization_frame(table, per_method)
    assert located["inside box, gradient"].tolist() == [0.6, 0.7]  # complete: numbers
    assert located["inside box, xrai"].tolist() == ["0.5", "n/a"]

# --- localization ----------------------------------------------------------------------------------

def test_map_box_through_resize_and_centre_crop_by_hand():
    # 500 x 375 landscape: Resize(256) -> 341 x 256 (int(256 * 500 / 375) = 341), crop offsets
    # left = round((341 - 224) / 2) = round(58.5) = 58 (Python rounds half to even), top = 16.
    x0, y0, x1, y1 = map_box((100, 50, 199, 149), 500, 375)
    assert x0 == pytest.approx(100 * 341 / 500 - 58)  # 10.2
    assert x1 == pytest.approx(200 * 341 / 500 - 58)  # 78.4
    assert y0 == pytest.approx(50 * 256 / 375 - 16)  # 18.13
    assert y1 == pytest.approx(150 * 256 / 375 - 16)  # 86.4
    assert map_box((0, 0, 499, 374), 500, 375) == (0.0, 0.0, 224.0, 224.0)  # clipped to the crop
    # 375 x 500 portrait: 256 x 341, left = 16, top = 58
    x0, y0, x1, y1 = map_box((115, 115, 276, 490), 375, 500)
    assert (x0, y0) == pytest.approx((115 * 256 / 375 - 16, 115 * 341 / 500 - 58))
    assert y1 == 224.0


def test_box_mask_matches_torchvision_preprocessing():
    w, h, box = 500, 333, (219, 77, 439, 241)
    canvas = np.zeros((h, w, 3), np.uint8)
    canvas[box[1]:box[3] + 1, box[0]:box[2] + 1] = 255
    tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor()])
    seen = tf(Image.fromarray(canvas))[0] > 0.5
    mask = box_mask([box], w, h)
    iou = float((seen & mask).sum()) / float((seen | mask).sum())
    assert iou > 0.97


def test_localization_fraction():
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[2:5, 3:7] = True
    a = torch.zeros(3, 8, 8)
    a[:, 2:5, 3:7] = torch.randn(3, 3, 4)
    assert localization(a, mask) == pytest.approx(1.0)
    assert localization(torch.ones(3, 8, 8), mask) == pytest.approx(12 / 64)
    b = torch.ones(3, 8, 8)
    b[:, ~mask] = -1.0  # negative outside: positive mass is all inside, absolute mass is spread
    assert localization(b, mask, "positive") == pytest.approx(1.0)
    assert localization(b, mask, "abs") == pytest.approx(12 / 64)
    with pytest.raises(ValueError):
        localization(a, mask, "sum")


def test_saturation_alpha():
    alphas = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    scores = np.array([[0.0, 0.0], [0.5, 0.1], [0.95, 0.2], [0.9, 0.5], [1.0, 1.0]])
    np.testing.assert_allclose(saturation_alpha(alphas, scores), [0.5, 1.0])


# --- runner on a tiny model --------------------------------------------------------------------------

class Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.head = torch.nn.Linear(4, 5)

    def forward(self, x):
        return self.head(torch.relu(self.conv(x)).mean((2, 3))) * 4


def _photo_folder(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    rows = []
    for i, (w, h) in enumerate([(40, 30), (30, 40), (32, 32)]):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(tmp_path / "images" / f"p{i}.png")
        rows.append(dict(file=f"images/p{i}.png", image_id=f"p{i}", class_index=i, synset="s", class_name=f"c{i}",
                         width=w, height=h, xmin=2, ymin=3, xmax=w // 2, ymax=h // 2))
    rows.append(dict(rows[0], xmin=20, ymin=20, xmax=25, ymax=25))  # a second box for photo 0
    pd.DataFrame(rows).to_csv(tmp_path / "boxes.csv", index=False)
    return tmp_path


def test_list_photos_groups_boxes(tmp_path):
    photos = list_photos(_photo_folder(tmp_path))
    assert [p.file for p in photos] == ["images/p0.png", "images/p1.png", "images/p2.png"]
    assert photos[0].boxes == [(2, 3, 20, 15), (20, 20, 25, 25)] and photos[0].label == 0
    assert len(list_photos(tmp_path, limit=2)) == 2


def _tiny_square_classifier() -> ImageClassifier:
    return ImageClassifier(model=Tiny(), arch="tiny", key="tiny", categories=[f"k{i}" for i in range(5)],
                           weights_source="test", resize_size=16, crop_size=16, mean=(0.5,) * 3,
                           std=(0.25,) * 3)


@pytest.mark.parametrize("batch_size", [1, 2])
def test_runner_one_scan_per_photo_gives_ig_gradient_and_gradient_x_input(tmp_path, engine, batch_size):
    photos = list_photos(_photo_folder(tmp_path))
    calls = []
    original = engine.attribute
    engine.attribute = lambda *a, **k: calls.append(a[1].shape[0]) or original(*a, **k)
    seen = []
    methods = ["integrated_gradients", "gradient", "gradient_x_input"]
    result = evaluate_photos(_tiny_square_classifier(), photos, engine, methods=methods,
                             scan=ScanSettings(rule="adaptive", steps=8, tolerance=0.01, max_steps=256),
                             batch_size=batch_size,
                             pixels_per_step=16, ablation_steps=8, curve_steps=4, progress=seen.append)
    assert calls == ([1, 1, 1] if batch_size == 1 else [2, 1])  # one scan per photo (batch): the others are read off
    t, per = result.table, result.per_method
    assert list(t.file) == [p.file for p in photos] and len(t) == 3
    assert (t.relative_delta <= 0.01 + 1e-9).all()
    assert t.saturated.dtype == bool and t.alpha_90.between(0, 1).all()
    assert list(per.method[:4]) == methods + ["random"] and len(per) == 3 * 4
    ig = per[per.method == "integrated_gradients"]
    np.testing.assert_allclose(ig.relative_delta, t.relative_delta)  # the scan's completeness, per method too
    assert per[per.method.isin(["gradient", "gradient_x_input", "random"])].relative_delta.isna().all()
    assert per[["aopc", "deletion_auc", "insertion_auc"]].notna().all().all()
    assert per.localization.between(0, 1).all()  # every photo of this folder has a box
    assert seen[-1] == pytest.approx(1.0) and all(b >= a - 1e-12 for a, b in zip(seen, seen[1:]))
    assert set(result.curves.method) == set(methods) | {"random"}
    assert len(result.curves) == 3 * 4 * (9 + 5 + 5)
    assert pd.read_csv(__import__("io").StringIO(result.to_csv())).shape == t.shape
    # views
    assert ("integrated gradients: relative completeness error, median"
            in set(vision_eval_views.summary_frame(t).measure))
    assert len(vision_eval_views.method_frame(per)) == 4
    loc = vision_eval_views.localization_frame(t, per)
    assert len(loc) == 3 and "inside box, random" in loc.columns
    np.testing.assert_allclose(loc["inside box, gradient"], per[per.method == "gradient"].localization)
    fig5 = mean_curves(result.curves)
    assert set(fig5.n) == {3} and len(fig5) == 4 * (9 + 5 + 5)
    for kind in ("aopc", "deletion", "insertion"):
        vision_eval_views.curve_chart(result.curves, kind).to_dict()
    vision_eval_views.localization_chart(per).to_dict()
    vision_eval_views.completeness_chart(t).to_dict()


def test_runner_scores_every_registered_method_with_shared_curve_ends(tmp_path, engine):
    photos = list_photos(_photo_folder(tmp_path))
    result = evaluate_photos(_tiny_square_classifier(), photos, engine, scan=ScanSettings(steps=4, max_steps=64),
                             pixels_per_step=16, ablation_steps=4, curve_steps=4, insertion_start="black")
    per, curves, t = result.per_method, result.curves, result.table
    registered = list(ig_core.METHODS)
    assert list(per.method.unique()) == registered + ["random"]
    assert (per.seconds.notna() == (per.method != "random")).all()
    for name in registered:  # completeness wherever the method (with its evaluation options) defines one
        defined = ig_core.method(name, **method_options([name])[name]).completeness is not None
        assert per[per.method == name].relative_delta.notna().all() == defined, name
    wide = curves.pivot_table(index=["file", "curve", "step"], columns="method", values="score")
    intact = t.set_index("file").score
    for file in t.file:  # the ends every order shares: the intact photo, all pixels removed, the black start
        deletion, insertion = wide.loc[(file, "deletion")], wide.loc[(file, "insertion")]
        np.testing.assert_allclose(deletion.loc[0], intact[file], rtol=1e-6)
        np.testing.assert_allclose(insertion.loc[4], intact[file], rtol=1e-6)
        assert deletion.loc[4].nunique() == 1 and insertion.loc[0].nunique() == 1
        # black fill and black start: removing all pixels and starting from nothing is the same image
        assert deletion.loc[4].iloc[0] == pytest.approx(insertion.loc[0].iloc[0], rel=1e-6)


def test_reference_set_methods_need_other_photos(tmp_path, engine):
    photos = list_photos(_photo_folder(tmp_path))[:1]
    with pytest.raises(ValueError, match="at least two photos"):
        evaluate_photos(_tiny_square_classifier(), photos, engine, methods=["expected_gradients"])


def test_reference_set_is_other_photos_never_the_photo_itself():
    classifier = _tiny_square_classifier()
    photos = [Photo(Path(f"/nowhere/{i}.png"), f"{i}.png") for i in range(4)]
    loaded = []
    original = photo_evaluation.read_photo
    photo_evaluation.read_photo = lambda photo: loaded.append(photo.file) or (
        Image.new("RGB", (16, 16), (int(photo.file[0]),) * 3), "")
    try:
        cache = {}
        refs = photo_evaluation._reference_set(classifier, photos, [photos[2]], 2, [2, 0, 3, 1], cache)
        again = photo_evaluation._reference_set(classifier, photos, [photos[0]], 2, [2, 0, 3, 1], cache)
    finally:
        photo_evaluation.read_photo = original
    assert refs.shape == (2, 3, 16, 16) and again.shape == (2, 3, 16, 16)
    expected = lambda i: classifier.preprocess(Image.new("RGB", (16, 16), (i,) * 3))[0]
    torch.testing.assert_close(refs, torch.stack([expected(0), expected(3)]))  # 2 is the photo itself
    torch.testing.assert_close(again, torch.stack([expected(2), expected(3)]))
    assert loaded == ["0.png", "3.png", "2.png"]  # each photo decoded once


def test_command_writes_the_results_file_with_every_method(tmp_path, monkeypatch):
    (tmp_path / "photos").mkdir()
    folder = _photo_folder(tmp_path / "photos")
    monkeypatch.setattr(evaluation, "load_classifier", lambda *a, **k: _tiny_square_classifier())
    out, per_method = tmp_path / "RESULTS-methods.md", tmp_path / "per_method.csv"
    evaluation.main(["--folder", str(folder), "--limit", "2", "--methods", "all", "--out", str(out), "--steps", "4",
             "--max-steps", "32", "--pixels-per-step", "16", "--ablation-steps", "4", "--curve-steps", "4",
             "--option", "smoothgrad.samples=3", "--per-method", str(per_method)])
    text = out.read_text()
    assert text.startswith("# Attribution methods")
    assert f"Command: `python -m families.vision.evaluation --folder {folder} --limit 2 --methods all" in text
    assert f"torch {torch.__version__}" in text and "Date: 20" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith(("| method", "| ---"))]
    assert [row.split(" | ")[0][2:] for row in rows] == list(ig_core.METHODS) + ["random"]
    assert "smoothgrad: base=gradient, samples=3," in text
    assert len(pd.read_csv(per_method)) == 2 * (len(ig_core.METHODS) + 1)
    csv = tmp_path / "photos.csv"  # the old use: a per-photo CSV
    evaluation.main(["--folders", str(folder), "--limit", "2", "--methods", "gradient", "--out", str(csv),
             "--ablation-steps", "2", "--pixels-per-step", "16", "--curve-steps", "2", "--no-random"])
    assert list(pd.read_csv(csv).file) == ["images/p0.png", "images/p1.png"]


# --- the real classifier -------------------------------------------------------------------------

def test_real_model_smoke_three_photos(shared_data):
    engine = AttributionEngine(device="cpu")
    classifier = load_classifier("mobilenet_v2", device="cpu")
    photos = (list_photos(shared_data / "imagenet_samples", 2)
              + list_photos(shared_data / "imagenet_val_boxes", 1))
    result = evaluate_photos(classifier, photos, engine, methods=["integrated_gradients", "gradient"],
                             scan=ScanSettings(rule="adaptive", steps=8, tolerance=0.05, max_steps=32),
                             pixels_per_step=500,
                             ablation_steps=10, curve_steps=4, include_random=False)
    t, per = result.table, result.per_method.set_index(["method", "file"])
    assert len(t) == 3
    assert t.loc[0, "predicted"] == 0  # the tench photo
    assert np.isfinite(t.relative_delta).all() and (t.relative_delta < 0.2).all()
    assert (per.aopc > 0).all()
    assert (per.deletion_auc < per.insertion_auc).all()  # removing the top pixels hurts more than adding them helps
    assert t.has_box.tolist() == [False, False, True]
    assert per.localization.between(0, 1).sum() == 2  # one boxed photo, two methods


def test_evaluation_page_runs_with_limit_two(shared_data):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "dashboard" / "pages" / "vision_evaluation.py"), default_timeout=600)
    at.session_state["scan_settings"] = ScanSettings(rule="trapezoid", steps=8)
    at.run()
    assert not at.exception
    study = at.radio(key="vision_eval_study")
    assert study.value == "quick look" and at.multiselect[0].value == list(QUICK_LOOK.methods)
    assert "full study: 20 photos, every method (about 13 min on a 2-core CPU)" in study.options
    study.set_value("full study").run()  # one choice away: the form holds the paper's settings and every method
    inputs = {n.label: n for n in at.number_input}
    assert [inputs[label].value for label in ("Photos (at most)", "Pixels per ablation step", "Ablation steps",
                                              "Deletion / insertion steps", "Path points per photo, at most")] == [
        20, 100, 50, 16, 512]
    [methods] = at.multiselect
    assert methods.value == list(ig_core.METHODS)
    inputs["Photos (at most)"].set_value(2)
    inputs["Ablation steps"].set_value(5)
    inputs["Deletion / insertion steps"].set_value(4)
    methods.set_value(["integrated_gradients", "gradient"])
    at.button[0].click().run()
    assert not at.exception, at.exception
    result = at.session_state["vision_eval_result"]
    assert len(result.table) == 2
    assert list(result.per_method.method.unique()) == ["integrated_gradients", "gradient", "random"]
    assert any("Summary" in h.value for h in at.subheader)
    assert len(at.dataframe) >= 3
    assert [b.label for b in at.get("download_button")] == [
        "Download per-photo CSV", "Download per-photo and method CSV", "Download curves CSV"]
    assert not result.partial and not at.warning and "Stop" not in [b.label for b in at.button]


def test_a_stop_after_two_photos_keeps_their_results_shown_as_partial(shared_data, tmp_path, monkeypatch):
    from streamlit.runtime.scriptrunner_utils.exceptions import StopException
    from streamlit.testing.v1 import AppTest

    photos = tmp_path / "data" / "imagenet_samples"
    photos.mkdir(parents=True)
    rng = np.random.default_rng(3)
    for name in ("a.png", "b.png", "c.png", "d.png"):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(photos / name)
    monkeypatch.setenv("IG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IG_MODELS_DIR", str(shared_data / "models"))
    monkeypatch.setenv("IG_VISION_ARCH", "mobilenet_v2")
    monkeypatch.delenv("IG_VISION_WEIGHTS", raising=False)
    real = photo_evaluation.evaluate_photos

    def interrupted_after_two(*args, partial, **kwargs):
        """The run as a Stop click leaves it: Streamlit raises at the page's next drawing after the click, here the
        one right after the second photo's results were handed over."""
        def handed_over(so_far):
            partial(so_far)
            if so_far.photos_done == 2:
                raise StopException()
        return real(*args, partial=handed_over, **kwargs)

    monkeypatch.setattr(photo_evaluation, "evaluate_photos", interrupted_after_two)
    at = AppTest.from_file(str(ROOT / "dashboard" / "pages" / "vision_evaluation.py"), default_timeout=600)
    at.session_state["scan_settings"] = ScanSettings(rule="trapezoid", steps=4)
    at.run()
    at.selectbox(key="vision_weights").set_value(LOCAL_WEIGHTS["mobilenet_v2"].removeprefix("models/")).run()
    inputs = {n.label: n for n in at.number_input}
    inputs["Photos (at most)"].set_value(4)
    inputs["Ablation steps"].set_value(2)
    inputs["Deletion / insertion steps"].set_value(2)
    at.multiselect[0].set_value(["gradient"])
    [run] = [b for b in at.button if b.label == "Run evaluation"]
    run.click().run()
    assert not at.exception, at.exception
    # drawn as it ran: after the first photo, and after the second too where the first took REDRAW_SECONDS
    assert any(re.match(r"Results so far: the first [12] of 4 photos", i.value) for i in at.info)
    at.button(key="vision_eval_stop").click().run()  # the click's rerun finds the results kept
    assert not at.exception and not at.error, [e.value for e in at.error]
    kept = at.session_state["vision_eval_result"]
    assert list(kept.table.file) == ["a.png", "b.png"] and kept.partial and kept.planned == 4
    assert len(kept.per_method) == 2 * 2  # gradient and the random order, for the two photos only
    [note] = at.warning
    assert note.value.startswith("Partial results: the evaluation was stopped after 2 of 4 photos.")
    methods = next(d.value for d in at.dataframe if "AOPC ↑ (± s.e.)" in d.value.columns)
    assert methods.photos.tolist() == [2, 2]
    assert [b.label for b in at.get("download_button")] == [
        "Download per-photo CSV", "Download per-photo and method CSV", "Download curves CSV"]


def test_the_runner_hands_over_the_results_so_far_after_every_photo_but_the_last(tmp_path, engine):
    photos = list_photos(_photo_folder(tmp_path))
    handed = []
    result = evaluate_photos(_tiny_square_classifier(), photos, engine, methods=["gradient"],
                             scan=ScanSettings(rule="trapezoid", steps=4), pixels_per_step=16, ablation_steps=2,
                             curve_steps=2, partial=handed.append)
    assert [so_far.photos_done for so_far in handed] == [1, 2] and all(so_far.partial for so_far in handed)
    assert not result.partial and result.photos_done == result.planned == 3
    for so_far in handed:  # each the first rows of the whole result, as the photos are taken in order
        k = so_far.photos_done
        pd.testing.assert_frame_equal(so_far.table.drop(columns=["seconds", "eval_seconds"]),
                                      result.table.drop(columns=["seconds", "eval_seconds"]).iloc[:k])
        pd.testing.assert_frame_equal(so_far.curves, result.curves.iloc[:len(so_far.curves)])
        assert set(so_far.curves.file) == {photo.file for photo in photos[:k]}
        assert 0 < so_far.settings["seconds"] <= result.settings["seconds"]


def _partial_result(done: int, planned: int, seconds: float) -> photo_evaluation.EvalResult:
    """The results so far of a run of `planned` photos, `done` of them taken in `seconds`: one row each."""
    table = pd.DataFrame({"file": [f"{i}.png" for i in range(done)]})
    empty = pd.DataFrame()
    return photo_evaluation.EvalResult(table, empty, empty, {"seconds": seconds}, pd.DataFrame(columns=["file"]),
                                       planned=planned)


def test_the_time_left_comes_from_the_photos_done_so_far():
    so_far = _partial_result(done=2, planned=5, seconds=10.0)
    # 5 s a photo: 25 s for all five, 12 s of which have passed (2 s into the third photo)
    assert so_far.seconds_left(12.0) == pytest.approx(13.0)
    assert so_far.seconds_left(30.0) == 0.0  # slower than the photos so far: no negative wait
    assert _partial_result(done=0, planned=5, seconds=3.0).seconds_left(3.0) is None
    assert (vision_eval_views.progress_text(5, so_far, 12.0) == "Evaluating 5 photos: 2 done, about 13 s left")
    assert vision_eval_views.progress_text(5, None, 4.0) == (
        "Evaluating 5 photos: 0 done; the time left is estimated once the first photo is done")
    long_run = _partial_result(done=3, planned=60, seconds=30.0)  # 600 s in all, 10 s of them passed
    assert vision_eval_views.progress_text(60, long_run, 40.0) == "Evaluating 60 photos: 3 done, about 9 min 20 s left"


@pytest.mark.parametrize("seconds, text", [(44.6, "45 s"), (59.7, "1 min"), (200, "3 min 20 s"), (204, "3 min 20 s"),
                                           (768, "13 min"), (4000, "1 h 7 min")])
def test_a_wait_is_written_as_precisely_as_an_estimate_can_be(seconds, text):
    assert vision_eval_views.duration_text(seconds) == text


def test_partial_results_say_what_they_cover():
    so_far = _partial_result(done=3, planned=20, seconds=30.0)
    assert vision_eval_views.partial_note(so_far, running=True) == (
        "Results so far: the first 3 of 20 photos, redrawn as the evaluation goes on.")
    stopped = vision_eval_views.partial_note(so_far, running=False)
    assert stopped.startswith("Partial results: the evaluation was stopped after 3 of 20 photos.")
    assert "cover those 3 photos only" in stopped
    assert "cover that photo only" in vision_eval_views.partial_note(_partial_result(1, 20, 9.0), running=False)
    curves, per_method = every_methods_evaluation()  # one photo's rows, the summaries over it alone
    assert set(vision_eval_views.method_frame(per_method).photos) == {1}
    assert set(mean_curves(curves).n) == {1}


def test_a_study_caps_the_path_points_of_any_rule():
    adaptive = capped_scan(ScanSettings(steps=16, max_steps=512), 64)
    assert (adaptive.steps, adaptive.max_steps, adaptive.tolerance) == (16, 64, 0.01)
    assert capped_scan(ScanSettings(steps=16), 8).steps == 8  # the starting grid fits the budget
    fixed = capped_scan(ScanSettings(rule="trapezoid", steps=256), 64)
    assert (fixed.rule, fixed.steps) == ("trapezoid", 64)
    assert capped_scan(ScanSettings(rule="trapezoid", steps=32), 64).steps == 32
    assert QUICK_LOOK.form_values()["methods"] == ["integrated_gradients", "gradient", "gradient_x_input"]
    assert FULL_STUDY.form_values() == dict(limit=20, methods=list(ig_core.METHODS), pixels_per_step=100,
                                            ablation_steps=50, curve_steps=16, path_points=512)


# --- noise fill, unreadable photos, the page's choices ---------------------------------------------

def _tiny_classifier() -> ImageClassifier:
    return ImageClassifier(model=Tiny(), arch="tiny", key="tiny", categories=[f"k{i}" for i in range(5)],
                           weights_source="test", resize_size=16, crop_size=16,
                           mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))


def test_noise_fill_is_uniform_random_colours_in_pixel_space():
    classifier = _tiny_classifier()
    noise = noise_fill(classifier, torch.zeros(16, 3, 32, 32), torch.Generator().manual_seed(0))
    pixels = classifier.unnormalize(noise).transpose(0, 1).reshape(3, -1)  # [channel, samples]
    assert float(pixels.min()) >= -1e-6 and float(pixels.max()) <= 1 + 1e-6
    np.testing.assert_allclose(pixels.mean(1).numpy(), 0.5, atol=0.01)  # uniform in [0, 1]: mean 1/2 ...
    np.testing.assert_allclose(pixels.std(1).numpy(), 12 ** -0.5, atol=0.01)  # ... and std 1/sqrt(12)
    correlation = np.corrcoef(pixels.numpy())
    assert np.abs(correlation[np.triu_indices(3, 1)]).max() < 0.05  # channels independent: colours, not grey


def test_runner_skips_unreadable_photos_with_their_reasons(tmp_path, engine):
    rng = np.random.default_rng(0)
    for name in ("good1.png", "good2.png"):
        Image.fromarray(rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)).save(tmp_path / name)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    photos = list_photos(tmp_path) + [Photo(tmp_path / "gone.png", "gone.png")]
    result = evaluate_photos(_tiny_classifier(), photos, engine, scan=ScanSettings(rule="trapezoid", steps=4),
                             pixels_per_step=16, ablation_steps=2, fill="noise")
    assert list(result.table.file) == ["good1.png", "good2.png"]
    reasons = dict(zip(result.skipped.file, result.skipped.reason))
    assert set(reasons) == {"broken.png", "gone.png"}
    assert "damaged or truncated" in reasons["broken.png"] or "not a recognised image" in reasons["broken.png"]
    assert "could not be read (No such file or directory)" in reasons["gone.png"]
    assert not any(str(tmp_path) in reason for reason in reasons.values())


def test_evaluation_page_offers_configured_folders_and_lists_skipped_photos(shared_data, tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    photos = tmp_path / "data" / "imagenet_samples"
    photos.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name in ("a.png", "b.png"):
        Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(photos / name)
    (photos / "corrupt.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    monkeypatch.setenv("IG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("IG_MODELS_DIR", str(shared_data / "models"))
    monkeypatch.setenv("IG_VISION_ARCH", "mobilenet_v2")
    monkeypatch.delenv("IG_VISION_WEIGHTS", raising=False)
    at = AppTest.from_file(str(ROOT / "dashboard" / "pages" / "vision_evaluation.py"), default_timeout=600)
    at.session_state["scan_settings"] = ScanSettings(rule="trapezoid", steps=4)
    at.run()
    assert not at.exception and not at.text_input  # no path is ever typed
    weights = at.selectbox(key="vision_weights")
    file = LOCAL_WEIGHTS["mobilenet_v2"].removeprefix("models/")
    assert weights.options == ["automatic", file, "upload a state_dict..."]
    weights.set_value(file).run()
    assert not at.error, [e.value for e in at.error]
    [folder] = [s for s in at.selectbox if s.label == "Photos"]
    assert folder.options == ["imagenet_samples"]
    inputs = {n.label: n for n in at.number_input}
    inputs["Ablation steps"].set_value(2)
    inputs["Pixels per ablation step"].set_value(500)
    inputs["Deletion / insertion steps"].set_value(2)
    at.multiselect[0].set_value(["gradient"])
    [button] = [b for b in at.button if b.label == "Run evaluation"]
    button.click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    result = at.session_state["vision_eval_result"]
    assert sorted(result.table.file) == ["a.png", "b.png"]
    assert list(result.skipped.file) == ["corrupt.jpg"]
    assert any("1 photo(s) could not be used" in w.value for w in at.warning)
    assert any("corrupt.jpg" in d.value.to_string() for d in at.dataframe)
    assert not any(str(tmp_path) in str(e.value) for e in [*at.warning, *at.error, *at.caption, *at.markdown])
