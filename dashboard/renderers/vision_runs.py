"""Tables, captions and pictures of the Vision runs page (a run's misclassified photos), as pure functions."""
from __future__ import annotations

import numpy as np
import pandas as pd
from PIL import Image

from dashboard.renderers import vision as vision_views
from dashboard.renderers.completeness import with_adds_up
from families.vision.run_rows import BLOCK, TOP_SHARE

# the session key under which the runs page hands the Vision page a photo: {"run": name, "item_index": k,
# CONTRAST_TRUTH: True}, the last to preselect the contrast "predicted rather than true" of a misclassified photo
OPENED_PHOTO_KEY, CONTRAST_TRUTH = "vision_run_photo", "predicted_rather_than_truth"
SOURCE_KEY, RUN_SOURCE = "vision_source", "From a run"  # the Vision page's choice of image source, and this one
CRITERION_LABELS = {"top-1": "top-1 (the truth is not ranked first)",
                    "top-5": "top-5 (the truth is not among the first five; Section 2.6)"}
MAP_CLIP = 99.0  # percentile at which a map saturates, as the Vision page's default
# the gallery's views of a stored map: (polarity, style) of dashboard.renderers.vision; the signed view first, the
# positive part, which the overlap ranks, after it
MAP_VIEWS = {"signed": ("signed", "intensity"), "positive part, heat map": ("positive", "overlay"),
             "positive part, pixels scaled": ("positive", "intensity")}


def class_text(index: int, name: str) -> str:
    return f"{name} ({int(index)})"


def listing_frame(photos: pd.DataFrame, tolerance: float) -> pd.DataFrame:
    """The misclassified photos as the page lists them, one row each, in their order, each with whether its
    attributions add up within the run's completeness tolerance."""
    return with_adds_up(pd.DataFrame({
        "photo": photos.item_id.to_numpy(),
        "true class": [class_text(k, n) for k, n in zip(photos.truth, photos.truth_name)],
        "predicted": [class_text(k, n) for k, n in zip(photos.predicted, photos.predicted_name)],
        "confidence": photos.confidence.to_numpy(),
        "truth's rank": photos.truth_rank.to_numpy(),
        "truth's probability": photos.truth_probability.to_numpy(),
        # text: a photo can lack either (neither map positive; a method without completeness)
        "overlap": vision_views.numbers_text(photos.overlap),
        "completeness error": vision_views.numbers_text(photos.relative_delta),
    }), photos.relative_delta, tolerance)


def confusion_frame(counts: pd.DataFrame) -> pd.DataFrame:
    """families.vision.run_rows.confusion as a table."""
    return pd.DataFrame({
        "true class": [class_text(k, n) for k, n in zip(counts.truth, counts.truth_name)],
        "predicted as": [class_text(k, n) for k, n in zip(counts.predicted, counts.predicted_name)],
        "photos": counts.photos.to_numpy(),
    })


def box_summary_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """families.vision.run_rows.box_summary as a table."""
    return pd.DataFrame({
        "prediction (top-1)": summary.prediction.to_numpy(),
        "photos": summary.photos.to_numpy(),
        "outside the box: predicted label": summary.outside_predicted.to_numpy(),
        "outside the box: true label": summary.outside_truth.to_numpy(),
    })


def overlap_text(value: float) -> str:
    if np.isnan(value):
        return "overlap: none (neither map has positive attribution)"
    return f"overlap {value:.2f} (IoU of the top {100 * TOP_SHARE:g}% of {BLOCK}x{BLOCK}-pixel blocks)"


def photo_caption(photo) -> str:
    """One line under a misclassified photo: its id, rank of the truth, confidence and overlap."""
    return (f"{photo.item_id}: truth ranked {int(photo.truth_rank)}, confidence {photo.confidence:.3f}; "
            f"{overlap_text(photo.overlap)}")


def map_picture(image: Image.Image, scores: np.ndarray, view: str = "signed") -> Image.Image:
    """A stored pixel map [H, W] (colour channels summed) over the photo as the network saw it, in one of
    MAP_VIEWS, with the legend of its colours below it."""
    polarity, style = MAP_VIEWS[view]
    return vision_views.explained_map(image, np.asarray(scores)[None], polarity, MAP_CLIP, style)
