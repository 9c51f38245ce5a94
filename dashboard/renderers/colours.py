"""The one colour scale of signed attributions, in every family: red raises F, white is 0, blue lowers F, full colour
at |value| = vmax (a symmetric scale, so that white always means no effect). Pure: numpy, PIL and altair.

The scale's colours, its legend (a colour bar from -vmax to +vmax with its numbers and the words "lowers F" /
"raises F") as SVG, as a PIL image and as an altair colour encoding, and the caption that says what F is. The
legend's parts (colour bar, numbers, words, optional title) are laid out the same way in SVG and in PIL.
"""
from __future__ import annotations

from typing import Sequence

import altair as alt
import numpy as np
from PIL import Image, ImageDraw, ImageFont

NEGATIVE = (0.129, 0.400, 0.675)  # RdBu blue
POSITIVE = (0.698, 0.094, 0.169)  # RdBu red
WHITE = (1.0, 1.0, 1.0)
LOWERS, RAISES = "lowers F", "raises F"

MARGIN = 12  # the colour bar's distance from the legend's left and right edges
BAR_HEIGHT = 12
LINE_HEIGHT = 14  # a row of text (numbers, words, title)
FONT_SIZE = 11
TEXT_COLOUR = "#333333"


# -- colours -----------------------------------------------------------------------------------------

def scale_max(*arrays, percentile: float = 100.0) -> float:
    """A symmetric scale's end: the largest |value| over the arrays, or its `percentile` (so that a few extreme values
    do not wash the rest out); never 0, so that a scale of zeros stays defined."""
    values = np.concatenate([np.abs(np.asarray(a, dtype=float)).ravel() for a in arrays
                             if a is not None and np.size(a)] or [np.zeros(0)])
    values = values[np.isfinite(values)]
    if not values.size:
        return 1e-12
    top = float(np.percentile(values, percentile)) if percentile < 100 else float(values.max())
    if top <= 0:
        top = float(values.max())
    return max(top, 1e-12)


def signed_rgb(values, vmax: float) -> np.ndarray:
    """The colours of an array of values [...] as RGB in [0, 1], [..., 3]: linear from white at 0 to POSITIVE at
    +vmax and NEGATIVE at -vmax, and saturated beyond."""
    v = np.asarray(values, dtype=float)
    t = np.clip(np.abs(v) / vmax, 0.0, 1.0)[..., None] if vmax > 0 else np.zeros(v.shape + (1,))
    end = np.where((v >= 0)[..., None], np.array(POSITIVE), np.array(NEGATIVE))
    return np.array(WHITE) + t * (end - np.array(WHITE))


def signed_colour(value: float, vmax: float) -> tuple[float, float, float]:
    """One value's colour as an RGB tuple in [0, 1] (RDKit's highlight colours)."""
    return tuple(float(c) for c in signed_rgb(value, vmax))


def hex_colour(rgb) -> str:
    return "#" + "".join(f"{int(round(255 * c)):02x}" for c in rgb)


def signed_hex(value: float, vmax: float) -> str:
    return hex_colour(signed_colour(value, vmax))


def tick_texts(vmax: float) -> tuple[str, str, str]:
    """The legend's numbers at its left end, middle and right end."""
    return f"{-vmax:.3g}", "0", f"+{vmax:.3g}"


def caption(what: str = "the prediction") -> str:
    """What the colours mean, with what F is in the family."""
    return (f"Colours: red raises F, blue lowers F, white is no effect (F: {what}); full colour at the ends of the "
            "colour bar and beyond.")


# -- legend as SVG -----------------------------------------------------------------------------------

def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def legend_height(label: str = "", numbers: bool = True) -> int:
    return (LINE_HEIGHT if label else 0) + BAR_HEIGHT + 4 + (LINE_HEIGHT if numbers else 0) + LINE_HEIGHT + 4


def legend_svg(vmax: float | None, width: int, label: str = "") -> str:
    """The colour bar as an SVG element of `width` x legend_height(label) pixels (it nests in another SVG);
    vmax None draws it without numbers (a scale whose values are not attributions)."""
    x0, x1 = MARGIN, width - MARGIN
    height = legend_height(label, vmax is not None)
    stops = "".join(f"<stop offset='{o}' stop-color='{hex_colour(c)}'/>"
                    for o, c in ((0, NEGATIVE), (0.5, WHITE), (1, POSITIVE)))
    font = f"font-family='sans-serif' font-size='{FONT_SIZE}' fill='{TEXT_COLOUR}'"
    y = 0
    parts = [f"<defs><linearGradient id='signed-scale' x1='0' x2='1' y1='0' y2='0'>{stops}</linearGradient></defs>"]
    if label:
        parts.append(f"<text x='{width / 2}' y='{y + FONT_SIZE}' {font} text-anchor='middle'>{_escape(label)}</text>")
        y += LINE_HEIGHT
    parts.append(f"<rect x='{x0}' y='{y}' width='{x1 - x0}' height='{BAR_HEIGHT}' fill='url(#signed-scale)' "
                 "stroke='#999' stroke-width='0.5'/>")
    y += BAR_HEIGHT + 4
    rows = ([tick_texts(vmax)] if vmax is not None else []) + [(LOWERS, "", RAISES)]
    for row in rows:
        parts += [f"<text x='{x}' y='{y + FONT_SIZE}' {font} text-anchor='{anchor}'>{text}</text>"
                  for x, anchor, text in zip((x0, width / 2, x1), ("start", "middle", "end"), row) if text]
        y += LINE_HEIGHT
    return (f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
            f"viewBox='0 0 {width} {height}'>{''.join(parts)}</svg>")


