"""Vision evaluation: the attribution methods compared on photos by AOPC, deletion and insertion curves and box
localization (paper Section 2.5; Petsiuk et al. 2018)."""
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
    photo_frame,
    summary_frame,
)
from dashboard.scaffold import run_page
from dashboard.sections.vision_model_choice import choose_vision_model
from dashboard.session import get_engine, progress_bar, scan_settings
from families import config
from families.vision.curves import INSERTION_STARTS
from families.vision.photo_evaluation import evaluate_photos, evaluation_folders, image_methods, method_options
from families.vision.photos import list_photos

RESULT_KEY = "vision_eval_result"
INTRODUCTION = (
    "Which attribution method finds the pixels that matter? Every chosen method attributes each photo, and the "
    "pixels are ranked by |attribution| summed over channels (Eq. 1). **AOPC** (Samek et al.): black out the most "
    "important pixels first, 100 at a time; the mean drop of the target's softmax is larger for the better ranking "
    "(Figure 5). **Deletion / insertion** (Petsiuk et al.): remove the most important pixels over the whole image, "
    "or put them back into a blurred copy; the area under the softmax curve is lower (deletion) or higher "
    "(insertion) for the better ranking. **Localization**: the share of the attribution inside the human bounding "
    "box. A random pixel order is the reference. Expected gradients draws its references from the other photos."
)


def evaluation_form(folders: dict) -> tuple[dict, bool]:
    """The evaluation's choices, and whether the form was submitted."""
    with st.form("vision_eval"):
        choices = dict(folder=st.selectbox("Photos", list(folders), help="a folder of the data folder, with "
                                           "labels.csv or boxes.csv (ImageNet) or just images"),
                       limit=st.number_input("Photos (at most)", 1, 5000, 20),
                       methods=st.multiselect("Methods", image_methods(), default=image_methods(),
                                              format_func=method_label))
        c1, c2, c3 = st.columns(3)
        choices["pixels_per_step"] = c1.number_input("Pixels per ablation step", 1, 50176, 100)
        choices["ablation_steps"] = c2.number_input("Ablation steps", 1, 500, 50)
        choices["fill"] = c3.selectbox("Ablated pixels become", ["black", "noise"],
                                       help="black: the IG baseline (the paper); noise: uniform random colours "
                                            "(Samek et al.)")
        c4, c5, c6 = st.columns(3)
        choices["curve_steps"] = c4.number_input("Deletion / insertion steps", 2, 256, 16, help="steps over all pixels")
        choices["insertion_start"] = c5.selectbox("Insertion starts from", INSERTION_STARTS,
                                                  help="blur: a blurred copy of the photo (RISE); black: the black "
                                                       "image")
        choices["include_random"] = c6.checkbox("Random-order reference", True)
        return choices, st.form_submit_button("Run evaluation")


def run_evaluation(classifier, folder, choices: dict) -> None:
    """The evaluation of the chosen photos and methods under the shared scan settings, kept in the session."""
    settings = scan_settings()
    photos = list_photos(folder, int(choices["limit"]))
    if not photos:
        st.error(f"There are no photos in {choices['folder']}.")
        return
    if not choices["methods"]:
        st.error("Choose at least one method.")
        return
    with progress_bar(f"Evaluating {len(photos)} photos") as progress:
        try:
            st.session_state[RESULT_KEY] = evaluate_photos(
                classifier, photos, get_engine(), methods=choices["methods"], scan=settings,
                pixels_per_step=int(choices["pixels_per_step"]),
                ablation_steps=int(choices["ablation_steps"]), fill=choices["fill"],
                curve_steps=int(choices["curve_steps"]), insertion_start=choices["insertion_start"],
                include_random=choices["include_random"], progress=progress)
        except ValueError as exc:
            st.error(str(exc))


def show_result(result) -> None:
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
    settings, options = scan_settings(), method_options(choices["methods"] or image_methods())
    st.caption(f"Device: {get_engine().device_name}. Path methods: rule {settings.rule}, steps {settings.steps}, "
               f"tolerance {settings.tolerance:g}, budget {settings.max_steps} (change them on the Home page). Options "
               f"that keep the run affordable: {options_text(options)}")
    if submitted:
        run_evaluation(model.extra, folders[choices["folder"]], choices)
    result = st.session_state.get(RESULT_KEY)
    if result is not None:
        show_result(result)


run_page(main)
