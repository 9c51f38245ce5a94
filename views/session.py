"""What every page shares: the one cached engine and the user's scan settings."""
from __future__ import annotations

import streamlit as st

from ig_core import RULES, AttributionEngine, ScanSettings

SETTINGS_KEY = "scan_settings"


@st.cache_resource(show_spinner=False)
def get_engine() -> AttributionEngine:
    """One engine for all sessions (GPU when there is one); it locks and caches inside."""
    return AttributionEngine()


@st.cache_resource(show_spinner="Loading the model...")
def cached_classifier(arch: str, weights: str = ""):
    """One models.vision.ImageClassifier per (architecture, weights) for all pages and sessions, on the
    engine's device and frozen. weights "": load_classifier's automatic lookup (resolved when first
    loaded). Raises models.vision.VisionError (not cached) when there are no usable weights."""
    from models.vision import load_classifier  # torchvision only when a page needs a classifier

    engine = get_engine()
    classifier = load_classifier(arch, weights.strip() or None, device=engine.device)
    classifier.model = engine.prepare(classifier.model)
    return classifier


def scan_settings() -> ScanSettings:
    return st.session_state.get(SETTINGS_KEY) or ScanSettings()


def settings_form() -> ScanSettings:
    """The home page's form for the settings all pages share."""
    current = scan_settings()
    with st.form("scan_settings_form"):  # not SETTINGS_KEY: a form key is a widget key and locks that state key
        rule = st.selectbox("Quadrature rule", RULES, index=RULES.index(current.rule),
                            help="adaptive refines the path where the completeness error is largest")
        steps = st.number_input("Steps (adaptive: starting grid)", 2, 4096, current.steps)
        tolerance = st.number_input("Completeness tolerance (relative)", 0.0001, 0.5, current.tolerance,
                                    format="%.4f")
        max_steps = st.number_input("Step budget (adaptive)", 4, 8192, current.max_steps)
        max_batch = st.number_input("Path points per batch (0 = device default)", 0, 4096, current.max_batch or 0)
        amp = st.selectbox("Mixed precision (GPU)", ["none", "bf16", "fp16"],
                           index=["none", "bf16", "fp16"].index(current.amp or "none"))
        if st.form_submit_button("Apply"):
            current = ScanSettings(rule=rule, steps=int(steps), tolerance=float(tolerance),
                                   max_steps=int(max_steps), max_batch=int(max_batch) or None,
                                   amp=None if amp == "none" else amp)
            st.session_state[SETTINGS_KEY] = current
    return current


def progress_reporter(label: str):
    """A progress bar and a callback the engine calls after each batch."""
    bar = st.progress(0.0, text=label)
    return lambda fraction: bar.progress(min(max(fraction, 0.0), 1.0), text=f"{label} {100 * fraction:.0f}%")
