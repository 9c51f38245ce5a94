"""The Vision pages' model, chosen in the sidebar: the operator's factories ($IG_VISION_FACTORY), the exported
programs (.pt2) of the models folder or an uploaded one, or a torchvision architecture with its weights (automatic,
a file of the models folder, or an upload); never a path typed in the browser. Each choice is a source of the
vision family (families.vision.model_sources), loaded through the cache every page shares
(dashboard.scaffold.load_model): the same bytes by two routes are one model."""
from __future__ import annotations

import hashlib
import logging

import streamlit as st

from dashboard.scaffold import load_model
from dashboard.session import get_engine
from families.checkpoint import CheckpointError
from families.contract import FamilyError, LoadedModel, ModelSource
from families.vision import model_sources
from families.vision.exported_programs import PROGRAM_SUFFIX, parse_class_names, program_files
from families.vision.factories import factory_names
from families.vision.family import FAMILY
from families.vision.image_classifier import IMAGENET_MEAN, IMAGENET_STD
from families.vision.weights import WEIGHTS_SUFFIXES, default_architecture, weights_files

LOG = logging.getLogger("ig_dashboard")
NETWORK_KEY, WEIGHTS_KEY = "vision_arch", "vision_weights"  # the runs page sets them to a run's model
AUTOMATIC_WEIGHTS = "automatic"
UPLOAD_WEIGHTS = "upload a state_dict..."
UPLOAD_PROGRAM = "upload an exported program (.pt2)..."
PROGRAM_PREFIX = "exported: "
MAX_WEIGHTS_UPLOAD_MB = 150  # fits a ResNet-50 state_dict (98 MB); .streamlit/config.toml bounds all uploads


def networks() -> dict[str, ModelSource | None]:
    """The sidebar's networks by label: the operator's factories and the models folder's programs with their
    sources, then the upload of a program and the torchvision architectures (None: chosen with more widgets)."""
    factories = {source.name: source for source in map(model_sources.factory_source, factory_names())}
    programs = {PROGRAM_PREFIX + name: model_sources.program_source(name, path)
                for name, path in program_files().items()}
    return {**factories, **programs, UPLOAD_PROGRAM: None, **dict.fromkeys(model_sources.architectures())}


def choose_vision_model() -> LoadedModel | None:
    """The model chosen in the sidebar, loaded; None after showing why there is none."""
    st.sidebar.header("Model")
    labels = networks()
    options, default = list(labels), default_architecture()
    # the default goes through the session state: a widget given a default beside a value another page set there
    # (the runs page, for a run's model) makes Streamlit warn
    if st.session_state.get(NETWORK_KEY) not in options:
        st.session_state[NETWORK_KEY] = default if default in options else options[0]
    choice = st.sidebar.selectbox("Network", options, key=NETWORK_KEY,
                                  help="A torchvision architecture (the paper uses GoogLeNet, Inception v1), an "
                                       "exported program (torch.export, .pt2) or a factory the operator named.")
    try:
        if labels[choice] is not None:
            source = labels[choice]
        elif choice == UPLOAD_PROGRAM:
            source = uploaded_program()
        else:
            source = torchvision_weights(choice)
        if source is None:
            return None
        model = load_model(FAMILY, source)
    except (FamilyError, CheckpointError) as exc:
        if exc.__cause__ is not None:  # an operator's factory failed: its traceback goes to the server log only
            LOG.error("loading the model %s failed", choice, exc_info=exc.__cause__)
        st.error(f"**No model for {'the uploaded program' if choice == UPLOAD_PROGRAM else choice}.** {exc}")
        st.info("Random weights are never used. Pick another model or weights in the sidebar.")
        return None
    classifier = model.extra
    st.sidebar.caption(f"{classifier.weights_source}; input {classifier.crop_size}x{classifier.crop_size} "
                       f"(resize {classifier.resize_size}, centre crop); device {get_engine().device_name}")
    return model


