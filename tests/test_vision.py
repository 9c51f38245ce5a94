"""models/vision.py and dashboard/renderers/vision.py: loading, bad inputs, baselines, explanations on the real
MobileNetV2."""
from __future__ import annotations

import io
import os
import pathlib
import pickle
import urllib.error

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from unsafe_files import RunsCode, torch_bytes

from dashboard.renderers import colours
from dashboard.renderers import vision as vision_views
from dashboard.renderers.completeness import completeness_frame
from families import config
from families.vision import family as vision_family
from families.vision.ablation import ablate, rectangle_mask
from families.vision.baselines import make_baseline
from families.vision.errors import ImageError, WeightsError, WeightsUnavailable
from families.vision.images import load_image
from families.vision.importance import top_fraction_mask
from families.vision.torchvision_classifiers import classifier_from_state_dict, load_cached_pretrained, load_classifier
from families.vision.weights import (
    LOCAL_WEIGHTS,
    automatic_weights,
    available_architectures,
    cached_weights_file,
    default_architecture,
    read_weights_file,
    resolve_weights,
    weights_files,
)
from ig_core import AttributionEngine, ScanSettings

ROOT = pathlib.Path(__file__).resolve().parents[1]

DATA = pathlib.Path(os.environ["IG_DATA_DIR"]) if os.environ.get("IG_DATA_DIR") else None
MOBILENET = DATA / LOCAL_WEIGHTS["mobilenet_v2"] if DATA else None
SAMPLES = DATA / "imagenet_samples" / "images" if DATA else None
EPS = torch.finfo(torch.float32).eps
pytestmark = pytest.mark.numeric
needs_data = pytest.mark.skipif(DATA is None or not MOBILENET.is_file(),
                                reason="IG_DATA_DIR is not set (or lacks the MobileNetV2 weights): real-model tests "
                                       "need the shared data directory")


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def gradient_image(size=(64, 48), mode="RGB") -> Image.Image:
    w, h = size
    arr = np.zeros((h, w, 3), dtype=np.uint8)
    arr[..., 0] = np.linspace(0, 255, w)[None, :]
    arr[..., 1] = np.linspace(0, 255, h)[:, None]
    arr[..., 2] = 128
    return Image.fromarray(arr).convert(mode)


# --- images -------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF"])
def test_supported_formats_decode_to_rgb(fmt):
    img = load_image(encode(gradient_image(), fmt))
    assert img.mode == "RGB" and img.size == (64, 48)
    assert img.info["notices"] == []


def test_load_from_path_and_file_object(tmp_path):
    path = tmp_path / "x.png"
    gradient_image().save(path)
    assert load_image(path).size == (64, 48)
    assert load_image(str(path)).size == (64, 48)
    with open(path, "rb") as f:
        assert load_image(f).size == (64, 48)


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "photo.jpg"
    path.write_text("this is not an image\n")
    with pytest.raises(ImageError, match="not a recognised image"):
        load_image(path)


def test_empty_file():
    with pytest.raises(ImageError, match="empty"):
        load_image(b"")


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="No such image file"):
        load_image(tmp_path / "nope.png")


def test_one_pixel_image_is_too_small():
    with pytest.raises(ImageError, match="1 x 1 pixels; it must be at least 16 x 16"):
        load_image(encode(Image.new("RGB", (1, 1), (255, 0, 0)), "PNG"))


