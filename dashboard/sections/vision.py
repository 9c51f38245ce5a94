"""The Vision page's sections, each a Streamlit fragment (its controls rerun only itself): the chosen method's map
beside the gradient (Figure 4), interior gradients (Figure 3), saturation (Figures 2 and 12), completeness,
two labels side by side (Figure 6), the ablation check (Figure 1) and methods side by side. Interior gradients and
saturation exist only for the straight-line scan of integrated gradients."""
from __future__ import annotations

import re

import numpy as np
import streamlit as st

from dashboard.renderers import colours, method_comparison
from dashboard.renderers import vision as vision_views
from dashboard.renderers.markdown import escape_markdown
from dashboard.scaffold import completeness_panel, straight_line
from families.contract import Explanation
from families.vision.ablation import ablate, rectangle_mask
from families.vision.baselines import BASELINES
from families.vision.importance import pixel_importance, top_fraction_mask

IMAGE_WIDTH = 260


def class_label(classifier, index: int) -> str:
    return f"{classifier.categories[index]} ({index})"


def method_label(ex: Explanation) -> str:
    return method_comparison.chosen_method(ex.settings).label


def has_gradient(ex: Explanation) -> bool:
    """Whether the method kept the gradient at the image (alpha = 1)."""
    return 1.0 in ex.attribution.interior_gradients


def explained_scores(ex: Explanation) -> str:
    """What F is on the maps, label by label, for the colours' caption (Markdown: class names are escaped)."""
    return "; ".join(escape_markdown(ex.explained_score(t)) for t in range(len(ex.targets)))


def display_controls(key: str, explained: str):
    """The maps' polarity, clip percentile and style; the signed polarity (the default) has a single style.
    `explained`: what F is (explained_scores)."""
    c1, c2, c3 = st.columns(3)
    polarity = c1.radio("Polarity", vision_views.POLARITIES, horizontal=True, key=f"{key}_polarity",
                        help="signed: sum over channels, red raises the label's score and blue lowers it; "
                             "absolute: sum over channels of |value| (the paper's Eq. 1); positive/negative: the "
                             "parts of the signed sum")
    clip = c2.slider("Clip at percentile", 90.0, 100.0, 99.0, 0.5, key=f"{key}_clip",
                     help="Values (|values| when signed) above this percentile saturate, so a few extreme pixels do "
                          "not hide the rest")
    style = c3.radio("Style", vision_views.STYLES, horizontal=True, key=f"{key}_style",
                     disabled=polarity == "signed",
                     help="For absolute, positive and negative: intensity, the paper's pixels scaled by importance; "
                          "overlay, a heat map. The signed map is always its colours over the greyed photo.")
    if polarity == "signed":
        st.caption(colours.caption(explained))
    return polarity, clip, style


@st.fragment
def view_attributions(ex: Explanation):
    label = method_label(ex)
    st.subheader(f"1. {label} beside the gradient at the image (Figure 4)")
    polarity, clip, style = display_controls("v1", explained_scores(ex))
    attributions = vision_views.explained_map(ex.image, ex.attributions(0), polarity, clip, style)
    cols = st.columns(3)
    cols[0].image(ex.image, caption=f"Input: {ex.labels[0]}, {vision_views.score_text(ex.score(0), ex.attribution)}",
                  width=IMAGE_WIDTH)
    cols[1].image(attributions, caption=label, width=IMAGE_WIDTH)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "_", ex.settings.method)
    d1, d2, d3 = st.columns(3)
    d1.download_button("Attributions (.npy, [targets, 3, H, W])", vision_views.npy_bytes(ex.all_attributions()),
                       file_name=f"{stem}_{re.sub(r'[^A-Za-z0-9_-]+', '_', ex.labels[0])}.npy",
                       mime="application/octet-stream")
    d2.download_button(f"{label} (.png)", vision_views.png_bytes(attributions), file_name=f"{stem}.png",
                       mime="image/png")
    if has_gradient(ex):
        grad = vision_views.explained_map(ex.image, ex.gradient(0, 1.0), polarity, clip, style)
        cols[2].image(grad, caption="Gradient at the image (alpha = 1)", width=IMAGE_WIDTH)
        d3.download_button("Gradient (.png)", vision_views.png_bytes(grad), file_name="gradient.png", mime="image/png")
    else:
        cols[2].caption(f"{label} does not evaluate the gradient at the image itself.")


