"""Vision evaluation (paper Section 2.5): AOPC pixel ablation and box localization, IG against the gradient."""
import pathlib

import streamlit as st

from models.vision_eval import default_folders, evaluate_photos, list_photos
from views.session import cached_classifier, get_engine, progress_reporter, scan_settings
from views.vision_eval import (aopc_chart, completeness_chart, csv_bytes, localization_frame, photo_frame,
                               score_chart, summary_frame)

RESULT_KEY = "vision_eval_result"
ARCH = "mobilenet_v2"  # the shared data folder holds its weights (models.vision.LOCAL_WEIGHTS)


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
folders = [f for f in default_folders() if f.is_dir()]
with st.form("vision_eval"):
    choice = st.selectbox("Photos", [str(f) for f in folders] + ["other folder..."],
                          help="a folder with labels.csv or boxes.csv (ImageNet), or any folder of images")
    other = st.text_input("Other folder", "", help="used when 'other folder...' is chosen")
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
    folder = pathlib.Path(other.strip() if choice == "other folder..." else choice).expanduser()
    photos = list_photos(folder, int(limit)) if folder.is_dir() else []
    if not photos:
        st.error(f"No photos found in {folder}.")
    else:
        try:
            classifier = cached_classifier(ARCH, "")
        except Exception as exc:  # WeightsUnavailable / WeightsError: the message says what to do
            st.error(f"Could not load the classifier: {exc}")
            st.stop()
        progress = progress_reporter(f"Evaluating {len(photos)} photos")
        result = evaluate_photos(
            classifier, photos, engine, rule=settings.rule, steps=settings.steps,
            tolerance=settings.tolerance, max_steps=settings.max_steps, max_batch=settings.max_batch,
            amp=settings.amp, pixels_per_step=int(pixels_per_step), ablation_steps=int(ablation_steps),
            fill=fill, include_random=include_random, progress=progress)
        st.session_state[RESULT_KEY] = result

result = st.session_state.get(RESULT_KEY)
if result is not None:
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
