"""Pictures, charts and tables of the Vision page, as pure functions (no Streamlit calls).

Inputs are numpy arrays (attributions/gradients [3, H, W], trends [K] or [K, T]) and PIL images;
outputs are PIL images, numpy arrays, altair charts and pandas frames, so all of it is testable
without a browser.

Maps: signed by default, on the one signed scale of every family (dashboard.renderers.colours: red raises F, blue
lowers F); the paper's |attribution| and the positive or negative part on their own sequential scales. Every map the
pages show comes with the legend of its colours below it (explained_map).
"""
from __future__ import annotations

import io
from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

from dashboard.renderers import colours
from families.vision.importance import pixel_importance

POLARITIES = ("signed", "absolute", "positive", "negative")
# the polarities as families.vision.importance modes
_POLARITY_MODES = {"signed": "sum", "absolute": "abs", "positive": "positive", "negative": "negative"}
# for the unsigned polarities: the paper's scaled pixel intensity, or a heat map over a dimmed image
STYLES = ("intensity", "overlay")
UNSIGNED_LABELS = {"absolute": "|attribution|", "positive": "positive part (raises F)",
                   "negative": "negative part (lowers F)"}
SIGNED_LABEL = "sum over colour channels"
PHOTO_SHADE = 0.4  # how dark the photo stays under a signed map (0: white, 1: its greys as they are)
LEGEND_WIDTH = 224  # the narrowest legend whose numbers and words stay apart

TARGET_COLOURS = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e")  # first target red, second blue, ...

# A perceptual dark-to-bright map (close to matplotlib's "inferno"), as anchor colours.
_INFERNO = np.array([
    [0, 0, 4], [31, 12, 72], [85, 15, 109], [136, 34, 106], [186, 54, 85],
    [227, 89, 51], [249, 140, 10], [249, 201, 50], [252, 255, 164],
], dtype=np.float64)
_BLUES = np.array([[0, 0, 4], [8, 48, 107], [33, 113, 181], [107, 174, 214], [222, 235, 247]], dtype=np.float64)


# --- maps -----------------------------------------------------------------------------------------

def importance_map(channels: np.ndarray, polarity: str = "signed") -> np.ndarray:
    """Per-pixel importance [H, W] from a [3, H, W] attribution or gradient.

    signed: the sum over colour channels, negative where the pixel lowers the score; absolute: sum over colour
    channels of |value| (Eq. 1); positive / negative: the part of the signed channel sum that raises / lowers the
    score, >= 0 (families.vision.importance.pixel_importance's modes).
    """
    a = np.asarray(channels, dtype=np.float64)
    if a.ndim != 3:
        raise ValueError(f"expected [channels, H, W], got shape {a.shape}")
    if polarity not in _POLARITY_MODES:
        raise ValueError(f"unknown polarity {polarity!r}; choose one of {', '.join(POLARITIES)}")
    return pixel_importance(a, _POLARITY_MODES[polarity])


def saturation_value(values: np.ndarray, clip_percentile: float = 99.0) -> float:
    """Where a non-negative map saturates: its clip percentile, or its largest value where that is 0."""
    m = np.asarray(values, dtype=np.float64)
    if m.size == 0:
        return 0.0
    top = np.percentile(m, clip_percentile) if clip_percentile < 100 else m.max()
    return float(top if np.isfinite(top) and top > 0 else m.max())


def clip_normalize(values: np.ndarray, clip_percentile: float = 99.0, floor_percentile: float = 0.0) -> np.ndarray:
    """Scale a non-negative map to [0, 1]: values above the clip percentile saturate at 1 (so a few
    extreme pixels do not make the rest invisible); values below the floor percentile become 0."""
    m = np.asarray(values, dtype=np.float64)
    if m.size == 0:
        return m
    top = saturation_value(m, clip_percentile)
    bottom = np.percentile(m, floor_percentile) if floor_percentile > 0 else 0.0
    if not np.isfinite(top) or top <= bottom:
        top = m.max()
    if top <= bottom:
        return np.zeros_like(m)
    return np.clip((m - bottom) / (top - bottom), 0.0, 1.0)