@st.fragment
def view_interior(ex: Explanation):
    st.subheader("2. Interior gradients (Figure 3)")
    st.caption("Gradients at the scaled images alpha * image (toward the baseline). Each picture shows only the "
               "relative distribution over pixels; the chart shows their magnitude.")
    polarity, clip, style = display_controls("v2", explained_scores(ex))
    t = 0
    if len(ex.targets) > 1:
        t = st.radio("Label", range(len(ex.targets)), format_func=lambda i: ex.labels[i], horizontal=True, key="v2_t")
    alphas = ex.probe_alphas
    panels = vision_views.interior_panels(ex.image, {a: ex.gradient(t, a) for a in alphas}, polarity, clip, style)
    grid = vision_views.image_grid([p for _, p in panels], [f"alpha = {a:g}" for a, _ in panels], columns=5)
    st.image(grid, caption="Interior gradients, alpha = 0.02 ... 1.0", width="stretch")
    c1, c2 = st.columns([1, 1])
    with c1:
        alpha = st.select_slider("alpha", options=alphas, value=alphas[0], format_func=lambda a: f"{a:g}",
                                 key="v2_alpha")
        st.image(dict(panels)[alpha], caption=f"Interior gradient at alpha = {alpha:g}", width=IMAGE_WIDTH)
    with c2:
        a = ex.attribution
        st.altair_chart(vision_views.mean_gradient_chart(a.alphas, a.grad_abs_mean[:, 0, t], ex.labels[t], alpha),
                        width="stretch")
    st.download_button("Interior gradients grid (.png)", vision_views.png_bytes(grid),
                       file_name="interior_gradients.png", mime="image/png")


def view_saturation(ex: Explanation):
    st.subheader("3. Saturation (Figure 2)")
    a = ex.attribution
    st.altair_chart(vision_views.saturation_chart(a.alphas, a.scores[:, 0, :], a.raw_scores[:, 0, :], ex.labels),
                    width="stretch")
    st.caption("The score along alpha * image (toward the baseline). A curve that flattens early means the gradient at "
               "the image (alpha = 1) sees little of what raised the score."
               + (" With a contrast both panels show F, the logits (a contrast's difference of two)."
                  if ex.contrasted else ""))


def view_layer(ex: Explanation):
    st.subheader(f"4. Saturation inside the network: layer {ex.layer_name} (Figure 12)")
    a = ex.attribution
    if a.layer_l2 is None:
        st.info("No layer was observed.")
        return
    st.altair_chart(vision_views.layer_distance_chart(a.alphas, a.layer_l2[:, 0], a.layer_cosine[:, 0], ex.layer_name),
                    width="stretch")


def view_straight_line(ex: Explanation) -> None:
    """Sections 2 to 4 (interior gradients, saturation, the layer), which only the straight-line scan gives."""
    if straight_line(ex.settings, "Interior gradients, saturation and the layer distances (sections 2 to 4)"):
        view_interior(ex)
        view_saturation(ex)
        view_layer(ex)


def view_completeness(ex: Explanation):
    completeness_panel(ex, title="5. Completeness (Proposition 1)",
                       note=vision_views.baseline_note(ex.attribution.completeness, BASELINES[ex.baseline_name]))


