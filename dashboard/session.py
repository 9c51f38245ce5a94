"""What every page shares: the one cached engine, the user's scan settings and their form, progress bars, the
refining picture and the choice of a run."""
from __future__ import annotations

import ast
import contextlib
import pathlib
from dataclasses import fields
from typing import Callable

import streamlit as st

from families.config import RUNS_DIR
from ig_core import METHODS, RULES, AttributionEngine, ScanSettings, limit_memory_arenas
from runs import completeness

SETTINGS_KEY = "scan_settings"
# the ranges of the settings the Home page offers, and that a link's settings must fall in (dashboard.url_state)
STEPS, BUDGET, TOLERANCE = (2, 4096), (4, 8192), (0.0001, 0.5)


@st.cache_resource(show_spinner=False)
def get_engine() -> AttributionEngine:
    """One engine for all sessions (GPU when there is one); it locks and caches inside."""
    limit_memory_arenas()  # sessions run in threads: keep their freed memory in a few heaps, not one each
    return AttributionEngine()


def scan_settings() -> ScanSettings:
    return st.session_state.get(SETTINGS_KEY) or ScanSettings()


def option_inputs(name: str, current: dict) -> dict:
    """Widgets for the options of method `name`, made from its Options dataclass, starting at `current` or the
    defaults: a switch, a number or a text per field; `base`, a method to build on, a choice among the others;
    tuples, None and unions of them as Python literals ("(0.5, 0.5, 0.5)", "None"), read by `read_options`."""
    options = {}
    for field in fields(METHODS[name].Options):
        value, key, text = current.get(field.name, field.default), f"option_{name}_{field.name}", field.name
        if field.name == "base":
            others = [other for other in METHODS if other != name]
            options[field.name] = st.selectbox(text, others, index=others.index(value), key=key,
                                               format_func=lambda other: METHODS[other].label)
        elif isinstance(value, bool):
            options[field.name] = st.checkbox(text, value, key=key)
        elif isinstance(value, (int, float)) and "|" not in str(field.type):
            options[field.name] = (int(st.number_input(text, value=value, step=1, key=key)) if isinstance(value, int)
                                   else float(st.number_input(text, value=value, format="%g", key=key)))
        elif isinstance(value, str):
            options[field.name] = st.text_input(text, value, key=key)
        else:
            options[field.name] = Literal(st.text_input(text, repr(value), key=key,
                                                        help="a number, a tuple of numbers or None"))
    return options


class Literal(str):
    """An option typed as a Python literal, read when the settings are applied."""


def read_options(options: dict) -> dict:
    """The options with their literals read: a number, a tuple of numbers or None (ValueError for anything else)."""
    read = {}
    for name, value in options.items():
        if isinstance(value, Literal):
            try:
                value = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                raise ValueError(f"{name}: {value!r} is not a number, a tuple of numbers or None") from None
            numbers = value if isinstance(value, tuple) else (value,)
            if value is not None and not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers):
                raise ValueError(f"{name}: {value!r} is not a number, a tuple of numbers or None")
        read[name] = value
    return read


def settings_form() -> ScanSettings:
    """The home page's settings for all pages: the method and its options, and the scan of the straight line that
    integrated gradients and the methods built on it use. A change takes effect at once: no form to submit, where a
    method picked but not applied would look chosen and change nothing. Settings the method refuses are explained,
    and the ones in force stay."""
    current = scan_settings()
    names = list(METHODS)
    name = st.radio("Attribution method", names, index=names.index(current.method), key="settings_method",
                    format_func=lambda n: METHODS[n].label, horizontal=True)
    st.markdown(f"**{METHODS[name].label}: options**" if fields(METHODS[name].Options)
                else f"{METHODS[name].label} has no options.")
    options = option_inputs(name, dict(current.method_options) if name == current.method else {})
    st.markdown("**The straight-line scan** (applies to path methods: "
                f"{', '.join(cls.label for cls in METHODS.values() if cls.uses_path_rule)}; and SmoothGrad over "
                "one of them)")
    rule = st.selectbox("Quadrature rule", RULES, index=RULES.index(current.rule), key="settings_rule",
                        help="adaptive refines the path where the completeness error is largest")
    steps = st.number_input("Steps (adaptive: starting grid)", *STEPS, current.steps, key="settings_steps")
    tolerance = st.number_input("Completeness tolerance (relative)", *TOLERANCE, current.tolerance, format="%.4f",
                                key="settings_tolerance")
    max_steps = st.number_input("Step budget (adaptive)", *BUDGET, current.max_steps, key="settings_budget")
    max_batch = st.number_input("Path points per batch (0 = device default)", 0, 4096, current.max_batch or 0,
                                key="settings_batch", help="More than the device default is bounded by the memory a "
                                                           "batch needs, measured on the first point")
    amp = st.selectbox("Mixed precision (GPU)", ["none", "bf16", "fp16"],
                       index=["none", "bf16", "fp16"].index(current.amp or "none"), key="settings_amp")
    try:
        chosen = ScanSettings(rule=rule, steps=int(steps), tolerance=float(tolerance), max_steps=int(max_steps),
                              max_batch=int(max_batch) or None, amp=None if amp == "none" else amp, method=name,
                              method_options=read_options(options))
    except ValueError as exc:  # an option the method refuses: its message says what it takes
        st.error(f"These settings cannot be used: {exc}. The pages keep the settings in force.")
        return current
    st.session_state[SETTINGS_KEY] = chosen
    return chosen


