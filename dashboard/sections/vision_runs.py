"""The sections of the Vision runs page (dashboard/pages/vision_runs.py): the filters of the misclassified photos,
their listing, a gallery of photos with both labels' maps, and the attribution outside human boxes. The page reads
the run and hands in what they show."""
from __future__ import annotations

import math
from typing import Callable

import pandas as pd
import streamlit as st

from dashboard.renderers import vision_runs as vision_runs_views
from families.vision import run_rows as vision_runs
from families.vision.images import load_image

PHOTOS_PER_PAGE = 4
IMAGE_WIDTH = 240
NUMBER = st.column_config.NumberColumn(format="%.3f")
NUMBER_TEXT = st.column_config.TextColumn(alignment="right")


def choose_photos(wrong: pd.DataFrame) -> pd.DataFrame:
    """The misclassified photos the user filters and sorts."""
    c1, c2 = st.columns(2)
    true_classes = c1.multiselect("True class", sorted(set(wrong.truth_name)), key="vision_runs_truth")
    predicted_classes = c2.multiselect("Predicted class", sorted(set(wrong.predicted_name)),
                                       key="vision_runs_predicted")
    c3, c4, c5, c6 = st.columns(4)
    confidence = c3.slider("Confidence (the predicted class's probability)", 0.0, 1.0, (0.0, 1.0), 0.01,
                           key="vision_runs_confidence")
    overlap = c4.slider("Overlap of the two maps", 0.0, 1.0, (0.0, 1.0), 0.01, key="vision_runs_overlap",
                        help=f"Intersection over union of the top {100 * vision_runs.TOP_SHARE:g}% of "
                             f"{vision_runs.BLOCK}x{vision_runs.BLOCK}-pixel blocks by positive attribution of the "
                             "predicted and the true label. Low: two objects, a ranking problem; high: the same "
                             "pixels read as another class, a recognition problem.")
    if wrong.relative_delta.notna().any():
        max_delta = c5.number_input("Completeness error at most", min_value=0.0, value=None, format="%.3f",
                                    placeholder="no limit", key="vision_runs_delta",
                                    help="|sum of attributions - score difference| relative to the difference, "
                                         "the larger of the photo's two labels'")
    else:
        max_delta = None
        c5.caption("The run's method has no completeness error.")
    sort = c6.selectbox("Sort by", list(vision_runs.SORTS), key="vision_runs_sort")
    chosen = vision_runs.filter_photos(wrong, true_classes, predicted_classes, confidence,
                                       None if overlap == (0.0, 1.0) else overlap, max_delta)
    return vision_runs.sort_photos(chosen, sort)


def photo_listing(shown: pd.DataFrame, open_photo: Callable[[int], None], tolerance: float) -> None:
    """The photos shown, one row each; a click on a row opens its photo (open_photo(item_index))."""
    event = st.dataframe(vision_runs_views.listing_frame(shown, tolerance), hide_index=True, width="stretch",
                         on_select="rerun",
                         selection_mode="single-row", key="vision_runs_table",
                         column_config={**{name: NUMBER for name in ("confidence", "truth's probability")},
                                        # numbers as text, "n/a" where missing: aligned as numbers
                                        **{name: NUMBER_TEXT for name in ("overlap", "completeness error")}})
    st.caption(f"Click a row to open its photo on the Vision page. Adds up: the photo's attributions are within the "
               f"run's {tolerance * 100:g}% completeness tolerance (NO: they cannot be trusted).")
    if event.selection.rows:
        open_photo(shown.index[event.selection.rows[0]])


def gallery(shown: pd.DataFrame, manifest: dict, read_maps: Callable[[tuple], dict],
            open_photo: Callable[[int], None]) -> None:
    """A page of photos, each with the predicted and the true label's maps (read_maps(item indices), as
    families.vision.run_rows.label_maps gives them) and a button that opens it (open_photo(item_index))."""
    pages = max(math.ceil(len(shown) / PHOTOS_PER_PAGE), 1)
    c1, c2 = st.columns([1, 2])
    page = c1.number_input(f"Page (of {pages})", 1, pages, key=f"vision_runs_page_{pages}")
    view = c2.radio("Maps", list(vision_runs_views.MAP_VIEWS), horizontal=True, key="vision_runs_view",
                    help="On the photo as the network saw it: signed (red raises the label's score, blue lowers "
                         "it), or the positive part (the attribution toward the label, which the overlap compares) "
                         "as a heat map or its pixels scaled")
    photos = shown.iloc[(page - 1) * PHOTOS_PER_PAGE: page * PHOTOS_PER_PAGE]
    maps = read_maps(tuple(int(k) for k in photos.index))
    for k, photo in photos.iterrows():
        with st.container(border=True):
            st.markdown(vision_runs_views.photo_caption(photo))
            if k not in maps:
                st.warning(f"The run holds no maps of both labels for {photo.item_id}.")
                continue
            predicted, truth = maps[k]
            try:
                image = load_image(vision_runs.photo_path(manifest, photo.source))
                photo_view = vision_runs.network_view(image, predicted.shape[0])
            except OSError as exc:  # its text names the server's path
                st.warning(f"{photo.item_id} cannot be read ({exc.strerror}).")
                continue
            except ValueError as exc:  # an ImageError says what is wrong with the file
                st.warning(f"{photo.item_id} cannot be shown: {exc}")
                continue
            cols = st.columns(3)
            cols[0].image(photo_view, caption=f"{photo.item_id} as the network saw it", width=IMAGE_WIDTH)
            cols[1].image(vision_runs_views.map_picture(photo_view, predicted, view), width=IMAGE_WIDTH,
                          caption=f"Predicted: {vision_runs_views.class_text(photo.predicted, photo.predicted_name)}, "
                                  f"p = {photo.confidence:.3f}")
            cols[2].image(vision_runs_views.map_picture(photo_view, truth, view), width=IMAGE_WIDTH,
                          caption=f"Truth: {vision_runs_views.class_text(photo.truth, photo.truth_name)}, "
                                  f"p = {photo.truth_probability:.3f}")
            if st.button("Open on the Vision page", key=f"vision_runs_open_{k}"):
                open_photo(k)


def boxes(shares: pd.DataFrame) -> None:
    """The attribution outside the human boxes (families.vision.run_rows.box_shares), right and wrong."""
    st.subheader("Attribution outside the human boxes")
    if shares.empty:
        st.info(f"None of this run's photos has a human box: boxes are matched by file name with the boxes.csv "
                f"of the run's photo folder and of the data folder's {vision_runs.BOXES_FOLDER}.")
        return
    st.caption("The share of each label's positive attribution that falls outside the photo's boxes (mapped "
               "through the resize and centre crop), for photos predicted right and wrong (top-1).")
    st.dataframe(vision_runs_views.box_summary_frame(vision_runs.box_summary(shares)), hide_index=True,
                 column_config={"outside the box: predicted label": NUMBER, "outside the box: true label": NUMBER})
    with st.expander(f"Per photo ({len(shares)} with boxes)"):
        st.dataframe(shares, hide_index=True)