def colormap(m01: np.ndarray, name: str = "inferno") -> np.ndarray:
    """[H, W] in [0, 1] -> uint8 RGB [H, W, 3]."""
    anchors = _BLUES if name == "blues" else _INFERNO
    positions = np.linspace(0.0, 1.0, len(anchors))
    v = np.clip(np.asarray(m01, dtype=np.float64), 0, 1)
    rgb = np.stack([np.interp(v, positions, anchors[:, c]) for c in range(3)], axis=-1)
    return rgb.round().astype(np.uint8)


def _pixels(image: Image.Image, shape: tuple[int, int]) -> np.ndarray:
    img = image.convert("RGB")
    if img.size != (shape[1], shape[0]):
        img = img.resize((shape[1], shape[0]), Image.BILINEAR)
    return np.asarray(img, dtype=np.float64)


def scale_intensity(image: Image.Image, m01: np.ndarray) -> Image.Image:
    """The paper's visualization: each pixel's intensity scaled by its importance (bright = important)."""
    pixels = _pixels(image, m01.shape)
    return Image.fromarray((pixels * m01[..., None]).round().clip(0, 255).astype(np.uint8))


def heatmap(m01: np.ndarray, cmap: str = "inferno") -> Image.Image:
    return Image.fromarray(colormap(m01, cmap))


def overlay(image: Image.Image, m01: np.ndarray, opacity: float = 0.75, cmap: str = "inferno") -> Image.Image:
    """Heat map over a dimmed greyscale copy of the image; more opaque where importance is higher."""
    grey = _pixels(image.convert("L").convert("RGB"), m01.shape) * 0.5
    colour = colormap(m01, cmap).astype(np.float64)
    weight = (opacity * np.sqrt(m01))[..., None]
    return Image.fromarray((grey * (1 - weight) + colour * weight).round().clip(0, 255).astype(np.uint8))


def signed_overlay(image: Image.Image, values: np.ndarray, vmax: float) -> Image.Image:
    """A signed map [H, W] over a light greyscale copy of the image: each pixel's grey times its colour on the
    signed scale, so that 0 (white) leaves the photo and |value| >= vmax is full red or blue."""
    grey = _pixels(image.convert("L").convert("RGB"), values.shape)
    light = 255 - PHOTO_SHADE * (255 - grey)
    return Image.fromarray((light * colours.signed_rgb(values, vmax)).round().clip(0, 255).astype(np.uint8))


def _scaled(channels: np.ndarray, polarity: str, clip_percentile: float) -> tuple[np.ndarray, float]:
    """The map of a polarity and the value at which its colours saturate: the clip percentile of |value| for the
    signed map (symmetric around 0), of the value for the others."""
    m = importance_map(channels, polarity)
    if polarity == "signed":
        return m, colours.scale_max(m, percentile=clip_percentile)
    return m, saturation_value(m, clip_percentile)


def _picture(image: Image.Image, m: np.ndarray, top: float, polarity: str, style: str) -> Image.Image:
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r}; choose one of {', '.join(STYLES)}")
    if polarity == "signed":
        return signed_overlay(image, m, top)
    m01 = np.clip(m / top, 0.0, 1.0) if top > 0 else np.zeros_like(m)
    if style == "intensity":
        return scale_intensity(image, m01)
    return overlay(image, m01, cmap="blues" if polarity == "negative" else "inferno")


def map_legend(polarity: str, top: float, style: str = "intensity", width: int = LEGEND_WIDTH) -> Image.Image:
    """What a map's colours mean, from 0 (or -top) to top, where they saturate: the signed scale's colour bar, or
    the unsigned polarity's own (the overlay's colour map, or dark to the photo's own colours for intensity)."""
    if polarity == "signed":
        return colours.legend_image(top, width, SIGNED_LABEL)
    numbers = ("0", "", f"{top:.3g}")
    if style == "intensity":
        bar, words = np.array([[0.0, 0.0, 0.0], [1.0, 1.0, 1.0]]), ("low: dark", "", "high: the photo")
    else:
        bar, words = (_BLUES if polarity == "negative" else _INFERNO) / 255, ("low", "", "high")
    return colours.colour_bar_image(bar, width, [numbers, words], f"{UNSIGNED_LABELS[polarity]}, low to high")