@st.fragment
def view_misclassification(ex: Explanation, classifier, gt):
    contrast = ex.rather_than[0] is not None
    st.subheader("6. Two labels and their contrast side by side (Figure 6)" if contrast
                 else "6. Two labels side by side (Figure 6)")
    if len(ex.targets) < 2:
        st.info("Choose a second label in the form (e.g. the ground truth) to compare the two explanations "
                "from the same scan.")
        return
    polarity, clip, style = display_controls("v6", explained_scores(ex))
    shown = 3 if contrast else 2  # with a contrast: the contrast, then its two labels alone
    cols = st.columns(shown + 1)
    cols[0].image(ex.image, caption="Input", width=IMAGE_WIDTH)
    for t in range(shown):
        tag = ("" if ex.rather_than[t] is not None else " (ground truth)" if ex.targets[t] == gt
               else (" (top prediction)" if ex.targets[t] == int(np.argmax(ex.probabilities)) else ""))
        score = (f"logit difference {float(ex.attribution.score_input[0, t]):.3f}" if ex.rather_than[t] is not None
                 else vision_views.score_text(ex.score(t), ex.attribution, t))
        cols[t + 1].image(vision_views.explained_map(ex.image, ex.attributions(t), polarity, clip, style),
                          caption=f"{ex.labels[t]}{tag}: {score}", width=IMAGE_WIDTH)
    if gt is not None:
        rank = int((ex.probabilities > ex.probabilities[gt]).sum()) + 1
        st.caption(f"Ground truth {class_label(classifier, gt)} is ranked {rank} by the network.")


@st.fragment
def view_ablation(ex: Explanation, classifier):
    st.subheader("7. Ablation check (Figure 1)")
    st.caption("Black out pixels (zero intensity) and classify again: "
               "if the prediction holds, those pixels did not matter.")
    c1, c2 = st.columns([1, 2])
    with c1:
        by_method = f"top pixels by {method_label(ex)}"
        choices = [by_method, *(["top pixels by gradient"] if has_gradient(ex) else []), "a rectangle"]
        method = st.radio("Black out", choices, key="v7_method")
        h, w = ex.input.shape[-2:]
        if method == "a rectangle":
            xs = st.slider("x range", 0, int(w), (0, int(w) // 2), key="v7_x")
            ys = st.slider("y range", 0, int(h), (0, int(h) // 2), key="v7_y")
            mask = rectangle_mask((h, w), xs[0], ys[0], xs[1], ys[1])
        else:
            percent = st.slider("Share of pixels (%)", 1, 50, 10, key="v7_percent")
            importance = (ex.pixel_importance(0, "positive") if method == by_method
                          else pixel_importance(ex.gradient(0, 1.0), "abs"))
            mask = top_fraction_mask(importance, percent / 100)
    result = ablate(classifier, ex.input, mask, target=ex.targets[0])
    with c2:
        a, b = st.columns(2)
        a.image(ex.image, caption=f"Original: {classifier.categories[int(np.argmax(ex.probabilities))]} "
                                  f"{float(np.max(ex.probabilities)):.4f}", width=IMAGE_WIDTH)
        b.image(result.image, caption=f"Ablated ({100 * result.fraction:.1f}% of pixels): {result.top_label} "
                                      f"{result.top_probability:.4f}", width=IMAGE_WIDTH)
    st.write(f"Softmax of **{ex.class_names[ex.targets[0]]}**: {ex.score(0):.4f} -> {result.target_probability:.4f}; "
             f"new top prediction: **{result.top_label}** ({result.top_probability:.4f}).")


def maps_side_by_side(runs: list[method_comparison.MethodRun]) -> None:
    """The compared methods' maps of the first label in columns, each with its completeness."""
    polarity, clip, style = display_controls("v8", explained_scores(runs[0].explanation))
    for column, run in zip(st.columns(len(runs)), runs):
        ex = run.explanation
        column.image(vision_views.explained_map(ex.image, ex.attributions(0), polarity, clip, style), width="stretch",
                     caption=f"{run.label}; {method_comparison.completeness_text(ex)}")
