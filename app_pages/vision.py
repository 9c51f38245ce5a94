"""Vision: which pixels drive an ImageNet classifier (Figures 1-4, 6, 11, 12 of the paper).

Thin: a form for the parameters, one call to models.vision.explain (one engine scan for all
targets), and renderers from views.vision. View controls live in fragments so they never recompute.
"""
from __future__ import annotations

import csv
import hashlib
import os
import pathlib
import re

import numpy as np
import streamlit as st
import torch

from models import vision as mv
from models.data import data_dir
from views import vision as vv
from views.completeness import completeness_verdict
from views.scaffold import run_page
from views.session import choose_classifier, get_engine, progress_reporter, scan_settings

SAMPLES_ENV = "IG_VISION_SAMPLES"
REQUEST_KEY = "vision_request"
IMAGE_WIDTH = 260


# --- cached resources ------------------------------------------------------------------------------

def _sample_dir() -> pathlib.Path:
    env = os.environ.get(SAMPLES_ENV, "").strip()
    return pathlib.Path(env).expanduser() if env else data_dir() / "imagenet_samples" / "images"


@st.cache_data(show_spinner=False, max_entries=32)
def _look(model_key: str, digest: str, _classifier: mv.ImageClassifier, _data: bytes) -> tuple[mv.Prediction, list[str]]:
    """Decode, crop and classify an image once per (model, image bytes): reruns reuse the answer.
    Raises mv.ImageError (not cached) for a file that is no usable image."""
    image = mv.load_image(_data)
    return mv.predict_image(_classifier, image), image.info.get("notices", [])


@st.cache_data(show_spinner=False)
def _samples(folder: str) -> tuple[list[str], dict[str, int]]:
    """Image files in the sample folder and ground-truth class indices from ../labels.csv if present."""
    path = pathlib.Path(folder)
    if not path.is_dir():
        return [], {}
    files = sorted(p.name for p in path.iterdir() if p.suffix.lower().lstrip(".") in mv.UPLOAD_TYPES)
    truth: dict[str, int] = {}
    labels = path.parent / "labels.csv"
    if labels.is_file():
        with labels.open(newline="") as f:
            for row in csv.DictReader(f):
                try:
                    truth[pathlib.Path(row["file"]).name] = int(row["class_index"])
                except (KeyError, ValueError):
                    continue
    return files, truth


# --- input image -----------------------------------------------------------------------------------

def choose_image():
    """(file bytes, name, ground-truth index or None, bytes digest) or None."""
    folder = _sample_dir()
    files, truth = _samples(str(folder))
    sources = (["Sample photo"] if files else []) + ["Upload"]
    source = st.radio("Image", sources, horizontal=True, key="vision_source")
    if source == "Upload":
        if not files:
            st.caption(f"No sample photos on this server (the operator sets {SAMPLES_ENV} or IG_DATA_DIR).")
        upload = st.file_uploader("Upload a photo (JPEG, PNG, WebP, BMP, TIFF)", type=list(mv.UPLOAD_TYPES),
                                  key="vision_upload")
        if upload is None:
            return None
        data, name, gt = upload.getvalue(), upload.name, None
    else:
        name = st.selectbox("Sample photo", files, key="vision_sample",
                            format_func=lambda f: f"{pathlib.Path(f).stem}")
        try:
            data = (folder / name).read_bytes()
        except OSError as exc:
            st.error(f"Could not read the sample photo {name} ({exc.strerror}).")
            return None
        gt = truth.get(name)
    return data, name, gt, hashlib.sha256(data).hexdigest()


def class_label(classifier, index: int) -> str:
    return f"{classifier.categories[index]} ({index})"


# --- the form ---------------------------------------------------------------------------------------

