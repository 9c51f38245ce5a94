"""Vision evaluation (paper Section 2.5): AOPC pixel ablation and box localization, IG against the gradient."""
import streamlit as st

from models.vision_eval import evaluate_photos, evaluation_folders, list_photos
from views.session import choose_classifier, get_engine, progress_bar, scan_settings
from views.vision_eval import (aopc_chart, completeness_chart, csv_bytes, localization_frame, photo_frame,
                               score_chart, summary_frame)

RESULT_KEY = "vision_eval_result"


st.title("Vision evaluation")
st.markdown(
    "Does integrated gradients find the pixels that matter better than the gradient at the image? "
    "**Pixel ablation** (Samek et al.): black out the most important pixels first, 100 at a time, and "
    "watch the target's softmax fall; the area over that curve (AOPC) is larger for the better ranking "
    "(Figure 5). **Localization**: the share of the attribution (Eq. 1, |.| summed over channels) inside "
    "the human bounding box. One path scan per photo gives the attributions, the gradient at the image, "
    "the completeness check and the saturation trend."
)

engine = get_engine()
settings = scan_settings()
classifier = choose_classifier()
folders = evaluation_folders()
if classifier is None:
    st.stop()
if not folders:
    st.error("There are no photo folders on this server: the operator puts imagenet_samples, imagenet_val_boxes "
             "or imagenet_more in the data folder (IG_DATA_DIR).")
    st.stop()
with st.form("vision_eval"):
    choice = st.selectbox("Photos", list(folders),
                          help="a folder of the data folder, with labels.csv or boxes.csv (ImageNet) or just images")
    limit = st.number_input("Photos (at most)", 1, 5000, 20)
    c1, c2, c3 = st.columns(3)
    pixels_per_step = c1.number_input("Pixels per ablation step", 1, 50176, 100)
    ablation_steps = c2.number_input("Ablation steps", 1, 500, 50)
    fill = c3.selectbox("Ablated pixels become", ["black", "noise"],
                        help="black: the IG baseline (the paper); noise: uniform random colours (Samek et al.)")
    include_random = st.checkbox("Random-order reference curve", True)
    submitted = st.form_submit_button("Run evaluation")

st.caption(f"Device: {engine.device_name}. Scan: rule {settings.rule}, steps {settings.steps}, "
           f"tolerance {settings.tolerance:g}, budget {settings.max_steps} (change them on the Home page).")

if submitted:
    photos = list_photos(folders[choice], int(limit))
    if not photos:
        st.error(f"There are no photos in {choice}.")
    else:
        with progress_bar(f"Evaluating {len(photos)} photos") as progress:
            result = evaluate_photos(
                classifier, photos, engine, rule=settings.rule, steps=settings.steps,
                tolerance=settings.tolerance, max_steps=settings.max_steps, max_batch=settings.max_batch,
                amp=settings.amp, pixels_per_step=int(pixels_per_step), ablation_steps=int(ablation_steps),
                fill=fill, include_random=include_random, progress=progress)
        st.session_state[RESULT_KEY] = result

result = st.session_state.get(RESULT_KEY)
if result is None:
    st.stop()
if len(result.skipped):
    st.warning(f"{len(result.skipped)} photo(s) could not be used and were skipped:")
    st.dataframe(result.skipped, hide_index=True)
if result.table.empty:
    st.error("None of the photos could be used; there is nothing to show.")
    st.stop()
table, curves = result.table, result.curves
st.subheader("Summary")
st.dataframe(summary_frame(table), hide_index=True)
left, right = st.columns(2)
left.altair_chart(aopc_chart(curves), width="stretch")
right.altair_chart(score_chart(curves), width="stretch")
st.altair_chart(completeness_chart(table), width="stretch")
loc = localization_frame(table)
if len(loc):
    st.subheader("Localization (boxed photos)")
    st.dataframe(loc, hide_index=True)
st.subheader("Per photo")
st.dataframe(photo_frame(table), hide_index=True)
st.download_button("Download per-photo CSV", csv_bytes(table), "vision_eval.csv", "text/csv")
st.download_button("Download AOPC curves CSV", csv_bytes(curves), "vision_eval_curves.csv", "text/csv")