def test_truncated_image():
    data = encode(gradient_image((256, 256)), "PNG")
    with pytest.raises(ImageError, match="damaged or truncated"):
        load_image(data[: len(data) // 2])


def test_decompression_bomb_is_refused_before_decoding():
    bomb = encode(Image.new("1", (20000, 20000)), "PNG")  # 400 megapixels in a few kB
    assert len(bomb) < 200_000
    with pytest.raises(ImageError, match="20000 x 20000|decompression bomb"):
        load_image(bomb)


def test_animated_gif_uses_first_frame_with_notice():
    frames = [Image.new("RGB", (32, 32), c) for c in [(255, 0, 0), (0, 0, 255), (0, 255, 0)]]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    img = load_image(buf.getvalue())
    assert img.mode == "RGB"
    r, g, b = img.getpixel((16, 16))
    assert r > 200 and g < 50 and b < 50  # the first (red) frame
    assert any("3 frames" in n and "first frame" in n for n in img.info["notices"])


def test_greyscale_palette_cmyk_convert_to_rgb():
    src = gradient_image()
    grey = load_image(encode(src.convert("L"), "PNG"))
    assert grey.mode == "RGB"
    arr = np.asarray(grey)
    assert (arr[..., 0] == arr[..., 1]).all() and (arr[..., 1] == arr[..., 2]).all()
    np.testing.assert_array_equal(arr[..., 0], np.asarray(src.convert("L")))
    pal = load_image(encode(src.convert("P", palette=Image.ADAPTIVE, colors=16), "PNG"))
    assert pal.mode == "RGB" and pal.size == src.size
    cmyk = load_image(encode(src.convert("CMYK"), "JPEG", quality=95))
    assert cmyk.mode == "RGB"
    assert np.abs(np.asarray(cmyk, dtype=int) - np.asarray(src, dtype=int)).mean() < 12


def test_rgba_is_composited_on_white():
    rgba = Image.new("RGBA", (32, 32), (255, 0, 0, 0))  # fully transparent red
    rgba.paste((0, 0, 255, 255), (0, 0, 16, 32))  # opaque blue left half
    img = load_image(encode(rgba, "PNG"))
    assert img.getpixel((24, 16)) == (255, 255, 255)
    assert img.getpixel((4, 16)) == (0, 0, 255)
    half = Image.new("LA", (32, 32), (0, 128))  # black at half opacity -> mid grey on white
    assert abs(load_image(encode(half, "PNG")).getpixel((5, 5))[0] - 127) <= 2


def test_sixteen_bit_greyscale_is_scaled_not_clipped():
    arr = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (32, 1))
    img16 = Image.fromarray(arr)
    assert img16.mode.startswith("I;16")
    img = load_image(encode(img16, "PNG"))
    out = np.asarray(img)[..., 0]
    assert out[0, 0] == 0 and out[0, -1] == 255
    assert 120 <= out[0, 32] <= 135  # mid-range stays mid-range (clipping would give 255)


# --- weights -----------------------------------------------------------------------------------------

def test_architectures_include_the_named_ones():
    archs = available_architectures()
    for name in ("googlenet", "inception_v3", "resnet50", "mobilenet_v2"):
        assert name in archs


def test_unknown_architecture():
    with pytest.raises(WeightsUnavailable, match="not a torchvision classification model"):
        load_classifier("no_such_net", "DEFAULT", device="cpu")


def test_no_weights_gives_clear_error_with_the_place_to_put_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv(config.VISION_WEIGHTS.name, raising=False)

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", offline)
    with pytest.raises(WeightsUnavailable) as err:
        load_classifier("googlenet", "DEFAULT", device="cpu")
    msg = str(err.value)
    assert "googlenet-1378be20.pth" in msg and str(tmp_path / "torch" / "hub" / "checkpoints") in msg
    assert config.VISION_WEIGHTS.name in msg and "no network" in msg


def test_missing_weights_file(tmp_path):
    with pytest.raises(WeightsUnavailable, match="does not exist"):
        load_classifier("mobilenet_v2", str(tmp_path / "missing.pth"), device="cpu")


def test_wrong_architecture_state_dict(tmp_path):
    path = tmp_path / "squeezenet.pth"
    torch.save(torchvision.models.squeezenet1_1().state_dict(), path)
    with pytest.raises(WeightsError, match="not a state_dict for mobilenet_v2.*another architecture"):
        load_classifier("mobilenet_v2", str(path), device="cpu")


def test_pickle_that_is_not_a_state_dict(tmp_path):
    listed = tmp_path / "list.pth"
    torch.save([torch.zeros(3)], listed)
    with pytest.raises(WeightsError, match="not a state_dict"):
        load_classifier("mobilenet_v2", str(listed), device="cpu")
    whole = tmp_path / "whole_model.pth"
    torch.save(torch.nn.Linear(2, 2), whole)  # a pickled module, refused by weights_only loading
    with pytest.raises(WeightsError, match="not a plain state_dict"):
        load_classifier("mobilenet_v2", str(whole), device="cpu")
    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(WeightsError):
        load_classifier("mobilenet_v2", str(plain), device="cpu")


def test_non_torch_file(tmp_path):
    path = tmp_path / "weights.pth"
    path.write_text("hello")
    with pytest.raises(WeightsError, match="not a PyTorch weights file"):
        load_classifier("mobilenet_v2", str(path), device="cpu")


def test_googlenet_file_is_configured_like_torchvision_pretrained(tmp_path):
    """transform_input on, auxiliary heads loaded then dropped: eval returns plain logits [N, 1000]."""
    torch.manual_seed(0)
    path = tmp_path / "googlenet.pth"
    torch.save(torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False).state_dict(), path)
    clf = load_classifier("googlenet", str(path), device="cpu")
    assert clf.model.transform_input is True
    assert clf.model.aux_logits is False and clf.model.aux1 is None and clf.model.aux2 is None
    assert not any(p.requires_grad for p in clf.model.parameters()) and not clf.model.training
    assert (clf.crop_size, clf.resize_size) == (224, 256) and len(clf.categories) == 1000
    assert clf.layer_names() == ["inception3b", "inception4b", "inception4d", "inception5b"]
    out = clf.model(torch.zeros(2, 3, 224, 224))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 1000)
    assert clf.key.startswith("googlenet:file:")