def parameters_form(classifier, top, gt, digest):
    n = len(classifier.categories)
    top1 = top[0][0]
    second_default = gt if gt is not None and gt != top1 else (top[1][0] if len(top) > 1 else top1)
    layers = classifier.layer_names()
    with st.form("vision_form"):
        c1, c2 = st.columns(2)
        target = c1.selectbox("Explain the label", range(n), index=top1, format_func=lambda i: class_label(classifier, i),
                              help="Default: the top prediction.")
        compare = c2.selectbox("Compare with a second label (same scan)", [-1, *range(n)],
                               index=second_default + 1,
                               format_func=lambda i: "none" if i < 0 else class_label(classifier, i) +
                               (" - ground truth" if i == gt else ""),
                               help="E.g. the ground truth of a misclassified image (Figure 6).")
        c3, c4 = st.columns(2)
        baseline = c3.selectbox("Baseline", list(mv.BASELINES), format_func=lambda b: f"{b}: {mv.BASELINES[b]}")
        layer = c4.selectbox("Intermediate layer (Figure 12)", layers, index=len(layers) - 1 if layers else 0)
        submitted = st.form_submit_button("Explain", type="primary")
    if submitted:
        targets = [int(target)] + ([int(compare)] if compare >= 0 and compare != target else [])
        st.session_state[REQUEST_KEY] = dict(digest=digest, model=classifier.key, targets=targets,
                                             baseline=baseline, layer=layer)
    request = st.session_state.get(REQUEST_KEY)
    if request and request["digest"] == digest and request["model"] == classifier.key:
        return request
    return None


# --- views (fragments: their controls rerun only themselves) ---------------------------------------

def display_controls(key: str):
    c1, c2, c3 = st.columns(3)
    polarity = c1.radio("Polarity", vv.POLARITIES, horizontal=True, key=f"{key}_polarity",
                        help="absolute: sum over channels of |value| (Eq. 1); positive/negative: signed sum")
    clip = c2.slider("Clip at percentile", 90.0, 100.0, 99.0, 0.5, key=f"{key}_clip",
                     help="Values above this percentile saturate, so a few extreme pixels do not hide the rest")
    style = c3.radio("Style", vv.STYLES, horizontal=True, key=f"{key}_style",
                     help="intensity: the paper's pixels scaled by importance; overlay: heat map")
    return polarity, clip, style


@st.fragment
def view_attributions(ex: mv.VisionExplanation):
    st.subheader("1. Integrated gradients beside the gradient at the image (Figure 4)")
    polarity, clip, style = display_controls("v1")
    ig = vv.visualize(ex.image, ex.attributions(0), polarity, clip, style)
    grad = vv.visualize(ex.image, ex.gradient(0, 1.0), polarity, clip, style)
    cols = st.columns(3)
    cols[0].image(ex.image, caption=f"Input: {ex.labels[0]}, softmax {ex.score(0):.4f}", width=IMAGE_WIDTH)
    cols[1].image(ig, caption="Integrated gradients", width=IMAGE_WIDTH)
    cols[2].image(grad, caption="Gradient at the image (alpha = 1)", width=IMAGE_WIDTH)
    d1, d2, d3 = st.columns(3)
    d1.download_button("Attributions (.npy, [targets, 3, H, W])", vv.npy_bytes(ex.all_attributions()),
                       file_name=f"ig_{re.sub(r'[^A-Za-z0-9_-]+', '_', ex.labels[0])}.npy",
                       mime="application/octet-stream")
    d2.download_button("Integrated gradients (.png)", vv.png_bytes(ig), file_name="integrated_gradients.png",
                       mime="image/png")
    d3.download_button("Gradient (.png)", vv.png_bytes(grad), file_name="gradient.png", mime="image/png")


@st.fragment
def view_interior(ex: mv.VisionExplanation):
    st.subheader("2. Interior gradients (Figure 3)")
    st.caption("Gradients at the scaled images alpha * image (toward the baseline). Each picture shows only the "
               "relative distribution over pixels; the chart shows their magnitude.")
    polarity, clip, style = display_controls("v2")
    t = 0
    if len(ex.targets) > 1:
        t = st.radio("Label", range(len(ex.targets)), format_func=lambda i: ex.labels[i], horizontal=True, key="v2_t")
    alphas = ex.probe_alphas
    panels = vv.interior_panels(ex.image, {a: ex.gradient(t, a) for a in alphas}, polarity, clip, style)
    grid = vv.image_grid([p for _, p in panels], [f"alpha = {a:g}" for a, _ in panels], columns=5)
    st.image(grid, caption="Interior gradients, alpha = 0.02 ... 1.0", width="stretch")
    c1, c2 = st.columns([1, 1])
    with c1:
        alpha = st.select_slider("alpha", options=alphas, value=alphas[0], format_func=lambda a: f"{a:g}", key="v2_alpha")
        st.image(dict(panels)[alpha], caption=f"Interior gradient at alpha = {alpha:g}", width=IMAGE_WIDTH)
    with c2:
        a = ex.attribution
        st.altair_chart(vv.mean_gradient_chart(a.alphas, a.grad_abs_mean[:, 0, t], ex.labels[t], alpha), width="stretch")
    st.download_button("Interior gradients grid (.png)", vv.png_bytes(grid), file_name="interior_gradients.png",
                       mime="image/png")