def explained_map(image: Image.Image, channels: np.ndarray, polarity: str = "signed", clip_percentile: float = 99.0,
                  style: str = "intensity") -> Image.Image:
    """One picture of an attribution or gradient [3, H, W] over `image` (the cropped network input), with the legend
    of its colours below it (at least LEGEND_WIDTH wide, the picture centred above it). The signed polarity has one
    style, its colours over the greyed photo; the others are drawn in `style`."""
    m, top = _scaled(channels, polarity, clip_percentile)
    picture = _picture(image, m, top, polarity, style)
    return colours.stack(picture, map_legend(polarity, top, style, max(picture.width, LEGEND_WIDTH)))


def interior_panels(image: Image.Image, gradients: dict[float, np.ndarray], polarity: str = "signed",
                    clip_percentile: float = 99.0, style: str = "intensity") -> list[tuple[float, Image.Image]]:
    """Figure 3: one visualization per alpha with its legend, each normalized on its own (relative distribution
    only)."""
    return [(float(a), explained_map(image, g, polarity, clip_percentile, style))
            for a, g in sorted(gradients.items())]


def image_grid(images: Sequence[Image.Image], captions: Sequence[str] = (), columns: int = 5, pad: int = 4,
               caption_height: int = 20) -> Image.Image:
    """Tile equally sized images in rows with a caption above each."""
    if not images:
        raise ValueError("no images to tile")
    w, h = images[0].size
    rows = -(-len(images) // columns)
    cell_h = h + (caption_height if captions else 0)
    grid = Image.new("RGB", (columns * (w + pad) + pad, rows * (cell_h + pad) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(grid)
    try:
        font = ImageFont.load_default(size=max(caption_height - 4, 8))
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        font = ImageFont.load_default()
    for i, img in enumerate(images):
        x, y = pad + (i % columns) * (w + pad), pad + (i // columns) * (cell_h + pad)
        if captions:
            draw.text((x + 2, y + 1), str(captions[i]), fill=(0, 0, 0), font=font)
            y += caption_height
        grid.paste(img.convert("RGB").resize((w, h)), (x, y))
    return grid


# --- charts ---------------------------------------------------------------------------------------

def mean_gradient_chart(alphas: np.ndarray, grad_abs_mean: np.ndarray, label: str = "",
                        selected_alpha: float | None = None) -> alt.Chart:
    """Figure 3's inset: mean |interior gradient| against alpha (large at small alpha, ~0 when saturated)."""
    frame = pd.DataFrame({"alpha": np.asarray(alphas, dtype=float),
                          "mean |gradient|": np.asarray(grad_abs_mean, dtype=float)})
    line = alt.Chart(frame).mark_line(point=True).encode(
        x=alt.X("alpha:Q", scale=alt.Scale(domain=[0, 1])), y=alt.Y("mean |gradient|:Q"),
        tooltip=["alpha", alt.Tooltip("mean |gradient|:Q", format=".3g")])
    layers = [line]
    if selected_alpha is not None:
        layers.append(alt.Chart(pd.DataFrame({"alpha": [float(selected_alpha)]}))
                      .mark_rule(color="red").encode(x="alpha:Q"))
    return alt.layer(*layers).properties(
        title=f"Mean |interior gradient| vs alpha{' (' + label + ')' if label else ''}", height=220)


def trend_frame(alphas: np.ndarray, values: np.ndarray, labels: Sequence[str], name: str) -> pd.DataFrame:
    v = np.asarray(values, dtype=float).reshape(len(alphas), -1)
    return pd.DataFrame([{"alpha": float(a), "label": labels[t], name: float(v[k, t])}
                         for k, a in enumerate(alphas) for t in range(v.shape[1])])


def saturation_chart(alphas: np.ndarray, scores: np.ndarray, raw_scores: np.ndarray,
                     labels: Sequence[str]) -> alt.HConcatChart:
    """Figure 2: softmax score (a) and pre-softmax logit (b) of each target along the scaling path."""
    def panel(values, name, title):
        return alt.Chart(trend_frame(alphas, values, labels, name)).mark_line(point=alt.OverlayMarkDef(size=12)).encode(
            x=alt.X("alpha:Q", scale=alt.Scale(domain=[0, 1])), y=alt.Y(f"{name}:Q"),
            color=alt.Color("label:N", sort=list(labels), scale=alt.Scale(range=list(TARGET_COLOURS)),
                            legend=alt.Legend(orient="bottom", title=None)),
            tooltip=["label", "alpha", alt.Tooltip(f"{name}:Q", format=".4g")]).properties(title=title, height=240)
    return alt.hconcat(panel(scores, "softmax", "Softmax score vs alpha"),
                       panel(raw_scores, "logit", "Pre-softmax score (logit) vs alpha"))


def layer_distance_chart(alphas: np.ndarray, l2: np.ndarray, cosine: np.ndarray, layer_name: str) -> alt.HConcatChart:
    """Figure 12: L2 and cosine distance of the layer's activations at alpha*image to those at the image."""
    frame = pd.DataFrame({"alpha": np.asarray(alphas, dtype=float), "L2 distance": np.asarray(l2, dtype=float),
                          "cosine distance": np.asarray(cosine, dtype=float)})

    def panel(name):
        return alt.Chart(frame).mark_line(point=alt.OverlayMarkDef(size=12)).encode(
            x=alt.X("alpha:Q", scale=alt.Scale(domain=[0, 1])), y=alt.Y(f"{name}:Q"),
            tooltip=["alpha", alt.Tooltip(f"{name}:Q", format=".4g")],
        ).properties(title=f"{layer_name}: {name}", height=220)
    return alt.hconcat(panel("L2 distance"), panel("cosine distance"))


# --- captions -------------------------------------------------------------------------------------

def score_text(photo_score: float, attribution, t: int = 0) -> str:
    """The photo's own softmax and, where the method's F(input) is another number (SmoothGrad's mean over its noisy
    copies), that one beside it, named as what it is."""
    text = f"softmax {photo_score:.4f}"
    copies = attribution.extras.get("samples")
    if copies:
        text += f" (mean over {copies} noisy copies: {float(attribution.score_input[0, t]):.4f})"
    return text


def baseline_note(law: str | None, chosen: str) -> str:
    """Which baseline the method's completeness law speaks of: the one chosen (described as `chosen`), or the
    method's own (expected gradients' references, Blur IG's blurred photo)."""
    own = law.split(" - ", 1)[1] if law else "F(baseline)"
    if own == "F(baseline)":
        return f"baseline: {chosen}"
    return f"baseline: the method's own ({own}), not the one chosen above"


# --- tables ---------------------------------------------------------------------------------------

MISSING = "n/a"  # what a table shows for a missing value, where Streamlit's tables would show "None"


def numbers_text(values, spec: str = ".3f") -> list[str]:
    """Values as a table's text: numbers in the format `spec`, text as it is, MISSING where there is none."""
    return [MISSING if pd.isna(v) else v if isinstance(v, str) else format(v, spec) for v in values]


def missing_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The table with its columns that miss a value as text (numbers to 4 significant digits, MISSING where
    missing); the other columns keep their type, and so do true/false columns (an empty box where missing)."""
    shown = frame.copy()
    for name, column in frame.items():
        present = column.dropna()
        if len(present) == len(column) or (len(present) and present.map(type).isin([bool, np.bool_]).all()):
            continue
        shown[name] = numbers_text(column, ".4g")
    return shown


def top_k_frame(top: Sequence[tuple[int, str, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"rank": r + 1, "class": name, "index": i, "softmax": p}
                         for r, (i, name, p) in enumerate(top)])


# --- downloads ------------------------------------------------------------------------------------

def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()
