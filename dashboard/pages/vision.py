"""Vision: which pixels drive an image classifier (Figures 1-4, 6, 11, 12 of the paper).

Thin: the model in the sidebar (dashboard/sections/vision_model_choice.py), a photo (a sample, an upload, or one a run
page opened), the form for the targets, baseline and layer (dashboard/sections/photo_request.py, which keeps the
sample photo and the request in the URL), one scan through the vision family (all targets at once), and the sections
of dashboard/sections/vision.py.
"""
from __future__ import annotations

import hashlib
import pathlib

import pyarrow.dataset as ds
import streamlit as st
import torch

from dashboard.renderers import method_comparison
from dashboard.renderers import vision as vision_views
from dashboard.renderers.vision_runs import OPENED_PHOTO_KEY, RUN_SOURCE, SOURCE_KEY
from dashboard.scaffold import compare_methods, explain, page_settings, run_page, sanity_check
from dashboard.sections.photo_request import (
    SAMPLE_KEY,
    SAMPLE_SOURCE,
    explained_targets,
    parameters_form,
    photo_from_link,
)
from dashboard.sections.vision import (
    IMAGE_WIDTH,
    class_label,
    maps_side_by_side,
    method_label,
    view_ablation,
    view_attributions,
    view_completeness,
    view_misclassification,
    view_straight_line,
)
from dashboard.sections.vision_model_choice import choose_vision_model
from dashboard.url_state import link
from families import config
from families.contract import InputError
from families.vision.baselines import BASELINES
from families.vision.family import FAMILY, sample_folder
from families.vision.image_classifier import predict_image
from families.vision.images import UPLOAD_TYPES, load_image
from families.vision.photos import list_photos
from families.vision.run_rows import run_photo
from runs import store


@st.cache_data(show_spinner=False, max_entries=32)
def _look(model_key: str, digest: str, _classifier, _data: bytes) -> tuple:
    """Decode, crop and classify an image once per (model, image bytes): reruns reuse the answer.
    Raises the family's InputError (not cached) for a file that is no usable image."""
    image = load_image(_data)
    return predict_image(_classifier, image), image.info.get("notices", [])


@st.cache_data(show_spinner=False)
def _samples() -> dict:
    """The sample photos by file name, with their ground truth where the folder has it."""
    folder = sample_folder()
    return {pathlib.Path(photo.file).name: photo for photo in (list_photos(folder) if folder.is_dir() else [])}


def run_image(opened: dict):
    """The photo a run page opened ({"run": name, "item_index": k}): its bytes read from the run's photo folder as
    the run's manifest in the runs folder names it, with its ground truth; or None after saying why not."""
    manifest = store.list_runs("vision").get(opened["run"])
    if manifest is None:
        st.error(f"The run {opened['run']} is no longer in the runs folder.")
        return None
    item_index = int(opened["item_index"])
    try:
        rows = store.listing(store.runs_folder() / opened["run"],
                             (ds.field("item_index") == item_index) & (ds.field("status") == "explained"))
        photo = run_photo(rows, manifest, item_index)
        data = photo.path.read_bytes()
    except ValueError as exc:
        st.error(f"The photo cannot be opened: {exc}.")
        return None
    except OSError as exc:  # its text may name server paths
        st.error(f"The photo cannot be read from the run {opened['run']} ({exc.strerror}).")
        return None
    st.caption(f"{photo.item_id} of the run {opened['run']}: predicted {photo.predicted_name} ({photo.predicted}), "
               f"ground truth {photo.truth_name} ({photo.truth}); the run's model: {photo.model_key}.")
    return data, pathlib.PurePath(photo.item_id).name, photo.truth, hashlib.sha256(data).hexdigest()


