"""What every page shares: the one cached engine, the user's scan settings and the Vision pages' model choice."""
from __future__ import annotations

import ast
import contextlib
import hashlib
import logging
from dataclasses import fields
from typing import Callable

import streamlit as st

from ig_core import METHODS, RULES, AttributionEngine, ScanSettings, limit_memory_arenas

LOG = logging.getLogger("ig_dashboard")
SETTINGS_KEY = "scan_settings"
AUTOMATIC_WEIGHTS = "automatic"
UPLOAD_WEIGHTS = "upload a state_dict..."
UPLOAD_PROGRAM = "upload an exported program (.pt2)..."
PROGRAM_PREFIX = "exported: "
FACTORY_PREFIX = "factory: "
MAX_WEIGHTS_UPLOAD_MB = 150  # fits a ResNet-50 state_dict (98 MB); .streamlit/config.toml bounds all uploads


@st.cache_resource(show_spinner=False)
def get_engine() -> AttributionEngine:
    """One engine for all sessions (GPU when there is one); it locks and caches inside."""
    limit_memory_arenas()  # sessions run in threads: keep their freed memory in a few heaps, not one each
    return AttributionEngine()


@st.cache_resource(show_spinner="Loading the model...", max_entries=4)
def _cached_classifier(arch: str, weights_digest: str, _name: str, _data: bytes | None):
    """One families.vision.classifiers.ImageClassifier per (architecture, sha256 of the weights file) for all pages and
    sessions, on the engine's device and frozen: every route to the same bytes shares it. _data None:
    torchvision's cached pretrained weights. Raises families.vision.classifiers.VisionError (not cached)."""
    from families.vision import classifiers as vision_models

    engine = get_engine()
    if _data is None:
        classifier = vision_models.load_cached_pretrained(arch, engine.device)
    else:
        classifier = vision_models.classifier_from_state_dict(arch, _data, _name, engine.device)
    classifier.model = engine.prepare(classifier.model)
    return classifier


@st.cache_resource(show_spinner="Loading the model...", max_entries=4)
def _cached_program(digest: str, _name: str, _data: bytes, _classes: list[str] | None, _preprocessing):
    """One classifier per exported program and its sidecar (digest: families.vision.classifiers.program_digest)."""
    from families.vision import classifiers as vision_models

    engine = get_engine()
    classifier = vision_models.classifier_from_program(_data, _name, _classes, _preprocessing, engine.device)
    classifier.model = engine.prepare(classifier.model)
    return classifier


@st.cache_resource(show_spinner="Loading the model...", max_entries=4)
def _cached_factory(spec: str):
    """One classifier per factory the operator named (its code runs once per server)."""
    from families.vision import classifiers as vision_models

    engine = get_engine()
    classifier = vision_models.classifier_from_factory(spec, engine.device)
    classifier.model = engine.prepare(classifier.model)
    return classifier


def choose_classifier():
    """The Vision pages' model, chosen in the sidebar: the operator's factories ($IG_VISION_FACTORY), the
    exported programs (.pt2) of the models folder or an uploaded one, or a torchvision architecture and its
    weights (automatic, a file of the models folder, or an upload); never a path typed in the browser.
    Returns the classifier, or None after showing why there is none."""
    from families.vision import classifiers as vision_models  # torchvision only when a page needs a classifier

    st.sidebar.header("Model")
    archs = vision_models.available_architectures()
    suggested = [a for a in vision_models.SUGGESTED_ARCHS if a in archs]
    programs = vision_models.program_files()
    options = ([FACTORY_PREFIX + spec for spec in vision_models.factory_names()]
               + [PROGRAM_PREFIX + n for n in programs]
               + [UPLOAD_PROGRAM] + suggested + [a for a in archs if a not in suggested])
    default = vision_models.default_architecture()
    arch = st.sidebar.selectbox("Network", options, index=options.index(default) if default in options else 0,
                                key="vision_arch",
                                help="A torchvision architecture (the paper uses GoogLeNet, Inception v1), an "
                                     "exported program (torch.export, .pt2) or a factory the operator named.")
    try:
        if arch.startswith(FACTORY_PREFIX):
            classifier = _cached_factory(arch.removeprefix(FACTORY_PREFIX))
        elif arch.startswith(PROGRAM_PREFIX) or arch == UPLOAD_PROGRAM:
            classifier = _program_classifier(arch, programs)
        else:
            classifier = _torchvision_classifier(arch)
    except vision_models.VisionError as exc:
        if exc.__cause__ is not None:  # an operator's factory failed: its traceback goes to the server log only
            LOG.error("loading the model %s failed", arch, exc_info=exc.__cause__)
        st.error(f"**No model for {'the uploaded program' if arch == UPLOAD_PROGRAM else arch}.** {exc}")
        st.info("Random weights are never used. Pick another model or weights in the sidebar.")
        return None
    if classifier is not None:
        st.sidebar.caption(f"{classifier.weights_source}; input {classifier.crop_size}x{classifier.crop_size} "
                           f"(resize {classifier.resize_size}, centre crop); device {get_engine().device_name}")
    return classifier


