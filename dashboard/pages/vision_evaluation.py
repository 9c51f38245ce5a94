"""Vision evaluation: the attribution methods compared on photos by AOPC, deletion and insertion curves and box
localization (paper Section 2.5; Petsiuk et al. 2018)."""
import time

import streamlit as st

from dashboard.renderers.vision_eval import (
    completeness_chart,
    csv_bytes,
    curve_chart,
    localization_chart,
    localization_frame,
    method_frame,
    method_label,
    options_text,
    partial_note,
    photo_frame,
    progress_text,
    study_label,
    summary_frame,
)
from dashboard.scaffold import run_page
from dashboard.sections.vision_model_choice import choose_vision_model
from dashboard.session import get_engine, scan_settings
from families import config
from families.vision.curves import INSERTION_STARTS
from families.vision.evaluation_studies import STUDIES, capped_scan
from families.vision.photo_evaluation import evaluate_photos, evaluation_folders, image_methods, method_options
from families.vision.photos import list_photos

RESULT_KEY, STUDY_KEY = "vision_eval_result", "vision_eval_study"
REDRAW_SECONDS = 5.0  # the results so far are redrawn at most this often: each redraw sends every chart again
INTRODUCTION = (
    "Which attribution method finds the pixels that matter? Every chosen method attributes each photo, and the "
    "pixels are ranked by |attribution| summed over channels (Eq. 1). **AOPC** (Samek et al.): black out the most "
    "important pixels first, a number at a time (100 in the paper); the mean drop of the target's softmax is larger "
    "for the better ranking (Figure 5). **Deletion / insertion** (Petsiuk et al.): remove the most important "
    "pixels over the whole image, or put them back into a blurred copy; the area under the softmax curve is lower "
    "(deletion) or higher (insertion) for the better ranking. **Localization**: the share of the attribution inside "
    "the human bounding box. A random pixel order is the reference. Expected gradients draws its references from "
    "the other photos."
)


def field(name: str) -> str:
    """The session key of the form's field that a study sets."""
    return f"vision_eval_{name}"


def apply_study() -> None:
    """The chosen study's settings into the form's fields."""
    for name, value in STUDIES[st.session_state[STUDY_KEY]].form_values().items():
        st.session_state[field(name)] = value


def evaluation_form(folders: dict) -> tuple[dict, bool]:
    """The evaluation's choices, and whether the form was submitted; the study chosen above the form fills it."""
    st.radio("Study", list(STUDIES), key=STUDY_KEY, on_change=apply_study, horizontal=True,
             format_func=lambda name: study_label(name, STUDIES[name]),
             help="Fills the form below with its settings; any of them can be changed before running.")
    if field("limit") not in st.session_state:  # the first visit: the fields start as the first study's
        apply_study()
    with st.form("vision_eval"):
        choices = dict(folder=st.selectbox("Photos", list(folders), help="a folder of the data folder, with "
                                           "labels.csv or boxes.csv (ImageNet) or just images"),
                       limit=st.number_input("Photos (at most)", 1, 5000, key=field("limit")),
                       methods=st.multiselect("Methods", image_methods(), key=field("methods"),
                                              format_func=method_label))
        c1, c2, c3 = st.columns(3)
        choices["pixels_per_step"] = c1.number_input("Pixels per ablation step", 1, 50176,
                                                     key=field("pixels_per_step"))
        choices["ablation_steps"] = c2.number_input("Ablation steps", 1, 500, key=field("ablation_steps"))
        choices["fill"] = c3.selectbox("Ablated pixels become", ["black", "noise"],
                                       help="black: the IG baseline (the paper); noise: uniform random colours "
                                            "(Samek et al.)")
        c4, c5, c6 = st.columns(3)
        choices["curve_steps"] = c4.number_input("Deletion / insertion steps", 2, 256, key=field("curve_steps"),
                                                 help="steps over all pixels")
        choices["insertion_start"] = c5.selectbox("Insertion starts from", INSERTION_STARTS,
                                                  help="blur: a blurred copy of the photo (RISE); black: the black "
                                                       "image")
        choices["path_points"] = c6.number_input("Path points per photo, at most", 2, 4096, key=field("path_points"),
                                                 help="caps the Home page's budget (adaptive rule) or steps (fixed "
                                                      "rules) for this evaluation; the completeness error reached "
                                                      "is reported")
        choices["include_random"] = st.checkbox("Random-order reference", True)
        return choices, st.form_submit_button("Run evaluation")


