"""Vision evaluation: the attribution methods compared on photos by AOPC, deletion and insertion curves and box
localization (paper Section 2.5; Petsiuk et al. 2018)."""
import streamlit as st

from families.vision.evaluation import INSERTION_STARTS, evaluate_photos, evaluation_folders, image_methods, list_photos, method_options
from dashboard.session import choose_classifier, get_engine, progress_bar, scan_settings
from dashboard.renderers.vision_eval import completeness_chart, csv_bytes, curve_chart, localization_chart, localization_frame, method_frame, method_label, photo_frame, summary_frame

RESULT_KEY = "vision_eval_result"


st.title("Vision evaluation")
st.markdown(
    "Which attribution method finds the pixels that matter? Every chosen method attributes each photo, and the "
    "pixels are ranked by |attribution| summed over channels (Eq. 1). **AOPC** (Samek et al.): black out the most "
    "important pixels first, 100 at a time; the mean drop of the target's softmax is larger for the better ranking "
    "(Figure 5). **Deletion / insertion** (Petsiuk et al.): remove the most important pixels over the whole image, "
    "or put them back into a blurred copy; the area under the softmax curve is lower (deletion) or higher "
    "(insertion) for the better ranking. **Localization**: the share of the attribution inside the human bounding "
    "box. A random pixel order is the reference. Expected gradients draws its references from the other photos."
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
    methods = st.multiselect("Methods", image_methods(), default=image_methods(), format_func=method_label)
    c1, c2, c3 = st.columns(3)
    pixels_per_step = c1.number_input("Pixels per ablation step", 1, 50176, 100)
    ablation_steps = c2.number_input("Ablation steps", 1, 500, 50)
    fill = c3.selectbox("Ablated pixels become", ["black", "noise"],
                        help="black: the IG baseline (the paper); noise: uniform random colours (Samek et al.)")
    c4, c5, c6 = st.columns(3)
    curve_steps = c4.number_input("Deletion / insertion steps", 2, 256, 16, help="steps over all pixels")
    insertion_start = c5.selectbox("Insertion starts from", INSERTION_STARTS,
                                   help="blur: a blurred copy of the photo (RISE); black: the black image")
    include_random = c6.checkbox("Random-order reference", True)
    submitted = st.form_submit_button("Run evaluation")

options = method_options(methods or image_methods())
st.caption(f"Device: {engine.device_name}. Path methods: rule {settings.rule}, steps {settings.steps}, tolerance "
           f"{settings.tolerance:g}, budget {settings.max_steps} (change them on the Home page). Options that keep "
           "the run affordable: " + "; ".join(f"{method_label(name)} " + ", ".join(f"{k}={v}" for k, v in o.items())
                                              for name, o in options.items() if o))

if submitted:
    photos = list_photos(folders[choice], int(limit))
    if not photos:
        st.error(f"There are no photos in {choice}.")
    elif not methods:
        st.error("Choose at least one method.")
    else:
        with progress_bar(f"Evaluating {len(photos)} photos") as progress:
            try:
                st.session_state[RESULT_KEY] = evaluate_photos(
                    classifier, photos, engine, methods=methods, rule=settings.rule, steps=settings.steps,
                    tolerance=settings.tolerance, max_steps=settings.max_steps, max_batch=settings.max_batch,
                    amp=settings.amp, pixels_per_step=int(pixels_per_step), ablation_steps=int(ablation_steps),
                    fill=fill, curve_steps=int(curve_steps), insertion_start=insertion_start,
                    include_random=include_random, progress=progress)
            except ValueError as exc:
                st.error(str(exc))

result = st.session_state.get(RESULT_KEY)
if result is None:
    st.stop()
if len(result.skipped):
    st.warning(f"{len(result.skipped)} photo(s) could not be used and were skipped:")
    st.dataframe(result.skipped, hide_index=True)
if result.table.empty:
    st.error("None of the photos could be used; there is nothing to show.")
    st.stop()
table, per_method, curves = result.table, result.per_method, result.curves
st.subheader("Summary per method")
st.dataframe(method_frame(per_method), hide_index=True)
st.dataframe(summary_frame(table), hide_index=True)
for column, kind in zip(st.columns(3), ("aopc", "deletion", "insertion")):
    column.altair_chart(curve_chart(curves, kind), width="stretch")
if table.has_box.any():
    st.subheader("Localization (boxed photos)")
    st.altair_chart(localization_chart(per_method), width="stretch")
    st.dataframe(localization_frame(table, per_method), hide_index=True)
if table.relative_delta.notna().any():
    st.altair_chart(completeness_chart(table), width="stretch")
st.subheader("Per photo")
st.dataframe(photo_frame(table), hide_index=True)
st.download_button("Download per-photo CSV", csv_bytes(table), "vision_eval.csv", "text/csv")
st.download_button("Download per-photo and method CSV", csv_bytes(per_method), "vision_eval_methods.csv", "text/csv")
st.download_button("Download curves CSV", csv_bytes(curves), "vision_eval_curves.csv", "text/csv")