def choose_image():
    """(file bytes, name, ground-truth index or None, bytes digest) or None."""
    samples = _samples()
    opened = st.session_state.get(OPENED_PHOTO_KEY)
    photo_from_link(samples)
    sources = ([RUN_SOURCE] if opened else []) + ([SAMPLE_SOURCE] if samples else []) + ["Upload"]
    source = st.radio("Image", sources, horizontal=True, key=SOURCE_KEY)
    if source != SAMPLE_SOURCE:
        link(photo=None)  # a link names a sample photo only
    if source == RUN_SOURCE:
        return run_image(opened)
    if source == "Upload":
        if not samples:
            st.caption(f"No sample photos on this server (the operator sets {config.VISION_SAMPLES.name} or "
                       f"{config.DATA_DIR.name}).")
        upload = st.file_uploader("Upload a photo (JPEG, PNG, WebP, BMP, TIFF)", type=list(UPLOAD_TYPES),
                                  key="vision_upload")
        if upload is None:
            return None
        data, name, truth = upload.getvalue(), upload.name, None
    else:
        name = st.selectbox("Sample photo", list(samples), key=SAMPLE_KEY,
                            format_func=lambda file: pathlib.Path(file).stem)
        link(photo=name)
        try:
            data = samples[name].path.read_bytes()
        except OSError as exc:
            st.error(f"Could not read the sample photo {name} ({exc.strerror}).")
            return None
        truth = samples[name].label
    return data, name, truth, hashlib.sha256(data).hexdigest()


def first_picture(ex) -> None:
    """The photo and each target's map with the default display: what the page shows while the scan refines."""
    columns = st.columns(len(ex.targets) + 1)
    columns[0].image(ex.image, caption=f"Input: {ex.labels[0]}", width=IMAGE_WIDTH)
    for t, column in enumerate(columns[1:]):
        column.image(vision_views.explained_map(ex.image, ex.attributions(t)),
                     caption=f"{method_label(ex)}: {ex.labels[t]}", width=IMAGE_WIDTH)


def main():
    st.title("Vision")
    st.caption("Integrated gradients (or the method chosen on the Home page) of an ImageNet classifier along the "
               "path from a baseline image to the photo. Expected gradients take the other sample photos as their "
               "baselines.")
    model = choose_vision_model()
    if model is None:
        return
    classifier = model.extra
    chosen = choose_image()
    if chosen is None:
        st.info("Pick a sample photo or upload one.")
        return
    data, name, truth, digest = chosen
    if not classifier.imagenet_classes:
        truth = None  # the sample photos' labels are ImageNet class indices: meaningless for other classes
    try:
        seen, notices = _look(model.key, digest, classifier, data)
    except InputError as exc:
        st.error(f"**{name}: cannot use this image.** {exc}")
        return
    for notice in notices:
        st.info(notice)
    top = classifier.top_k(torch.from_numpy(seen.probabilities).unsqueeze(0), 5)
    c1, c2 = st.columns([1, 2])
    c1.image(seen.image, caption=f"{name} as the network sees it ({classifier.crop_size} px)", width=IMAGE_WIDTH)
    with c2:
        st.markdown("**Top 5 (softmax)**"
                    + (f" - ground truth: **{class_label(classifier, truth)}**" if truth is not None else ""))
        st.dataframe(vision_views.top_k_frame(top), hide_index=True)
    request = parameters_form(classifier, top, truth, digest)
    if request is None:
        return
    photo = FAMILY.seen_photo(seen, request["baseline"], request["layer"] or None)
    settings = page_settings(FAMILY, model, photo)
    st.markdown(f"**Baseline:** {BASELINES[request['baseline']]}. "
                f"**Method:** {method_comparison.chosen_method(settings).label}"
                f"; **scan:** {settings.rule} rule, tolerance {100 * settings.tolerance:g}% (change on the Home page).")
    ex = explain(FAMILY, model, photo, explained_targets(request), settings, show=first_picture,
                 request=f"{model.key}|{digest}|{request}")
    if ex is None:
        return
    view_attributions(ex)
    view_straight_line(ex)
    view_completeness(ex)
    view_misclassification(ex, classifier, truth)
    view_ablation(ex, classifier)
    compare_methods(FAMILY, model, photo, ex.engine_targets, settings, key="vision_compare", show=maps_side_by_side)
    sanity_check(FAMILY, model, photo, ex.engine_targets, settings, key="vision_sanity")


run_page(main)