def test_environment_chooses_architecture_and_weights(tmp_path, monkeypatch):
    monkeypatch.setenv(config.VISION_ARCH.name, "resnet18")
    monkeypatch.setenv(config.VISION_WEIGHTS.name, str(tmp_path / "r18.pth"))
    assert default_architecture() == "resnet18"
    assert resolve_weights("resnet18") == str(tmp_path / "r18.pth")
    assert resolve_weights("mobilenet_v2") != str(tmp_path / "r18.pth")  # the file is for resnet18 only


# --- views (pure) ---------------------------------------------------------------------------------

def test_importance_map_polarities():
    a = np.zeros((3, 2, 2))
    a[:, 0, 0] = [1.0, 2.0, -0.5]  # sum 2.5, abs 3.5
    a[:, 1, 1] = [-1.0, -1.0, 0.0]  # sum -2
    np.testing.assert_allclose(vision_views.importance_map(a, "signed"), [[2.5, 0], [0, -2]])
    np.testing.assert_allclose(vision_views.importance_map(a, "absolute"), [[3.5, 0], [0, 2]])
    np.testing.assert_allclose(vision_views.importance_map(a, "positive"), [[2.5, 0], [0, 0]])
    np.testing.assert_allclose(vision_views.importance_map(a, "negative"), [[0, 0], [0, 2]])
    with pytest.raises(ValueError, match="polarity"):
        vision_views.importance_map(a, "sideways")


def test_clip_normalize_saturates_above_percentile():
    m = np.arange(100, dtype=float)
    out = vision_views.clip_normalize(m, 90)
    assert out.min() == 0 and out.max() == 1
    assert (out[m >= np.percentile(m, 90)] == 1).all() and out[45] == pytest.approx(45 / np.percentile(m, 90))
    assert (vision_views.clip_normalize(np.zeros((4, 4))) == 0).all()


def test_every_map_has_the_image_size_and_its_legend_below():
    wide = gradient_image((240, 30))
    channels = np.random.default_rng(0).normal(size=(3, 30, 240))
    for style in vision_views.STYLES:
        for polarity in vision_views.POLARITIES:
            out = vision_views.explained_map(wide, channels, polarity, 99, style)
            legend = vision_views.map_legend(polarity, 1.0, style, 240)
            assert out.size == (240, 30 + legend.height) and out.mode == "RGB"
    img = gradient_image((40, 30))
    narrow = vision_views.explained_map(img, channels[:, :, :40])
    assert narrow.width == vision_views.LEGEND_WIDTH  # the legend keeps room for its numbers and words
    with pytest.raises(ValueError, match="style"):
        vision_views.explained_map(wide, channels, "absolute", 99, "sideways")
    m = np.zeros((30, 40))
    assert np.asarray(vision_views.scale_intensity(img, m)).max() == 0  # no importance: black
    m[:] = 1
    np.testing.assert_array_equal(np.asarray(vision_views.scale_intensity(img, m)), np.asarray(img))
    grid = vision_views.image_grid([img] * 7, [f"a{i}" for i in range(7)], columns=5, pad=4, caption_height=16)
    assert grid.size == (5 * 44 + 4, 2 * (30 + 16 + 4) + 4)