def run_evaluation(classifier, folder, choices: dict, settings) -> None:
    """The evaluation of the chosen photos and methods under the scan settings, under a progress bar with the time
    left. Its results so far are kept in the session after every photo, and redrawn after the first photo and then
    once REDRAW_SECONDS have passed (after every photo on a CPU, every few on a GPU). The Stop button's click reruns
    the page, which interrupts the run at its next drawing and shows the results kept: any other rerun (a widget
    changed, the page left) stops it the same way, so the click itself needs no reading."""
    photos = list_photos(folder, int(choices["limit"]))
    if not photos:
        st.error(f"There are no photos in {choices['folder']}.")
        return
    if not choices["methods"]:
        st.error("Choose at least one method.")
        return
    st.session_state.pop(RESULT_KEY, None)  # a Stop before the first photo keeps nothing of an earlier run
    stop, bar, live = st.empty(), st.empty(), st.empty()
    stop.button("Stop", key="vision_eval_stop", help="Ends the evaluation and keeps the photos done so far")
    begun, drawn = time.perf_counter(), [float("-inf")]  # when the results so far were last drawn

    def progress(fraction: float) -> None:
        so_far = st.session_state.get(RESULT_KEY)
        bar.progress(min(max(fraction, 0.0), 1.0), text=progress_text(len(photos), so_far, time.perf_counter() - begun))

    def partial(so_far) -> None:
        st.session_state[RESULT_KEY] = so_far
        if not so_far.table.empty and time.perf_counter() - drawn[0] >= REDRAW_SECONDS:
            drawn[0] = time.perf_counter()
            with live.container():
                st.info(partial_note(so_far, running=True))
                show_result(so_far, downloads=False)

    progress(0.0)
    try:
        st.session_state[RESULT_KEY] = evaluate_photos(
            classifier, photos, get_engine(), methods=choices["methods"], scan=settings,
            pixels_per_step=int(choices["pixels_per_step"]), ablation_steps=int(choices["ablation_steps"]),
            fill=choices["fill"], curve_steps=int(choices["curve_steps"]), insertion_start=choices["insertion_start"],
            include_random=choices["include_random"], progress=progress, partial=partial)
    except ValueError as exc:
        st.error(str(exc))
    for holder in (stop, bar, live):
        holder.empty()


def show_result(result, downloads: bool = True) -> None:
    """The results' tables and charts; the downloads (widgets, drawn once a run) with the final or kept results."""
    if len(result.skipped):
        st.warning(f"{len(result.skipped)} photo(s) could not be used and were skipped:")
        st.dataframe(result.skipped, hide_index=True)
    if result.table.empty:
        st.error("None of the photos could be used; there is nothing to show.")
        return
    table, per_method, curves = result.table, result.per_method, result.curves
    st.subheader("Summary per method")
    st.dataframe(method_frame(per_method), hide_index=True)
    st.dataframe(summary_frame(table), hide_index=True)
    for kind in ("aopc", "deletion", "insertion"):  # one below the other: each needs the width for its legend
        st.altair_chart(curve_chart(curves, kind), width="stretch")
    if table.has_box.any():
        st.subheader("Localization (boxed photos)")
        st.altair_chart(localization_chart(per_method), width="stretch")
        st.dataframe(localization_frame(table, per_method), hide_index=True)
    if table.relative_delta.notna().any():
        st.altair_chart(completeness_chart(table), width="stretch")
    st.subheader("Per photo")
    st.dataframe(photo_frame(table), hide_index=True)
    if not downloads:
        return
    st.download_button("Download per-photo CSV", csv_bytes(table), "vision_eval.csv", "text/csv")
    st.download_button("Download per-photo and method CSV", csv_bytes(per_method), "vision_eval_methods.csv",
                       "text/csv")
    st.download_button("Download curves CSV", csv_bytes(curves), "vision_eval_curves.csv", "text/csv")


def main():
    st.title("Vision evaluation")
    st.markdown(INTRODUCTION)
    model = choose_vision_model()
    folders = evaluation_folders()
    if model is None:
        return
    if not folders:
        st.error("There are no photo folders on this server: the operator puts imagenet_samples, imagenet_val_boxes "
                 f"or imagenet_more in the data folder ({config.DATA_DIR.name}).")
        return
    choices, submitted = evaluation_form(folders)
    settings = capped_scan(scan_settings(), int(choices["path_points"]))
    affordable = options_text(method_options(choices["methods"] or image_methods()))
    st.caption(f"Device: {get_engine().device_name}. Path methods: rule {settings.rule}, steps {settings.steps}, "
               f"tolerance {settings.tolerance:g}, budget {settings.max_steps} (the Home page's, capped by the form)."
               + (f" Options that keep the run affordable: {affordable}" if affordable else ""))
    if submitted:
        run_evaluation(model.extra, folders[choices["folder"]], choices, settings)
    result = st.session_state.get(RESULT_KEY)
    if result is not None:
        if result.partial:
            st.warning(partial_note(result, running=False))
        show_result(result)


run_page(main)