def select_in_sidebar(source: ModelSource) -> None:
    """Choose one of the family's sources (a run's model) in the sidebar, where the sidebar offers it."""
    labels = networks()
    arch = dict(source.options).get("arch", default_architecture())
    listed = [label for label, offered in labels.items() if offered == source]
    if listed:
        st.session_state[NETWORK_KEY] = listed[0]
    elif arch in labels and ((source.data is None and source.path is None) or source.name in weights_files()):
        st.session_state[NETWORK_KEY] = arch
        st.session_state[WEIGHTS_KEY] = source.name if source.path is not None else AUTOMATIC_WEIGHTS


def torchvision_weights(arch: str) -> ModelSource | None:
    """The architecture with the weights chosen in the sidebar; None until an upload arrives."""
    files = weights_files()
    choice = st.sidebar.selectbox("Weights", [AUTOMATIC_WEIGHTS, *files, UPLOAD_WEIGHTS], key=WEIGHTS_KEY,
                                  help="automatic: $IG_VISION_WEIGHTS, torchvision's cache or a known file of the "
                                       "data folder. The files listed are the models folder's ($IG_MODELS_DIR).")
    if choice == UPLOAD_WEIGHTS:
        upload = st.sidebar.file_uploader(f"A state_dict for {arch}", key="vision_weights_upload",
                                          type=[suffix.lstrip(".") for suffix in WEIGHTS_SUFFIXES],
                                          max_upload_size=MAX_WEIGHTS_UPLOAD_MB)
        if upload is None:
            st.info("Upload a state_dict file for the model in the sidebar.")
            return None
        source = model_sources.state_dict_source(arch, upload.name, upload.getvalue())
    elif choice == AUTOMATIC_WEIGHTS:
        source = model_sources.automatic_source(arch)
    else:
        source = model_sources.weights_file_source(arch, choice, files[choice])
    digest = "" if source.data is None else f", sha256 {hashlib.sha256(source.data).hexdigest()[:12]}..."
    st.sidebar.caption(f"Weights: {source.name}{digest}")
    return source


def uploaded_program() -> ModelSource | None:
    """An uploaded exported program with its class names and the preprocessing set here; None until it arrives."""
    upload = st.sidebar.file_uploader("An exported program (torch.export.save)", key="vision_program_upload",
                                      type=[PROGRAM_SUFFIX.lstrip(".")], max_upload_size=MAX_WEIGHTS_UPLOAD_MB)
    names = st.sidebar.file_uploader("Its class names (a text file, one a line)", key="vision_classes_upload",
                                     type=["txt"])
    preprocessing = preprocessing_inputs()
    if upload is None:
        st.info("Upload an exported program (.pt2, with a dynamic batch dimension) and its class names in the "
                "sidebar.")
        return None
    classes = None if names is None else parse_class_names(names.getvalue(), names.name)
    return model_sources.program_source(upload.name, data=upload.getvalue(), classes=classes,
                                        preprocessing=preprocessing)


def preprocessing_inputs():
    """The preprocessing of an uploaded program (defaults: ImageNet's)."""
    with st.sidebar.expander("Preprocessing (defaults: ImageNet)"):
        size = st.number_input("Input size (pixels)", 8, 4096, 224, key="vision_program_size")
        resize = st.number_input("Resize the shorter side to", 8, 4096, 256, key="vision_program_resize")
        channels = st.columns(3)
        mean = [column.number_input(f"Mean {rgb}", 0.0, 1.0, value, format="%.3f", key=f"vision_program_mean_{rgb}")
                for column, rgb, value in zip(channels, "RGB", IMAGENET_MEAN)]
        std = [column.number_input(f"Std {rgb}", 0.001, 1.0, value, format="%.3f", key=f"vision_program_std_{rgb}")
               for column, rgb, value in zip(channels, "RGB", IMAGENET_STD)]
    return model_sources.upload_preprocessing(int(size), int(resize), mean, std)