def signed_channels(h: int = 20, w: int = 30) -> np.ndarray:
    """A synthetic attribution: positive on the left third, negative on the right third, 0 between."""
    channels = np.zeros((3, h, w))
    channels[:, :, : w // 3] = [[[0.2]], [[0.1]], [[0.1]]]  # sum 0.4
    channels[:, :, -(w // 3):] = -0.1  # sum -0.3
    return channels


def test_the_signed_map_is_red_where_the_attribution_is_positive_and_blue_where_negative():
    img = Image.new("RGB", (30, 20), (255, 255, 255))
    out = np.asarray(vision_views.explained_map(img, signed_channels()), dtype=float)
    left = (out.shape[1] - 30) // 2  # the map is centred over the wider legend
    picture = out[:20, left:left + 30]
    # on a white photo the colours are the signed scale's own: full red at the 99th percentile of |sum| (0.4)
    np.testing.assert_allclose(picture[:, :10], np.broadcast_to(255 * np.array(colours.POSITIVE), (20, 10, 3)),
                               atol=1)
    np.testing.assert_allclose(picture[:, -10:],
                               np.broadcast_to(255 * colours.signed_rgb(-0.3, 0.4), (20, 10, 3)), atol=1)
    assert (picture[:, -10:, 2] > picture[:, -10:, 0]).all()  # blue
    np.testing.assert_allclose(picture[:, 10:20], 255, atol=1)  # no effect: the photo as it is


def test_the_signed_map_keeps_the_photo_and_one_pixel_does_not_wash_it_out():
    channels = signed_channels(40, 30)
    channels[:, 0, 0] = 100.0  # one extreme pixel
    photo = gradient_image((30, 40))
    out = np.asarray(vision_views.explained_map(photo, channels), dtype=float)
    left = (out.shape[1] - 30) // 2
    picture = out[:40, left:left + 30]
    assert (picture[1:, :10, 0] > 1.5 * picture[1:, :10, 2]).all()  # still red, not pale, beside the extreme pixel
    middle = picture[:, 10:20]
    assert np.ptp(middle) > 20 and (middle[..., 0] == middle[..., 1]).all()  # the greyed photo shows through


@pytest.mark.parametrize("polarity, style, expected_top", [
    ("signed", "intensity", 0.4),  # the 99th percentile of |sum over channels|
    ("absolute", "intensity", 0.4),
    ("absolute", "overlay", 0.4),
    ("negative", "overlay", 0.3),
])
def test_the_legend_below_a_map_is_drawn_for_the_maps_own_scale(polarity, style, expected_top):
    img = Image.new("RGB", (240, 20), (128, 128, 128))
    out = vision_views.explained_map(img, signed_channels(20, 240), polarity, 99, style)
    legend = np.asarray(out)[20:]
    np.testing.assert_array_equal(legend, np.asarray(vision_views.map_legend(polarity, expected_top, style, 240)))
    assert not np.array_equal(legend, np.asarray(vision_views.map_legend(polarity, 2 * expected_top, style, 240)))


def test_the_signed_legend_is_the_families_colour_bar():
    np.testing.assert_array_equal(np.asarray(vision_views.map_legend("signed", 0.25, width=300)),
                                  np.asarray(colours.legend_image(0.25, 300, vision_views.SIGNED_LABEL)))


def test_charts_and_tables():
    alphas = np.linspace(0, 1, 5)
    chart = vision_views.saturation_chart(alphas, np.random.rand(5, 2), np.random.rand(5, 2), ["a", "b"])
    spec = chart.to_dict()
    assert len(spec["hconcat"]) == 2
    assert vision_views.layer_distance_chart(alphas, np.random.rand(5), np.random.rand(5), "features.18").to_dict()
    assert vision_views.mean_gradient_chart(alphas, np.random.rand(5), "x", 0.5).to_dict()
    frame = completeness_frame(["a", "b"], [3, 7], np.array([0.9, 0.1]), np.array([0.0, 0.0]),
                                  np.array([0.9, 0.2]), np.array([0.0, 1.0]), 0.01)
    assert list(frame["within tolerance"]) == [True, False]
    assert frame["delta"].tolist() == pytest.approx([0.0, 0.1])
    assert np.load(io.BytesIO(vision_views.npy_bytes(np.ones((2, 3))))).shape == (2, 3)
    assert vision_views.png_bytes(gradient_image()).startswith(b"\x89PNG")



@pytest.mark.parametrize("law, expected", [
    ("F(input) - F(baseline)", "baseline: grey image"),
    (None, "baseline: grey image"),
    ("F(input) - mean F(reference)", "baseline: the method's own (mean F(reference)), not the one chosen above"),
    ("F(input) - F(blurred input)", "baseline: the method's own (F(blurred input)), not the one chosen above"),
])
def test_the_completeness_note_names_the_baseline_the_law_speaks_of(law, expected):
    assert vision_views.baseline_note(law, "grey image") == expected

def test_masks():
    imp = np.arange(100, dtype=float).reshape(10, 10)
    mask = top_fraction_mask(imp, 0.1)
    assert mask.sum() == 10 and mask[9].all()
    rect = rectangle_mask((10, 10), 2, 3, 5, 7)
    assert rect.sum() == 3 * 4 and rect[3, 2] and not rect[7, 2]


# --- the real MobileNetV2 -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def classifier():
    if DATA is None or not MOBILENET.is_file():
        pytest.skip("IG_DATA_DIR is not set: the real MobileNetV2 weights are in the shared data directory")
    return load_classifier("mobilenet_v2", str(MOBILENET), device="cpu")


@pytest.fixture(scope="module")
def tench():
    return load_image(SAMPLES / "n01440764_tench.JPEG")


@needs_data
def test_preprocessing_and_prediction(classifier, tench):
    x = classifier.preprocess(tench)
    assert x.shape == (1, 3, 224, 224) and x.dtype == torch.float32
    assert classifier.crop(tench).size == (224, 224)
    pixels = classifier.unnormalize(x)
    assert -1e-5 <= float(pixels.min()) and float(pixels.max()) <= 1 + 1e-5
    np.testing.assert_allclose(np.asarray(classifier.to_pil(x), dtype=float),
                               np.asarray(classifier.crop(tench), dtype=float), atol=1)
    probs = classifier.predict(x)
    assert probs.shape == (1, 1000) and float(probs.sum()) == pytest.approx(1.0, abs=1e-4)
    top = classifier.top_k(x, 5)
    assert top[0][:2] == (0, "tench") and len(top) == 5
    assert classifier.key.startswith("mobilenet_v2:file:a4b8efa7")
    assert classifier.class_index("tench") == 0


@needs_data
def test_baselines(classifier, tench):
    x = classifier.preprocess(tench)
    black = make_baseline(classifier, "black", x)
    assert black.shape == x.shape
    assert torch.allclose(classifier.unnormalize(black), torch.zeros_like(x), atol=1e-6)  # zero pixels
    assert float(black.abs().min()) > 1.0  # ... which is not a normalized zero
    grey = make_baseline(classifier, "grey", x)
    assert torch.allclose(classifier.unnormalize(grey), torch.full_like(x, 0.5), atol=1e-6)
    blurred = classifier.unnormalize(make_baseline(classifier, "blurred", x))
    pixels = classifier.unnormalize(x).clamp(0, 1)
    assert blurred.mean().item() == pytest.approx(pixels.mean().item(), abs=0.02)
    assert blurred.diff(dim=-1).abs().mean() < 0.3 * pixels.diff(dim=-1).abs().mean()  # smoother
    with pytest.raises(ValueError, match="unknown baseline"):
        make_baseline(classifier, "pink", x)


@needs_data
def test_completeness_with_the_adaptive_default(classifier, tench):
    engine = AttributionEngine(device="cpu")
    ex = vision_family.explain(engine, classifier, tench, None, "black", ScanSettings(), layer_name="features.18")
    assert ex.targets == [0] and ex.labels == ["tench"]
    assert ex.relative_delta[0] <= 0.01, ex.attribution.summary()
    assert ex.completeness_ok
    # Eq. 1 aggregation keeps completeness: pixel importances add up to the attribution total ...
    total = float(ex.attributions(0).astype(np.float64).sum())
    # each pixel's float32 sum of 3 channels is rounded by at most eps * sum_c |a_c|: eps * sum |a| in all
    size = float(np.abs(ex.attributions(0)).astype(np.float64).sum())
    assert float(ex.pixel_importance(0).astype(np.float64).sum()) == pytest.approx(total, abs=EPS * size)
    # ... and to F(input) - F(baseline) within the tolerance
    assert total == pytest.approx(ex.score(0) - ex.baseline_score(0), rel=0.01)
    assert ex.probe_alphas == list(vision_family.PROBE_ALPHAS)
    assert ex.gradient(0, 0.02).shape == (3, 224, 224)
    a = ex.attribution
    assert a.layer_l2.shape == (len(a.alphas), 1) and a.layer_l2[-1, 0] == pytest.approx(0, abs=1e-4)
    assert a.scores[-1, 0, 0] == pytest.approx(float(ex.probabilities[0]), abs=1e-4)
    # Figure 2: saturation; the score at alpha = 0.6 already is most of the final score
    k = list(a.alphas).index(0.6)
    assert a.scores[k, 0, 0] > 0.5 * a.scores[-1, 0, 0]



@needs_data
def test_smoothgrad_shows_the_photos_own_score_and_the_mean_over_noisy_copies_apart(classifier, tench):
    engine = AttributionEngine(device="cpu")
    ex = vision_family.explain(engine, classifier, tench, None, "black", ScanSettings().with_method("smoothgrad",
                                                                                                    samples=4))
    photo, noisy = float(ex.probabilities[0]), float(ex.attribution.score_input[0, 0])
    assert abs(photo - noisy) > 1e-3  # noise moves the score: the two are different numbers
    assert ex.score(0) == photo
    assert vision_views.score_text(ex.score(0), ex.attribution) == (
        f"softmax {photo:.4f} (mean over 4 noisy copies: {noisy:.4f})")
    ig = vision_family.explain(engine, classifier, tench, None, "black", ScanSettings(rule="trapezoid", steps=3))
    assert vision_views.score_text(ig.score(0), ig.attribution) == f"softmax {photo:.4f}"

@needs_data
def test_several_targets_share_one_scan(classifier, tench):
    engine = AttributionEngine(device="cpu")
    settings = ScanSettings(rule="trapezoid", steps=3)
    ex = vision_family.explain(engine, classifier, tench, [0, 1, 0], "black", settings)
    assert ex.targets == [0, 1] and ex.labels == ["tench", "goldfish"]
    assert ex.all_attributions().shape == (2, 3, 224, 224)
    assert ex.attribution.scores.shape[1:] == (1, 2)
    one = vision_family.explain(engine, classifier, tench, 1, "black", settings)
    np.testing.assert_allclose(one.attributions(0), ex.attributions(1), rtol=1e-4, atol=1e-7)
    with pytest.raises(ValueError, match="out of range"):
        vision_family.explain(engine, classifier, tench, [5000], "black", settings)


@needs_data
def test_ablation(classifier, tench):
    x = classifier.preprocess(tench)
    none = ablate(classifier, x, np.zeros((224, 224), bool), target=0)
    assert none.top_index == 0 and none.fraction == 0
    assert none.target_probability == pytest.approx(float(classifier.predict(x)[0, 0]), abs=1e-5)
    everything = ablate(classifier, x, np.ones((224, 224), bool), target=0)
    black = make_baseline(classifier, "black", x)
    assert torch.equal(everything.ablated, black) and everything.fraction == 1
    assert np.asarray(everything.image).max() == 0
    with pytest.raises(ValueError, match="mask shape"):
        ablate(classifier, x, np.zeros((10, 10), bool))


# --- weights the browser may choose: configured files and uploads, never a typed path ----------------

def test_weights_files_lists_the_models_folder_by_relative_name(tmp_path, monkeypatch):
    models = tmp_path / "models"
    (models / "sub").mkdir(parents=True)
    for name in ("a.pth", "sub/b.pt", "notes.txt"):
        (models / name).write_bytes(b"x")
    monkeypatch.setenv("IG_MODELS_DIR", str(models))
    monkeypatch.setenv("IG_DATA_DIR", str(tmp_path / "data"))
    assert weights_files() == {"a.pth": models / "a.pth", "sub/b.pt": models / "sub" / "b.pt"}
    monkeypatch.setenv("IG_MODELS_DIR", str(tmp_path / "missing"))
    assert weights_files() == {}


@needs_data
def test_weights_files_include_the_known_data_file(tmp_path, monkeypatch):
    monkeypatch.delenv("IG_MODELS_DIR", raising=False)  # default: <data folder>/models
    relative = LOCAL_WEIGHTS["mobilenet_v2"].removeprefix("models/")
    assert weights_files() == {relative: MOBILENET.resolve()}
    monkeypatch.setenv("IG_MODELS_DIR", str(tmp_path))  # elsewhere: the known file is still offered
    assert weights_files() == {LOCAL_WEIGHTS["mobilenet_v2"]: MOBILENET.resolve()}


def test_automatic_weights_never_download_and_name_no_server_path(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("IG_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv(config.VISION_WEIGHTS.name, raising=False)
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", pytest.fail)
    with pytest.raises(WeightsUnavailable, match="No pretrained weights for googlenet") as err:
        automatic_weights("googlenet")
    assert str(tmp_path) not in str(err.value) and "googlenet-1378be20.pth" in str(err.value)
    monkeypatch.setenv(config.VISION_ARCH.name, "resnet18")
    monkeypatch.setenv(config.VISION_WEIGHTS.name, str(tmp_path / "r18.pth"))  # read when asked, not frozen
    assert automatic_weights("resnet18") == ("$IG_VISION_WEIGHTS", tmp_path / "r18.pth")
    with pytest.raises(WeightsUnavailable,
                       match=r"The weights file \$IG_VISION_WEIGHTS does not exist") as err:
        read_weights_file(tmp_path / "r18.pth", "$IG_VISION_WEIGHTS")
    assert str(tmp_path) not in str(err.value)


@pytest.mark.parametrize("data, message", [
    (torch_bytes({"weight": RunsCode()}), "holds Python objects or code that safe loading refuses"),
    (torch_bytes(torchvision.models.squeezenet1_1().state_dict()), "not a state_dict for mobilenet_v2"),
    (b"\x89PNG garbage, not weights", "not a PyTorch weights file"),
    (b"", "not a PyTorch weights file"),
    (torch_bytes([torch.zeros(3)]), "not a state_dict"),
])
def test_state_dict_bytes_that_do_not_fit_give_clear_errors(data, message):
    with pytest.raises(WeightsError, match=message) as err:
        classifier_from_state_dict("mobilenet_v2", data, "upload.pth", device="cpu")
    assert str(err.value).startswith("upload.pth ") and str(ROOT) not in str(err.value)


@needs_data
def test_state_dict_bytes_and_the_file_give_the_same_model_key(classifier):
    uploaded = classifier_from_state_dict("mobilenet_v2", MOBILENET.read_bytes(), "copy.pth",
                                          device="cpu")
    assert uploaded.key == classifier.key  # the key is the content digest, whatever the route or name
    assert "sha256" in uploaded.weights_source and str(DATA) not in uploaded.weights_source


def test_cached_torchvision_weights_are_used_but_never_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.delenv(config.VISION_WEIGHTS.name, raising=False)
    with pytest.raises(WeightsUnavailable, match="not in this server's cache"):
        load_cached_pretrained("mobilenet_v2", device="cpu")
    cached = cached_weights_file("mobilenet_v2")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"damaged")
    assert automatic_weights("mobilenet_v2") == (
        "torchvision MobileNet_V2_Weights.IMAGENET1K_V2 (cached)", None)
    with pytest.raises(WeightsUnavailable, match="could not be loaded") as err:
        load_cached_pretrained("mobilenet_v2", device="cpu")
    assert cached.name in str(err.value) and str(tmp_path) not in str(err.value)
