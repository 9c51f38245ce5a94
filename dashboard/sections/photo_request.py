"""The Vision page's request for a photo: the labels to explain, the baseline and the layer, chosen in a form; and the
sample photo and the request as they last in the URL (dashboard.url_state), so that a reload or a copied link
explains the same photo the same way."""
from __future__ import annotations

from typing import Collection

import streamlit as st

from dashboard.renderers.markdown import escape_markdown
from dashboard.renderers.vision_runs import CONTRAST_TRUTH, OPENED_PHOTO_KEY, RUN_SOURCE, SOURCE_KEY
from dashboard.sections.vision import class_label
from dashboard.url_state import among, indices, link, linked, settings_in_url, whole_number
from families.vision.baselines import BASELINES
from families.vision.family import FAMILY
from ig_core import Contrast

REQUEST_KEY = "vision_request"
SAMPLE_SOURCE, SAMPLE_KEY = "Sample photo", "vision_sample"  # the photo's source, and the sample photo's box
DEFAULT_BASELINE = next(iter(BASELINES))
REQUEST_PARAMETERS = ("targets", "rather_than", "baseline", "layer")
NO_LABEL = -1  # the label boxes' "none"


def photo_from_link(samples: Collection[str]) -> None:
    """Before the photo's widgets: the scan settings and the sample photo that the URL which opened the page names
    become the ones chosen."""
    settings_in_url(FAMILY.name)
    photo = linked(FAMILY.name, photo=among(samples, "one of the sample photos")).get("photo")
    if photo is not None:
        st.session_state.update({SOURCE_KEY: SAMPLE_SOURCE, SAMPLE_KEY: photo})


def parameters_form(classifier, top, truth, digest: str) -> dict | None:
    """The form for the labels, the baseline and the layer, showing the request for this photo and model: that
    request (a dict) or None. The request is the one the form sent last, or the one the URL that opened the page
    names; a sample photo's request is written into the URL."""
    count, top1 = len(classifier.categories), top[0][0]
    layers = classifier.layer_names()
    _request_from_link(classifier, digest, layers)
    request = _request_for(classifier, digest)
    if request:
        first, second = request["targets"][0], [*request["targets"][1:], NO_LABEL][0]
        baseline, layer, other = request["baseline"], request["layer"], request.get("rather_than")
    else:
        first, baseline, layer = top1, DEFAULT_BASELINE, layers[-1] if layers else None
        other = preselected_contrast(top1, truth)
        second = truth if truth is not None and truth != top1 else (top[1][0] if len(top) > 1 else top1)
    with st.form("vision_form"):
        c1, c2 = st.columns(2)
        target = c1.selectbox("Explain the label", range(count), index=first,
                              format_func=lambda i: class_label(classifier, i), help="Default: the top prediction.")
        compare = c2.selectbox("Compare with a second label (same scan)", [NO_LABEL, *range(count)],
                               index=second + 1, format_func=lambda i: "none" if i < 0 else class_label(classifier, i)
                               + (" - ground truth" if i == truth else ""),
                               help="E.g. the ground truth of a misclassified image (Figure 6).")
        rather_than = c1.selectbox("... rather than (a contrast)", [NO_LABEL, *range(count)],
                                   index=NO_LABEL + 1 if other is None else other + 1,
                                   format_func=lambda i: "none" if i < 0 else class_label(classifier, i),
                                   help="Explain the difference of the two labels' logits: which pixels make the "
                                        "network say the first rather than this one (all labels are then explained "
                                        "on the logits).")
        c3, c4 = st.columns(2)
        baseline = c3.selectbox("Baseline", list(BASELINES), index=list(BASELINES).index(baseline),
                                format_func=lambda b: f"{b}: {BASELINES[b]}")
        layer = c4.selectbox("Intermediate layer (Figure 12)", layers, index=layers.index(layer) if layers else 0)
        submitted = st.form_submit_button("Explain", type="primary")
    if submitted:
        targets = [int(target)] + ([int(compare)] if compare >= 0 and compare != target else [])
        if rather_than == target:
            st.warning("A label rather than itself explains nothing: the label is explained on its own.")
        rather_than = int(rather_than) if rather_than not in (NO_LABEL, target) else None
        request = dict(digest=digest, model=classifier.key, targets=targets, rather_than=rather_than,
                       baseline=baseline, layer=layer)
        st.session_state[REQUEST_KEY] = request
    linkable = request if st.session_state.get(SOURCE_KEY) == SAMPLE_SOURCE else None  # a link names sample photos
    link(**{name: linkable.get(name) if linkable else None for name in REQUEST_PARAMETERS})
    if request and request.get("rather_than") is not None:
        contrast_caption(classifier, request)
    return request


def preselected_contrast(top1: int, truth: int | None) -> int | None:
    """The "rather than" label a new request starts with: the truth of a photo the runs page opened as misclassified
    (predicted rather than true), where this page's model gets it wrong too; none otherwise."""
    opened = st.session_state.get(OPENED_PHOTO_KEY) or {}
    from_run = st.session_state.get(SOURCE_KEY) == RUN_SOURCE and opened.get(CONTRAST_TRUTH)
    return truth if from_run and truth is not None and truth != top1 else None


def contrast_caption(classifier, request: dict) -> None:
    """What F is for a contrast, and why it is explained on the logits."""
    name, other = (escape_markdown(classifier.categories[i]) for i in (request["targets"][0], request["rather_than"]))
    st.caption(f"F: logit of {name} minus logit of {other}. A contrast is explained on the logits, where a difference "
               "of two scores is a difference of the network's evidence; a difference of softmax probabilities would "
               "also move with every other class. Every label of this scan is explained on its logit.")


def explained_targets(request: dict) -> list[int | Contrast]:
    """The request's labels as the engine takes them. Where a "rather than" label is chosen: the contrast first, then
    its two labels alone (one scan: the misclassification view shows the three maps side by side), then the second
    label when it is another."""
    first, *others = request["targets"]
    other = request.get("rather_than")
    if other is None:
        return [first, *others]
    return [Contrast(first, other), first, other, *(label for label in others if label not in (first, other))]


def _request_from_link(classifier, digest: str, layers: list[str]) -> None:
    """The request that the URL which opened the page names, for this photo and model: its labels, with the form's
    defaults for a baseline or a layer it does not name."""
    count = len(classifier.categories)
    chosen = linked(FAMILY.name, targets=indices(count, 2), rather_than=whole_number(0, count - 1),
                    baseline=among(BASELINES, "one of the baselines"), layer=among(layers, "one of the model's layers"))
    if "targets" in chosen:
        other = chosen.get("rather_than")
        st.session_state[REQUEST_KEY] = dict(digest=digest, model=classifier.key, targets=chosen["targets"],
                                             rather_than=other if other != chosen["targets"][0] else None,
                                             baseline=chosen.get("baseline", DEFAULT_BASELINE),
                                             layer=chosen.get("layer", layers[-1] if layers else None))


def _request_for(classifier, digest: str) -> dict | None:
    request = st.session_state.get(REQUEST_KEY)
    return request if request and request["digest"] == digest and request["model"] == classifier.key else None
