"""What every page shares: the one cached engine, the user's scan settings and the Vision pages' model choice."""
from __future__ import annotations

import hashlib
import logging

import streamlit as st

from ig_core import RULES, AttributionEngine, ScanSettings

LOG = logging.getLogger("ig_dashboard")
SETTINGS_KEY = "scan_settings"
AUTOMATIC_WEIGHTS = "automatic"
UPLOAD_WEIGHTS = "upload a state_dict..."
MAX_WEIGHTS_UPLOAD_MB = 150  # fits a ResNet-50 state_dict (98 MB); .streamlit/config.toml bounds all uploads


@st.cache_resource(show_spinner=False)
def get_engine() -> AttributionEngine:
    """One engine for all sessions (GPU when there is one); it locks and caches inside."""
    return AttributionEngine()


@st.cache_resource(show_spinner="Loading the model...", max_entries=4)
def _cached_classifier(arch: str, weights_digest: str, _name: str, _data: bytes | None):
    """One models.vision.ImageClassifier per (architecture, sha256 of the weights file) for all pages and
    sessions, on the engine's device and frozen: every route to the same bytes shares it. _data None:
    torchvision's cached pretrained weights. Raises models.vision.VisionError (not cached)."""
    from models import vision as mv

    engine = get_engine()
    if _data is None:
        classifier = mv.load_cached_pretrained(arch, engine.device)
    else:
        classifier = mv.classifier_from_state_dict(arch, _data, _name, engine.device)
    classifier.model = engine.prepare(classifier.model)
    return classifier


def choose_classifier():
    """The Vision pages' model, chosen in the sidebar: a torchvision architecture and its weights
    (automatic, a file of the models folder, or an upload; never a path typed in the browser).
    Returns the classifier, or None after showing why there is none."""
    from models import vision as mv  # torchvision only when a page needs a classifier

    st.sidebar.header("Model")
    archs = mv.available_architectures()
    suggested = [a for a in mv.SUGGESTED_ARCHS if a in archs]
    options = suggested + [a for a in archs if a not in suggested]
    default = mv.default_architecture()
    arch = st.sidebar.selectbox("Architecture (torchvision)", options,
                                index=options.index(default) if default in options else 0, key="vision_arch",
                                help="The paper uses GoogLeNet (Inception v1).")
    files = mv.weights_files()
    choice = st.sidebar.selectbox("Weights", [AUTOMATIC_WEIGHTS, *files, UPLOAD_WEIGHTS], key="vision_weights",
                                  help="automatic: $IG_VISION_WEIGHTS, torchvision's cache or a known file of the "
                                       "data folder. The files listed are the models folder's ($IG_MODELS_DIR).")
    try:
        if choice == UPLOAD_WEIGHTS:
            upload = st.sidebar.file_uploader(f"A state_dict for {arch}", key="vision_weights_upload",
                                              type=[suffix.lstrip(".") for suffix in mv.WEIGHTS_SUFFIXES],
                                              max_upload_size=MAX_WEIGHTS_UPLOAD_MB)
            if upload is None:
                st.info("Upload a state_dict file for the model in the sidebar.")
                return None
            name, data = upload.name, upload.getvalue()
        else:
            name, path = mv.automatic_weights(arch) if choice == AUTOMATIC_WEIGHTS else (choice, files[choice])
            data = None if path is None else mv.read_weights_file(path, name)
        digest = "torchvision" if data is None else hashlib.sha256(data).hexdigest()
        classifier = _cached_classifier(arch, digest, name, data)
    except mv.VisionError as exc:
        st.error(f"**No model for {arch}.** {exc}")
        st.info("Random weights are never used. Pick another architecture or weights in the sidebar.")
        return None
    st.sidebar.caption(f"Weights: {name}" + ("" if data is None else f", sha256 {digest[:12]}..."))
    st.sidebar.caption(f"Input {classifier.crop_size}x{classifier.crop_size} (resize {classifier.resize_size}, "
                       f"centre crop); device {get_engine().device_name}")
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
        max_batch = st.number_input("Path points per batch (0 = device default)", 0, 4096, current.max_batch or 0,
                                    help="More than the device default is bounded by the memory a batch needs, "
                                         "measured on the first point")
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


def run_page(page) -> None:
    """Run a page's main function; an unexpected error gets a clear message in the browser and its traceback
    in the server log only (exception texts can name server paths). Streamlit's rerun and stop are
    BaseExceptions and pass through."""
    try:
        page()
    except Exception as exc:
        LOG.exception("unexpected error on a page")
        st.error(f"Something went wrong ({type(exc).__name__}). The details are in the server log; "
                 "try another input or setting, and report it if it persists.")
