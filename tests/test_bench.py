"""The benchmark code paths (bench/) on a tiny model: rows present, ratios positive and finite.

No timing assertions: the numbers of a smoke run mean nothing; `python -m bench.run` measures.
"""
import math

import numpy as np
import pytest
import torch

from bench import analysis
from bench.run import run
from bench.sections import Config
from bench.steps import adaptive_run, fixed_relative_delta, photo_scan, points_evaluated
from bench.workloads import tiny_workload
from ig_core import FIXED_RULES, AttributionEngine

CPU = torch.device("cpu")
EPS = torch.finfo(torch.float32).eps
pytestmark = pytest.mark.numeric


def rounding(r, x, b) -> float:
    """How far two float32 evaluations of r's completeness delta may differ: F(1), F(0) and each w_k * g_ki * d_i
    come from float32 forward and backward passes, and another batch split, reduction order or CPU kernel rounds
    each of them and their sum differently, by a few eps of their magnitudes: 16 eps of the sum of |terms|."""
    d_max = float((x - b).abs().max())
    terms = float(np.abs(r.weights[:, 0]) @ r.grad_abs_mean[:, 0, 0]) * x[0].numel() * d_max  # >= sum |w_k g_ki d_i|
    return 16 * EPS * (terms + abs(float(r.score_input[0, 0])) + abs(float(r.score_baseline[0, 0])))


def tiny_config() -> Config:
    return Config(batch=16, steps=16, repeats=1, steps_photos=2, steps_max_n=64, throughput_photos=4, per_call=2,
                  throughput_repeats=1, mem_steps=(16, 64), mem_adaptive_steps=(16, 32), mem_in_process=True,
                  other_domains=False)


@pytest.fixture(scope="module")
def table():
    return run(CPU, quick=True, tiny=True, cfg=tiny_config(), strict=True)


def test_table_has_every_measurement(table):
    names = [r.name for r in table.rows]
    expected = [
        "full analysis: ours / Captum time", "full analysis: ours / floor time",
        "full analysis: completeness, relative delta (ours)",
        "trapezoid on a linear F, 50 steps: Captum relative delta",
        *[f"evaluations to 1%: {rule} (median points)" for rule in (*FIXED_RULES, "adaptive")],
        "adaptive saving vs best fixed rule (median points)",
        "two targets: one scan / two single-target scans",
        "photos/s: 2 per call / one at a time", "photos/s at 1% completeness: ours / Captum", "molecules/s",
        "sentences/s",
        "peak memory, trapezoid, 16 steps", "peak memory, trapezoid, 64 steps",
        "peak memory, adaptive, 16 steps", "peak memory, adaptive, 32 steps",
        "peak memory 64 / 16 steps (trapezoid)", "peak memory, largest / smallest over 16, 32 points (adaptive)",
        "GPU measurements (GoogLeNet latency, photos/s, bf16)",
    ]
    for name in expected:
        assert name in names, f"missing row {name!r}; rows: {names}"
    assert {r.section for r in table.rows} == {"1", "2", "3", "4", "5", "6", "7"}
    md = table.markdown()
    assert md.count("\n") == len(table.rows) + 1


def test_ratios_are_positive_and_finite(table):
    for r in table.rows:
        if r.unit == "x" and r.value is not None:
            assert math.isfinite(r.value) and r.value > 0, (r.name, r.value)
        if "Captum" in r.name and r.value is None:
            assert "captum not installed" in r.detail
    timed = [r for r in table.rows if r.name.endswith("time") or "/s" in r.name]
    assert any(r.value is not None for r in timed)


def test_contenders_agree_on_completeness():
    wl = tiny_workload(CPU, 1)
    x, b = wl.photo(0), wl.baseline.unsqueeze(0)
    engine = AttributionEngine(CPU, max_batch=16, cache_size=0)
    r, ours = analysis.ours(engine, wl.model, x, b, 3, 50, "gauss-legendre")
    floor = analysis.floor(wl.model, x, b, 3, 50, "gauss-legendre", batch=16)
    gap = abs(float(r.score_input[0, 0] - r.score_baseline[0, 0]))  # relative deltas are rounding noise here:
    assert floor * gap == pytest.approx(ours * gap, abs=rounding(r, x, b))  # compare the deltas themselves
    if analysis.captum_available():
        captum = analysis.captum_full(wl.model, x, b, 3, 50, "gauss-legendre", batch=16)
        assert captum * gap == pytest.approx(ours * gap, abs=rounding(r, x, b))
        cap_trap, ours_trap = analysis.linear_trapezoid_check(CPU)
        assert cap_trap == pytest.approx(1 / 50, rel=1e-3) and ours_trap < 1e-5


@pytest.mark.parametrize("rule", FIXED_RULES)
def test_steps_study_matches_the_engine(rule):
    """Section 2 computes a fixed rule's delta from one shared scan's path derivatives: it must equal the engine's."""
    wl = tiny_workload(CPU, 1)
    x, b = wl.photo(0), wl.baseline.unsqueeze(0)
    engine = AttributionEngine(CPU, max_batch=16, cache_size=0)
    scan = photo_scan(wl.model, x, b, 3, batch=16)
    for n in (4, 8, 16):
        r = engine.attribute(wl.model, x, 3, b, n, rule, output="softmax")
        scale = abs(float(r.score_input[0, 0] - r.score_baseline[0, 0]))
        study_delta = fixed_relative_delta(scan, rule, n) * scale  # |delta|, not relative: see rounding()
        assert study_delta == pytest.approx(float(np.abs(r.delta).max()), abs=rounding(r, x, b))
        assert points_evaluated(rule, n) == r.points_evaluated


def test_the_steps_studys_adaptive_rule_evaluates_the_engines_points():
    """Run on a scan shared with other rules, the adaptive rule sees only its own points: it takes the engine's."""
    wl = tiny_workload(CPU, 1)
    x, b = wl.photo(0), wl.baseline.unsqueeze(0)
    scan = photo_scan(wl.model, x, b, 3, batch=16)
    fixed_relative_delta(scan, "gauss-legendre", 32)  # points the adaptive rule must not count
    r = AttributionEngine(CPU, max_batch=16, cache_size=0).attribute(wl.model, x, 3, b, 3, "adaptive", tolerance=1e-4,
                                                                     max_steps=64, output="softmax")
    points, reached = adaptive_run(scan, np.linspace(0, 1, 3), 1e-4, 64)
    assert r.points_evaluated > 6 and points == r.points_evaluated
    assert reached == pytest.approx(r.max_relative_delta, abs=rounding(r, x, b) / abs(float(r.score_input[0, 0]
                                                                                             - r.score_baseline[0, 0])))