def _torchvision_classifier(arch: str):
    from families.vision import classifiers as vision_models

    files = vision_models.weights_files()
    choice = st.sidebar.selectbox("Weights", [AUTOMATIC_WEIGHTS, *files, UPLOAD_WEIGHTS], key="vision_weights",
                                  help="automatic: $IG_VISION_WEIGHTS, torchvision's cache or a known file of the "
                                       "data folder. The files listed are the models folder's ($IG_MODELS_DIR).")
    if choice == UPLOAD_WEIGHTS:
        upload = st.sidebar.file_uploader(f"A state_dict for {arch}", key="vision_weights_upload",
                                          type=[suffix.lstrip(".") for suffix in vision_models.WEIGHTS_SUFFIXES],
                                          max_upload_size=MAX_WEIGHTS_UPLOAD_MB)
        if upload is None:
            st.info("Upload a state_dict file for the model in the sidebar.")
            return None
        name, data = upload.name, upload.getvalue()
    else:
        name, path = vision_models.automatic_weights(arch) if choice == AUTOMATIC_WEIGHTS else (choice, files[choice])
        data = None if path is None else vision_models.read_weights_file(path, name)
    digest = "torchvision" if data is None else hashlib.sha256(data).hexdigest()
    st.sidebar.caption(f"Weights: {name}" + ("" if data is None else f", sha256 {digest[:12]}..."))
    return _cached_classifier(arch, digest, name, data)


def _program_classifier(choice: str, programs: dict):
    """An exported program of the models folder (with its sidecar) or an upload with its class names and
    the preprocessing set here."""
    from families.vision import classifiers as vision_models

    if choice == UPLOAD_PROGRAM:
        upload = st.sidebar.file_uploader("An exported program (torch.export.save)", key="vision_program_upload",
                                          type=[vision_models.PROGRAM_SUFFIX.lstrip(".")],
                                          max_upload_size=MAX_WEIGHTS_UPLOAD_MB)
        names = st.sidebar.file_uploader("Its class names (a text file, one a line)", key="vision_classes_upload",
                                         type=["txt"])
        preprocessing = _preprocessing_inputs()
        if upload is None:
            st.info("Upload an exported program (.pt2, with a dynamic batch dimension) and its class names in "
                    "the sidebar.")
            return None
        name, data = upload.name, upload.getvalue()
        classes = None if names is None else vision_models.parse_class_names(names.getvalue(), names.name)
    else:
        name = choice.removeprefix(PROGRAM_PREFIX)
        data = vision_models.read_weights_file(programs[name], name)
        classes, preprocessing = vision_models.read_sidecar(programs[name], name)
    return _cached_program(vision_models.program_digest(data, classes, preprocessing), name, data, classes,
                           preprocessing)


def _preprocessing_inputs():
    """The preprocessing of an uploaded program (defaults: ImageNet's)."""
    from families.vision import classifiers as vision_models

    with st.sidebar.expander("Preprocessing (defaults: ImageNet)"):
        size = st.number_input("Input size (pixels)", 8, 4096, 224, key="vision_program_size")
        resize = st.number_input("Resize the shorter side to", 8, 4096, 256, key="vision_program_resize")
        channels = st.columns(3)
        mean = [c.number_input(f"Mean {rgb}", 0.0, 1.0, m, format="%.3f", key=f"vision_program_mean_{rgb}")
                for c, rgb, m in zip(channels, "RGB", vision_models.IMAGENET_MEAN)]
        std = [c.number_input(f"Std {rgb}", 0.001, 1.0, v, format="%.3f", key=f"vision_program_std_{rgb}")
               for c, rgb, v in zip(channels, "RGB", vision_models.IMAGENET_STD)]
    return vision_models.Preprocessing(int(size), int(resize), tuple(mean), tuple(std)).checked("The preprocessing")


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
    """The home page's form for the settings all pages share: the method and its options, and the scan of the
    straight line that integrated gradients and the methods built on it use."""
    current = scan_settings()
    names = list(METHODS)
    # outside the form: the options below follow the method chosen
    name = st.radio("Attribution method", names, index=names.index(current.method), key="settings_method",
                    format_func=lambda n: METHODS[n].label, horizontal=True)
    with st.form("scan_settings_form"):  # not SETTINGS_KEY: a form key is a widget key and locks that state key
        st.markdown(f"**{METHODS[name].label}: options**" if fields(METHODS[name].Options)
                    else f"{METHODS[name].label} has no options.")
        options = option_inputs(name, dict(current.method_options) if name == current.method else {})
        st.markdown("**The straight-line scan** (applies to path methods: "
                    f"{', '.join(cls.label for cls in METHODS.values() if cls.uses_path_rule)}; and SmoothGrad over "
                    "one of them)")
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
            try:
                current = ScanSettings(rule=rule, steps=int(steps), tolerance=float(tolerance),
                                       max_steps=int(max_steps), max_batch=int(max_batch) or None,
                                       amp=None if amp == "none" else amp, method=name,
                                       method_options=read_options(options))
            except ValueError as exc:  # an option the method refuses: its message says what it takes
                st.error(f"These settings cannot be used: {exc}")
            else:
                st.session_state[SETTINGS_KEY] = current
    return current


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
    if settings.method != "integrated_gradients" or settings.rule != "adaptive":
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
        st.info(f"No {family} runs in the runs folder. Make one with `python -m runs.runner --family {family} "
                f"... --out {store.runs_folder()}/NAME` (the operator sets the folder with {store.RUNS_ENV}).")
        return None
    name = st.selectbox(label, list(runs), key=key or f"{family}_run",
                        format_func=lambda n: f"{n} ({runs[n].get('counts', {}).get('rows', '?')} rows, "
                                              f"{runs[n].get('status', '?')})")
    return name, store.runs_folder() / name, runs[name]