def view_saturation(ex: mv.VisionExplanation):
    st.subheader("3. Saturation (Figure 2)")
    a = ex.attribution
    st.altair_chart(vv.saturation_chart(a.alphas, a.scores[:, 0, :], a.raw_scores[:, 0, :], ex.labels), width="stretch")
    st.caption("The score along alpha * image (toward the baseline). A curve that flattens early means the gradient at "
               "the image (alpha = 1) sees little of what raised the score.")


def view_layer(ex: mv.VisionExplanation):
    st.subheader(f"4. Saturation inside the network: layer {ex.layer_name} (Figure 12)")
    a = ex.attribution
    if a.layer_l2 is None:
        st.info("No layer was observed.")
        return
    st.altair_chart(vv.layer_distance_chart(a.alphas, a.layer_l2[:, 0], a.layer_cosine[:, 0], ex.layer_name),
                    width="stretch")


def view_completeness(ex: mv.VisionExplanation, settings):
    st.subheader("5. Completeness (Proposition 1)")
    a = ex.attribution
    sums = ex.all_attributions().astype(np.float64).reshape(len(ex.targets), -1).sum(axis=1)
    frame = vv.completeness_frame(ex.labels, ex.targets, a.score_input[0], a.score_baseline[0], sums,
                                  a.relative_delta[0], ex.tolerance)
    number = st.column_config.NumberColumn
    st.dataframe(frame, hide_index=True, column_config={
        **{c: number(format="%.4f") for c in ("F(input)", "F(baseline)", "F(input) - F(baseline)", "sum of attributions")},
        "delta": number(format="%.2e"), "relative delta (%)": number(format="%.3f")})
    st.caption(f"{a.rule} rule, {a.steps_used} steps in the integral, {a.points_evaluated} path points evaluated; "
               f"baseline: {mv.BASELINES[ex.baseline_name]}.")
    verdict = completeness_verdict(a.relative_delta[0], ex.tolerance, a.rule, a.steps_used, settings.max_steps,
                                   nothing_to_attribute=a.nothing_to_attribute[0], nonfinite=a.nonfinite,
                                   message=a.message)
    getattr(st, verdict.level)(verdict.text)


@st.fragment
def view_misclassification(ex: mv.VisionExplanation, classifier, gt):
    st.subheader("6. Two labels side by side (Figure 6)")
    if len(ex.targets) < 2:
        st.info("Choose a second label in the form (e.g. the ground truth) to compare the two explanations "
                "from the same scan.")
        return
    polarity, clip, style = display_controls("v6")
    cols = st.columns(3)
    cols[0].image(ex.image, caption="Input", width=IMAGE_WIDTH)
    for t in range(2):
        tag = " (ground truth)" if ex.targets[t] == gt else (" (top prediction)" if ex.targets[t] == int(np.argmax(ex.probabilities)) else "")
        cols[t + 1].image(vv.visualize(ex.image, ex.attributions(t), polarity, clip, style),
                          caption=f"{ex.labels[t]}{tag}: softmax {ex.score(t):.4f}", width=IMAGE_WIDTH)
    if gt is not None:
        rank = int((ex.probabilities > ex.probabilities[gt]).sum()) + 1
        st.caption(f"Ground truth {class_label(classifier, gt)} is ranked {rank} by the network.")