@contextlib.contextmanager
def progress_bar(label: str):
    """A progress bar for one long piece of work, removed when it ends; yields the callback the engine calls after
    each batch (fraction done)."""
    holder = st.empty()
    bar = holder.progress(0.0, text=label)
    try:
        yield lambda fraction: bar.progress(min(max(fraction, 0.0), 1.0), text=f"{label} {100 * fraction:.0f}%")
    finally:
        holder.empty()


def explain_refining(label: str, key: str, request: str, settings: ScanSettings, explain: Callable,
                     show: Callable) -> object:
    """explain(progress, partial) for one request under the scan settings, drawing each partial explanation of the
    adaptive rule with the widget-free show(explanation) in place, under its completeness error so far ("refining:
    4.1% -> 1.7%"). A Stop button ends the refinement and keeps the latest picture: its click reruns the page, which
    interrupts the scan at its next drawing and finds the kept explanation here. That explanation stands for the
    request until the user refines it further or asks for another one. Settings that do not refine (fixed rules,
    other methods) get a progress bar alone."""
    if not METHODS[settings.method].refines or settings.rule != "adaptive":
        with progress_bar(label) as progress:
            return explain(progress, None)
    request, kept_key = f"{request}|{settings!r}", f"{key}_refinement"
    kept = st.session_state.get(kept_key)  # (request, explanation so far, stopped)
    stop_holder = st.empty()
    stop = stop_holder.button("Stop refining", key=f"{key}_stop", help="Keeps the picture shown, with its error")
    if kept and kept[0] == request and (kept[2] or stop):
        st.session_state[kept_key] = (request, kept[1], True)
        stop_holder.empty()
        a = kept[1].attribution
        a.stopped_early = True  # a partial result: its verdict must say it was stopped, not that the budget ran out
        st.info(f"Refinement stopped at {100 * a.max_relative_delta:.2f}% completeness error after "
                f"{a.points_evaluated} path points (tolerance {100 * kept[1].settings.tolerance:g}%).")
        if st.button("Refine further", key=f"{key}_resume"):
            del st.session_state[kept_key]
            st.rerun()
        return kept[1]
    picture, caption, errors = st.empty(), st.empty(), []  # a Stop before the first picture has nothing to keep

    def partial(explanation) -> None:
        errors.append(explanation.attribution.max_relative_delta)
        st.session_state[kept_key] = (request, explanation, False)
        caption.caption("Refining: " + " -> ".join(f"{100 * error:.2f}%" for error in errors)
                        + f" completeness error ({explanation.attribution.points_evaluated} path points so far)")
        with picture.container():
            show(explanation)

    with progress_bar(label) as progress:
        result = explain(progress, partial)
    for holder in (stop_holder, picture, caption):
        holder.empty()
    st.session_state.pop(kept_key, None)
    return result


def choose_run(family: str, label: str = "Run", key: str | None = None):
    """A run of the family from the configured runs folder, chosen by name: (name, folder, manifest) or None with
    a note on how runs get there. The browser picks among names; it never types a path."""
    from runs import store

    runs = store.list_runs(family)
    if not runs:
        st.info(f"No {family} runs in the runs folder. Make one with `python -m runs --family {family} "
                f"... --out {store.runs_folder()}/NAME` (the operator sets the folder with {RUNS_DIR.name}).")
        return None
    name = st.selectbox(label, list(runs), key=key or f"{family}_run", format_func=lambda n: run_label(n, runs[n]))
    folder = store.runs_folder() / name
    text, over = _run_completeness(str(folder), store.stamp(folder), completeness.tolerance_of(runs[name]))
    (st.warning if over else st.caption)(text[0].upper() + text[1:] + ".")
    return name, folder, runs[name]


@st.cache_data(show_spinner=False, max_entries=16)
def _run_completeness(folder: str, stamp: tuple, tolerance: float) -> tuple[str, int]:
    """A run's completeness errors in a sentence, and how many rows miss the tolerance (per shard state)."""
    from runs import store

    rows = store.read(pathlib.Path(folder), ["status", "relative_delta"]).to_pandas()
    explained = rows[rows["status"] == "explained"]
    return completeness.summary(rows, tolerance), int(completeness.over_tolerance(explained["relative_delta"],
                                                                                  tolerance).sum())


def run_label(name: str, manifest: dict) -> str:
    """A run as the picker lists it: its items by what became of them (its rows are no count of inputs: a skipped
    item has a row, an item explained for two targets has two), and its status."""
    status, counts = manifest.get("status", "?"), manifest.get("counts")
    if not counts:  # a run still going: only its planned items are known
        return f"{name} ({manifest.get('items', '?')} items; {status})"
    outcomes = ", ".join(f"{counts[outcome]} {outcome}" for outcome in ("explained", "refused", "skipped")
                         if counts.get(outcome))
    return f"{name} ({counts.get('items', manifest.get('items', '?'))} items: {outcomes}; {status})"
