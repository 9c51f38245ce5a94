"""Vision evaluation (Section 2.5): AOPC pixel ablation, box localization and the runner.

Synthetic models whose answers are known by hand, then a real-model smoke test and the page."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torchvision import transforms

from ig_core import AttributionEngine, ScanSettings
from models import vision as mv
from models import vision_eval as ve
from views import vision_eval as vv

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
    a = torch.tensor([[[1.0, -2.0]], [[-3.0, 1.0]], [[1.0, 0.5]]])  # [3, 1, 2]
    assert torch.equal(ve.pixel_importance(a), torch.tensor([[5.0, 3.5]]))  # Eq. 1: sum_c |a|
    assert torch.equal(ve.pixel_importance(a, "sum"), torch.tensor([[-1.0, -0.5]]))
    assert torch.equal(ve.pixel_importance(a, "positive"), torch.tensor([[0.0, 0.0]]))
    assert ve.pixel_importance(a.unsqueeze(0).repeat(4, 1, 1, 1)).shape == (4, 1, 2)
    with pytest.raises(ValueError):
        ve.pixel_importance(a, "max")


def test_aopc_curve_by_hand():
    curve = ve.aopc_curve(np.array([[1.0, 0.5, 0.2]]))
    np.testing.assert_allclose(curve, [[0.0, 0.25, (0.5 + 0.8) / 3]])


def test_ablating_top_w_times_x_first_gives_the_largest_drop(engine):
    g = torch.Generator().manual_seed(0)
    w = torch.rand(1, 3, 8, 8, generator=g) + 0.1
    x = torch.rand(1, 3, 8, 8, generator=g) ** 3  # |w| and |w * x| rank the pixels differently
    model = engine.prepare(Linear(w))
    result = engine.attribute(model, x, 0, 0.0, steps=4, rule="trapezoid")
    torch.testing.assert_close(result.attributions, (w * x)[0].expand_as(result.attributions), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(result.gradient_at_input, w.expand_as(result.gradient_at_input))

    importance = {"ig": ve.pixel_importance(result.attributions.unsqueeze(0) if result.attributions.dim() == 3
                                            else result.attributions),
                  "gradient": ve.pixel_importance(result.gradient_at_input.reshape(x.shape)),
                  "random": torch.rand(1, 8, 8, generator=g)}
    scores = ve.perturbation_scores(model, x, [0], importance, torch.zeros(3, 8, 8), pixels_per_step=4, steps=16,
                                    output="identity", max_batch=7)
    contrib = (w * x).sum(1).flatten()  # per-pixel contribution, all positive
    best = torch.sort(contrib, descending=True).values
    expected = [float(contrib.sum() - best[:4 * k].sum()) for k in range(17)]
    # each score and each expected value is a float32 sum (or a difference of two) of at most 192 products w * x >= 0:
    # each sum is rounded by a few eps of their total, 16 eps covers both sides; an AOPC curve averages such drops
    rounding = 16 * EPS * float((w * x).sum())
    np.testing.assert_allclose(scores["ig"][0], expected, rtol=0, atol=rounding)  # greedy = optimal
    curves = {m: ve.aopc_curve(s)[0] for m, s in scores.items()}
    assert np.all(curves["ig"] >= curves["gradient"] - 2 * rounding)
    assert np.all(curves["ig"] >= curves["random"] - 2 * rounding)
    assert curves["ig"][-1] > curves["gradient"][-1] + 1e-3
    assert scores["ig"][0, -1] == pytest.approx(0.0, abs=1e-5)  # 16 steps x 4 = all 64 pixels


def test_regions_are_ablated_whole_in_order():
    imp = torch.zeros(1, 4, 4)
    imp[0, 2:, 2:] = 5.0  # block (1, 1) first
    imp[0, :2, :2] = 1.0  # then block (0, 0)
    ranks = ve._ranks(imp, region=2).view(4, 4)
    assert set(ranks[2:, 2:].flatten().tolist()) == {0, 1, 2, 3}
    assert set(ranks[:2, :2].flatten().tolist()) == {4, 5, 6, 7}


# --- localization ----------------------------------------------------------------------------------

def test_map_box_through_resize_and_centre_crop_by_hand():
    # 500 x 375 landscape: Resize(256) -> 341 x 256 (int(256 * 500 / 375) = 341), crop offsets
    # left = round((341 - 224) / 2) = round(58.5) = 58 (Python rounds half to even), top = 16.
    x0, y0, x1, y1 = ve.map_box((100, 50, 199, 149), 500, 375)
    assert x0 == pytest.approx(100 * 341 / 500 - 58)  # 10.2
    assert x1 == pytest.approx(200 * 341 / 500 - 58)  # 78.4
    assert y0 == pytest.approx(50 * 256 / 375 - 16)  # 18.13
    assert y1 == pytest.approx(150 * 256 / 375 - 16)  # 86.4
    assert ve.map_box((0, 0, 499, 374), 500, 375) == (0.0, 0.0, 224.0, 224.0)  # clipped to the crop
    # 375 x 500 portrait: 256 x 341, left = 16, top = 58
    x0, y0, x1, y1 = ve.map_box((115, 115, 276, 490), 375, 500)
    assert (x0, y0) == pytest.approx((115 * 256 / 375 - 16, 115 * 341 / 500 - 58))
    assert y1 == 224.0


def test_box_mask_matches_torchvision_preprocessing():
    w, h, box = 500, 333, (219, 77, 439, 241)
    canvas = np.zeros((h, w, 3), np.uint8)
    canvas[box[1]:box[3] + 1, box[0]:box[2] + 1] = 255
    tf = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224), transforms.ToTensor()])
    seen = tf(Image.fromarray(canvas))[0] > 0.5
    mask = ve.box_mask([box], w, h)
    iou = float((seen & mask).sum()) / float((seen | mask).sum())
    assert iou > 0.97


def test_localization_fraction():
    mask = torch.zeros(8, 8, dtype=torch.bool)
    mask[2:5, 3:7] = True
    a = torch.zeros(3, 8, 8)
    a[:, 2:5, 3:7] = torch.randn(3, 3, 4)
    assert ve.localization(a, mask) == pytest.approx(1.0)
    assert ve.localization(torch.ones(3, 8, 8), mask) == pytest.approx(12 / 64)
    b = torch.ones(3, 8, 8)
    b[:, ~mask] = -1.0  # negative outside: positive mass is all inside, absolute mass is spread
    assert ve.localization(b, mask, "positive") == pytest.approx(1.0)
    assert ve.localization(b, mask, "abs") == pytest.approx(12 / 64)
    with pytest.raises(ValueError):
        ve.localization(a, mask, "sum")


def test_saturation_alpha():
    alphas = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    scores = np.array([[0.0, 0.0], [0.5, 0.1], [0.95, 0.2], [0.9, 0.5], [1.0, 1.0]])
    np.testing.assert_allclose(ve.saturation_alpha(alphas, scores), [0.5, 1.0])


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
    photos = ve.list_photos(_photo_folder(tmp_path))
    assert [p.file for p in photos] == ["images/p0.png", "images/p1.png", "images/p2.png"]
    assert photos[0].boxes == [(2, 3, 20, 15), (20, 20, 25, 25)] and photos[0].label == 0
    assert len(ve.list_photos(tmp_path, limit=2)) == 2


@pytest.mark.parametrize("batch_size", [1, 2])
def test_runner_one_scan_per_photo_and_table(tmp_path, engine, batch_size):
    photos = ve.list_photos(_photo_folder(tmp_path))
    classifier = mv.ImageClassifier(model=Tiny(), arch="tiny", key="tiny", categories=[f"k{i}" for i in range(5)],
                                    weights_source="test", resize_size=16, crop_size=16, mean=(0.5,) * 3,
                                    std=(0.25,) * 3)
    calls = []
    original = engine.attribute
    engine.attribute = lambda *a, **k: calls.append(a[1].shape[0]) or original(*a, **k)
    seen = []
    result = ve.evaluate_photos(classifier, photos, engine, rule="adaptive", steps=8, tolerance=0.01,
                                max_steps=256, batch_size=batch_size, pixels_per_step=16, ablation_steps=8,
                                progress=seen.append)
    assert calls == ([1, 1, 1] if batch_size == 1 else [2, 1])  # one scan per photo (batch)
    t = result.table
    assert list(t.file) == [p.file for p in photos] and len(t) == 3
    assert (t.relative_delta <= 0.01 + 1e-9).all()
    assert t.saturated.dtype == bool and t.alpha_90.between(0, 1).all()
    assert t[["aopc_ig", "aopc_gradient", "aopc_random"]].notna().all().all()
    assert t.loc_ig.between(0, 1).all() and t.loc_gradient.between(0, 1).all()
    assert seen[-1] == pytest.approx(1.0) and all(b >= a - 1e-12 for a, b in zip(seen, seen[1:]))
    assert set(result.curves.method) == {"integrated gradients", "gradient", "random"}
    assert len(result.curves) == 3 * 3 * 9
    assert pd.read_csv(__import__("io").StringIO(result.to_csv())).shape == t.shape
    # views
    summary = vv.summary_frame(t)
    assert "mean AOPC, integrated gradients" in set(summary.measure)
    assert len(vv.localization_frame(t)) == 3
    fig5 = ve.mean_curves(result.curves)
    assert set(fig5.n) == {3} and len(fig5) == 27
    vv.aopc_chart(result.curves).to_dict()
    vv.score_chart(result.curves).to_dict()
    vv.completeness_chart(t).to_dict()


# --- the real classifier -------------------------------------------------------------------------

def test_real_model_smoke_three_photos(shared_data):
    engine = AttributionEngine(device="cpu")
    classifier = mv.load_classifier("mobilenet_v2", device="cpu")
    photos = ve.list_photos(shared_data / "imagenet_samples", 2) + ve.list_photos(shared_data / "imagenet_val_boxes", 1)
    result = ve.evaluate_photos(classifier, photos, engine, rule="adaptive", steps=8,
                                tolerance=0.05, max_steps=32, pixels_per_step=500, ablation_steps=10,
                                include_random=False)
    t = result.table
    assert len(t) == 3
    assert t.loc[0, "predicted"] == 0  # the tench photo
    assert np.isfinite(t.relative_delta).all() and (t.relative_delta < 0.2).all()
    assert (t.aopc_ig > 0).all() and (t.aopc_gradient > 0).all()
    assert t.has_box.tolist() == [False, False, True]
    assert 0 <= t.loc_ig[2] <= 1 and 0 <= t.loc_gradient[2] <= 1


def test_evaluation_page_runs_with_limit_two(shared_data):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app_pages" / "vision_evaluation.py"), default_timeout=600)
    at.session_state["scan_settings"] = ScanSettings(rule="trapezoid", steps=8)
    at.run()
    assert not at.exception
    inputs = {n.label: n for n in at.number_input}
    inputs["Photos (at most)"].set_value(2)
    inputs["Ablation steps"].set_value(5)
    at.button[0].click().run()
    assert not at.exception, at.exception
    result = at.session_state["vision_eval_result"]
    assert len(result.table) == 2
    assert any("Summary" in h.value for h in at.subheader)
    assert len(at.dataframe) >= 2


# --- noise fill, unreadable photos, the page's choices ---------------------------------------------

def _tiny_classifier() -> mv.ImageClassifier:
    return mv.ImageClassifier(model=Tiny(), arch="tiny", key="tiny", categories=[f"k{i}" for i in range(5)],
                              weights_source="test", resize_size=16, crop_size=16, mean=(0.485, 0.456, 0.406),
                              std=(0.229, 0.224, 0.225))


def test_noise_fill_is_uniform_random_colours_in_pixel_space():
    classifier = _tiny_classifier()
    noise = ve.noise_fill(classifier, torch.zeros(16, 3, 32, 32), torch.Generator().manual_seed(0))
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
    photos = ve.list_photos(tmp_path) + [ve.Photo(tmp_path / "gone.png", "gone.png")]
    result = ve.evaluate_photos(_tiny_classifier(), photos, engine, rule="trapezoid", steps=4,
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
    at = AppTest.from_file(str(ROOT / "app_pages" / "vision_evaluation.py"), default_timeout=600)
    at.session_state["scan_settings"] = ScanSettings(rule="trapezoid", steps=4)
    at.run()
    assert not at.exception and not at.text_input  # no path is ever typed
    weights = at.selectbox(key="vision_weights")
    file = mv.LOCAL_WEIGHTS["mobilenet_v2"].removeprefix("models/")
    assert weights.options == ["automatic", file, "upload a state_dict..."]
    weights.set_value(file).run()
    assert not at.error, [e.value for e in at.error]
    [folder] = [s for s in at.selectbox if s.label == "Photos"]
    assert folder.options == ["imagenet_samples"]
    inputs = {n.label: n for n in at.number_input}
    inputs["Ablation steps"].set_value(2)
    inputs["Pixels per ablation step"].set_value(500)
    [button] = [b for b in at.button if b.label == "Run evaluation"]
    button.click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    result = at.session_state["vision_eval_result"]
    assert sorted(result.table.file) == ["a.png", "b.png"]
    assert list(result.skipped.file) == ["corrupt.jpg"]
    assert any("1 photo(s) could not be used" in w.value for w in at.warning)
    assert any("corrupt.jpg" in d.value.to_string() for d in at.dataframe)
    assert not any(str(tmp_path) in str(e.value) for e in [*at.warning, *at.error, *at.caption, *at.markdown])
