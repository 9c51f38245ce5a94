"""The Vision page's request for a photo: the labels to explain, the baseline and the layer, chosen in a form; and the
sample photo and the request as they last in the URL (dashboard.url_state), so that a reload or a copied link
explains the same photo the same way."""
from __future__ import annotations

from typing import Collection

import streamlit as st

from dashboard.renderers.vision_runs import SOURCE_KEY
from dashboard.sections.vision import class_label
from dashboard.url_state import among, indices, link, linked, settings_in_url
from families.vision.baselines import BASELINES
from families.vision.family import FAMILY

REQUEST_KEY = "vision_request"
SAMPLE_SOURCE, SAMPLE_KEY = "Sample photo", "vision_sample"  # the photo's source, and the sample photo's box
DEFAULT_BASELINE = next(iter(BASELINES))
REQUEST_PARAMETERS = ("targets", "baseline", "layer")


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
        first, second = request["targets"][0], [*request["targets"][1:], -1][0]
        baseline, layer = request["baseline"], request["layer"]
    else:
        first, baseline, layer = top1, DEFAULT_BASELINE, layers[-1] if layers else None
        second = truth if truth is not None and truth != top1 else (top[1][0] if len(top) > 1 else top1)
    with st.form("vision_form"):
        c1, c2 = st.columns(2)
        target = c1.selectbox("Explain the label", range(count), index=first,
                              format_func=lambda i: class_label(classifier, i), help="Default: the top prediction.")
        compare = c2.selectbox("Compare with a second label (same scan)", [-1, *range(count)], index=second + 1,
                               format_func=lambda i: "none" if i < 0 else class_label(classifier, i) +
                               (" - ground truth" if i == truth else ""),
                               help="E.g. the ground truth of a misclassified image (Figure 6).")
        c3, c4 = st.columns(2)
        baseline = c3.selectbox("Baseline", list(BASELINES), index=list(BASELINES).index(baseline),
                                format_func=lambda b: f"{b}: {BASELINES[b]}")
        layer = c4.selectbox("Intermediate layer (Figure 12)", layers, index=layers.index(layer) if layers else 0)
        submitted = st.form_submit_button("Explain", type="primary")
    if submitted:
        targets = [int(target)] + ([int(compare)] if compare >= 0 and compare != target else [])
        request = dict(digest=digest, model=classifier.key, targets=targets, baseline=baseline, layer=layer)
        st.session_state[REQUEST_KEY] = request
    linkable = request if st.session_state.get(SOURCE_KEY) == SAMPLE_SOURCE else None  # a link names sample photos
    link(**{name: linkable[name] if linkable else None for name in REQUEST_PARAMETERS})
    return request


def _request_from_link(classifier, digest: str, layers: list[str]) -> None:
    """The request that the URL which opened the page names, for this photo and model: its labels, with the form's
    defaults for a baseline or a layer it does not name."""
    chosen = linked(FAMILY.name, targets=indices(len(classifier.categories), 2),
                    baseline=among(BASELINES, "one of the baselines"), layer=among(layers, "one of the model's layers"))
    if "targets" in chosen:
        st.session_state[REQUEST_KEY] = dict(digest=digest, model=classifier.key, targets=chosen["targets"],
                                             baseline=chosen.get("baseline", DEFAULT_BASELINE),
                                             layer=chosen.get("layer", layers[-1] if layers else None))


def _request_for(classifier, digest: str) -> dict | None:
    request = st.session_state.get(REQUEST_KEY)
    return request if request and request["digest"] == digest and request["model"] == classifier.key else None