# -- legend as a picture -----------------------------------------------------------------------------

def _font() -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=FONT_SIZE)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def colour_bar_image(bar_rgb: np.ndarray, width: int, rows: Sequence[tuple[str, str, str]], label: str = "",
                     ) -> Image.Image:
    """A legend of `width` pixels: an optional title, a colour bar running through `bar_rgb` ([n, 3] in [0, 1],
    left to right), then rows of text at its left end, middle and right end (numbers, words)."""
    height = (LINE_HEIGHT if label else 0) + BAR_HEIGHT + 4 + LINE_HEIGHT * len(rows) + 4
    legend = Image.new("RGB", (width, height), (255, 255, 255))
    draw, font = ImageDraw.Draw(legend), _font()
    x0, x1 = MARGIN, max(width - MARGIN, MARGIN + 2)
    y = 0
    if label:
        draw.text((width / 2, y), label, fill=TEXT_COLOUR, font=font, anchor="ma")
        y += LINE_HEIGHT
    positions = np.linspace(0.0, 1.0, len(bar_rgb))
    along = np.linspace(0.0, 1.0, x1 - x0)
    row = np.stack([np.interp(along, positions, np.asarray(bar_rgb)[:, c]) for c in range(3)], axis=-1)
    legend.paste(Image.fromarray(np.repeat((255 * row).round().astype(np.uint8)[None], BAR_HEIGHT, axis=0)), (x0, y))
    draw.rectangle((x0 - 1, y - 1, x1, y + BAR_HEIGHT), outline=(153, 153, 153))
    y += BAR_HEIGHT + 4
    for left, middle, right in rows:
        draw.text((x0, y), left, fill=TEXT_COLOUR, font=font, anchor="la")
        draw.text((width / 2, y), middle, fill=TEXT_COLOUR, font=font, anchor="ma")
        draw.text((x1, y), right, fill=TEXT_COLOUR, font=font, anchor="ra")
        y += LINE_HEIGHT
    return legend


def legend_image(vmax: float | None, width: int, label: str = "") -> Image.Image:
    """The signed colour bar as a PIL image (under PNG drawings and maps); vmax None: without numbers."""
    rows = ([tick_texts(vmax)] if vmax is not None else []) + [(LOWERS, "", RAISES)]
    return colour_bar_image(np.array([NEGATIVE, WHITE, POSITIVE]), width, rows, label)


def stack(picture: Image.Image, legend: Image.Image) -> Image.Image:
    """The picture with its legend below it, both centred on white (the wider one sets the width)."""
    width = max(picture.width, legend.width)
    out = Image.new("RGB", (width, picture.height + legend.height), (255, 255, 255))
    out.paste(picture.convert("RGB"), ((width - picture.width) // 2, 0))
    out.paste(legend.convert("RGB"), ((width - legend.width) // 2, picture.height))
    return out


# -- legend in altair --------------------------------------------------------------------------------

def altair_scale(vmax: float) -> alt.Scale:
    """The scale for a quantitative field: the colours of signed_rgb (linear in RGB between the three anchors)."""
    return alt.Scale(domain=[-vmax, 0.0, vmax], range=[hex_colour(NEGATIVE), hex_colour(WHITE), hex_colour(POSITIVE)],
                     interpolate="rgb", clamp=True)


def altair_colour(field: str, vmax: float, title: str) -> alt.Color:
    """A quantitative field coloured on the signed scale, with its legend: the colour bar from -vmax to +vmax, its
    numbers and the words at both ends."""
    low, _, high = tick_texts(vmax)
    words = (f"datum.value < 0 ? '{low} {LOWERS}' : datum.value > 0 ? '{high} {RAISES}' : '0'")
    return alt.Color(f"{field}:Q", scale=altair_scale(vmax),
                     legend=alt.Legend(title=title, values=[-vmax, 0.0, vmax], labelExpr=words, orient="bottom",
                                       direction="horizontal", gradientLength=260, labelOverlap=False,
                                       titleOrient="left", titleAnchor="start", titleLimit=200))


def effect_colour(title: str = "attribution") -> alt.Color:
    """Bars coloured by the sign of their attribution (a field "effect" of RAISES / LOWERS), with its legend."""
    return alt.Color("effect:N", title=title, legend=alt.Legend(orient="bottom"),
                     scale=alt.Scale(domain=[RAISES, LOWERS], range=[hex_colour(POSITIVE), hex_colour(NEGATIVE)]))


def effects(values) -> np.ndarray:
    """RAISES for a value >= 0, LOWERS below: the field effect_colour reads."""
    return np.where(np.asarray(values, dtype=float) >= 0, RAISES, LOWERS)