@st.fragment
def view_ablation(ex: mv.VisionExplanation, classifier):
    st.subheader("7. Ablation check (Figure 1)")
    st.caption("Black out pixels (zero intensity) and classify again: if the prediction holds, those pixels did not matter.")
    c1, c2 = st.columns([1, 2])
    with c1:
        method = st.radio("Black out", ["top pixels by integrated gradients", "top pixels by gradient", "a rectangle"],
                          key="v7_method")
        h, w = ex.input.shape[-2:]
        if method == "a rectangle":
            xs = st.slider("x range", 0, int(w), (0, int(w) // 2), key="v7_x")
            ys = st.slider("y range", 0, int(h), (0, int(h) // 2), key="v7_y")
            mask = mv.rectangle_mask((h, w), xs[0], ys[0], xs[1], ys[1])
        else:
            percent = st.slider("Share of pixels (%)", 1, 50, 10, key="v7_percent")
            importance = (ex.pixel_importance(0, "positive") if "integrated" in method
                          else mv.pixel_importance(ex.gradient(0, 1.0), "abs"))
            mask = mv.top_fraction_mask(importance, percent / 100)
    result = mv.ablate(classifier, ex.input, mask, target=ex.targets[0])
    with c2:
        a, b = st.columns(2)
        a.image(ex.image, caption=f"Original: {classifier.categories[int(np.argmax(ex.probabilities))]} "
                                  f"{float(np.max(ex.probabilities)):.4f}", width=IMAGE_WIDTH)
        b.image(result.image, caption=f"Ablated ({100 * result.fraction:.1f}% of pixels): {result.top_label} "
                                      f"{result.top_probability:.4f}", width=IMAGE_WIDTH)
    st.write(f"Softmax of **{ex.labels[0]}**: {ex.score(0):.4f} -> {result.target_probability:.4f}; "
             f"new top prediction: **{result.top_label}** ({result.top_probability:.4f}).")


# --- page ---------------------------------------------------------------------------------------

def main():
    st.title("Vision")
    st.caption("Integrated gradients of an ImageNet classifier along the path from a baseline image to the photo.")
    engine = get_engine()
    classifier = choose_classifier()
    if classifier is None:
        return
    chosen = choose_image()
    if chosen is None:
        st.info("Pick a sample photo or upload one.")
        return
    data, name, gt, digest = chosen
    if not classifier.imagenet_classes:
        gt = None  # the sample photos' labels are ImageNet class indices: meaningless for other classes
    try:
        seen, notices = _look(classifier.key, digest, classifier, data)
    except mv.ImageError as exc:
        st.error(f"**{name}: cannot use this image.** {exc}")
        return
    for notice in notices:
        st.info(notice)
    top = classifier.top_k(torch.from_numpy(seen.probabilities).unsqueeze(0), 5)
    c1, c2 = st.columns([1, 2])
    c1.image(seen.image, caption=f"{name} as the network sees it ({classifier.crop_size} px)", width=IMAGE_WIDTH)
    with c2:
        st.markdown("**Top 5 (softmax)**" + (f" - ground truth: **{class_label(classifier, gt)}**" if gt is not None else ""))
        st.dataframe(vv.top_k_frame(top), hide_index=True)
    request = parameters_form(classifier, top, gt, digest)
    if request is None:
        return
    settings = scan_settings()
    st.markdown(f"**Baseline:** {mv.BASELINES[request['baseline']]}. **Scan:** {settings.rule} rule, "
                f"tolerance {100 * settings.tolerance:g}% (change on the Home page).")
    bar = st.empty()
    try:
        with bar.container():
            report = progress_reporter("Scanning the path")
            ex = mv.explain(engine, classifier, seen, request["targets"], request["baseline"], settings,
                            request["layer"] or None, progress=report)
    except (mv.VisionError, ValueError, KeyError, RuntimeError) as exc:
        st.error(f"The scan failed: {exc}")
        return
    bar.empty()
    view_attributions(ex)
    view_interior(ex)
    view_saturation(ex)
    view_layer(ex)
    view_completeness(ex, settings)
    view_misclassification(ex, classifier, gt)
    view_ablation(ex, classifier)


run_page(main)
