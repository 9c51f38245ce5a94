"""The one signed colour scale (dashboard.renderers.colours): its colours, its legend as SVG, as a picture and in
altair, and its caption."""
from __future__ import annotations

import re

import numpy as np
import pytest

from dashboard.renderers import colours

RED, BLUE, WHITE = colours.POSITIVE, colours.NEGATIVE, colours.WHITE


def test_the_scale_keeps_the_rdbu_anchors():
    assert colours.hex_colour(RED) == "#b2182b" and colours.hex_colour(BLUE) == "#2166ac"
    assert colours.hex_colour(WHITE) == "#ffffff"


def test_positive_is_red_negative_blue_zero_white():
    assert colours.signed_colour(2.0, 2.0) == pytest.approx(RED)
    assert colours.signed_colour(-2.0, 2.0) == pytest.approx(BLUE)
    assert colours.signed_colour(0.0, 2.0) == pytest.approx(WHITE)
    assert colours.signed_colour(5.0, 2.0) == pytest.approx(RED)  # saturated beyond vmax
    halfway = colours.signed_colour(1.0, 2.0)
    assert halfway == pytest.approx(tuple((w + r) / 2 for w, r in zip(WHITE, RED)))
    assert colours.signed_hex(-2.0, 2.0) == colours.hex_colour(BLUE)


def test_the_array_colours_are_the_single_values_colours():
    values = np.array([[-3.0, -1.0], [0.5, 4.0]])
    rgb = colours.signed_rgb(values, 2.0)
    assert rgb.shape == (2, 2, 3)
    for index in np.ndindex(values.shape):
        assert tuple(rgb[index]) == pytest.approx(colours.signed_colour(values[index], 2.0))


def test_the_scale_end_is_the_largest_magnitude_or_a_percentile_of_it():
    assert colours.scale_max([1.0, -3.0], [2.0]) == 3.0
    assert colours.scale_max(None, np.array([])) == pytest.approx(1e-12)  # never 0
    assert colours.scale_max(np.zeros(4)) == pytest.approx(1e-12)
    values = np.concatenate([np.linspace(-1, 1, 999), [1000.0]])
    assert colours.scale_max(values, percentile=99) == pytest.approx(np.percentile(np.abs(values), 99))
    assert colours.scale_max(values, percentile=99) < 2  # one extreme pixel does not set the scale
    mostly_zero = np.zeros(200)
    mostly_zero[0] = -5.0
    assert colours.scale_max(mostly_zero, percentile=99) == 5.0  # a zero percentile falls back to the largest


def svg_texts(svg: str) -> list[str]:
    return re.findall(r">([^<>]+)</text>", svg)


def test_the_svg_legend_numbers_are_the_scale_and_its_ends_are_blue_and_red():
    svg = colours.legend_svg(0.0123, 300, "attribution to P(active)")
    assert svg_texts(svg) == ["attribution to P(active)", "-0.0123", "0", "+0.0123", colours.LOWERS,
                              colours.RAISES]
    stops = re.findall(r"<stop offset='([\d.]+)' stop-color='(#[0-9a-f]{6})'/>", svg)
    assert stops == [("0", colours.hex_colour(BLUE)), ("0.5", "#ffffff"), ("1", colours.hex_colour(RED))]
    assert f"height='{colours.legend_height('x')}'" in svg
    no_numbers = colours.legend_svg(None, 300)
    assert svg_texts(no_numbers) == [colours.LOWERS, colours.RAISES]
    assert f"height='{colours.legend_height(numbers=False)}'" in no_numbers
    assert "&lt;b&gt;" in colours.legend_svg(1.0, 300, "<b>")  # a label is text, never markup


def test_the_picture_legend_runs_blue_to_white_to_red():
    legend = colours.legend_image(2.5, 240, "label")
    pixels = np.asarray(legend, dtype=float)
    bar_row = pixels[colours.LINE_HEIGHT + colours.BAR_HEIGHT // 2]  # below the title
    left, middle, right = bar_row[colours.MARGIN + 1], bar_row[120], bar_row[240 - colours.MARGIN - 2]
    assert left == pytest.approx(255 * np.array(BLUE), abs=6)
    assert right == pytest.approx(255 * np.array(RED), abs=6)
    assert middle == pytest.approx([255, 255, 255], abs=6)
    assert legend.width == 240
    assert legend.height == colours.legend_height("label")


def test_stacking_puts_the_legend_below_a_centred_picture():
    from PIL import Image

    picture = Image.new("RGB", (100, 50), (0, 0, 0))
    legend = colours.legend_image(1.0, 200)
    out = colours.stack(picture, legend)
    assert out.size == (200, 50 + legend.height)
    pixels = np.asarray(out)
    assert (pixels[:50, 50:150] == 0).all() and (pixels[:50, :50] == 255).all()  # centred on white
    assert (pixels[50:] == np.asarray(legend)).all()


def test_the_altair_legend_shows_the_scale_and_maps_its_ends_to_blue_and_red():
    colour = colours.altair_colour("value", 0.04, "score").to_dict()
    scale = colour["scale"]
    assert scale["domain"] == [-0.04, 0.0, 0.04] and scale["interpolate"] == "rgb"
    assert scale["range"] == [colours.hex_colour(BLUE), "#ffffff", colours.hex_colour(RED)]
    legend = colour["legend"]
    assert legend["values"] == scale["domain"]  # the legend's numbers are the scale
    assert "-0.04 lowers F" in legend["labelExpr"] and "+0.04 raises F" in legend["labelExpr"]


def test_bars_by_sign_are_red_when_they_raise():
    assert list(colours.effects([0.5, 0.0, -0.1])) == [colours.RAISES, colours.RAISES, colours.LOWERS]
    scale = colours.effect_colour().to_dict()["scale"]
    assert dict(zip(scale["domain"], scale["range"])) == {colours.RAISES: colours.hex_colour(RED),
                                                          colours.LOWERS: colours.hex_colour(BLUE)}


def test_the_caption_says_what_the_colours_mean_and_what_f_is():
    text = colours.caption("P(active)")
    assert "red raises F" in text and "blue lowers F" in text and "F: P(active)" in text
