"""Vision: a run's misclassified photos, and what the classifier looks at when it is wrong.

Thin: a vision run of the runs folder (made with --targets both), the misclassified photos from the store's
listing (no maps), the overlaps of their two labels' maps (read once per run), a page of photos with both maps,
the confusion counts and the attribution outside human boxes. The analysis is families.vision.run_rows', the
pictures and tables dashboard.renderers.vision_runs'.
"""
from __future__ import annotations

import math
import pathlib

import pandas as pd
import streamlit as st

from runs import store
from families.vision import run_rows as vision_runs
from families.vision.classifiers import load_image
from dashboard.renderers import vision as vision_views
from dashboard.renderers import vision_runs as vision_runs_views
from dashboard.scaffold import run_page
from dashboard.session import choose_run

VISION_PAGE = "dashboard/pages/vision.py"
PHOTOS_PER_PAGE = 4
IMAGE_WIDTH = 240
NUMBER = st.column_config.NumberColumn(format="%.3f")


# --- the run's reading, cached per run (its folder and its shards' names and times) --------------------------

@st.cache_data(show_spinner="Reading the run's listing...", max_entries=8)
def _photos(folder: str, stamp: tuple) -> pd.DataFrame:
    return vision_runs.photo_table(store.listing(pathlib.Path(folder)))


@st.cache_data(show_spinner="Comparing the two labels' maps of every misclassified photo...", max_entries=8)
def _overlaps(folder: str, stamp: tuple) -> pd.Series:
    """The overlaps of the top-1 misclassified photos (a superset of the top-5 ones)."""
    wrong = vision_runs.misclassified(_photos(folder, stamp), "top-1")
    return vision_runs.overlaps(vision_runs.read_label_maps(pathlib.Path(folder), wrong.index))


@st.cache_data(show_spinner=False, max_entries=16)
def _maps(folder: str, stamp: tuple, item_indices: tuple) -> dict:
    return vision_runs.read_label_maps(pathlib.Path(folder), item_indices)


@st.cache_data(show_spinner="Measuring the attribution outside the boxes...", max_entries=8)
def _box_shares(folder: str, stamp: tuple, manifest: dict) -> pd.DataFrame:
    return vision_runs.read_box_shares(pathlib.Path(folder), manifest, _photos(folder, stamp))


# --- opening a photo on the Vision page -------------------------------------------------------------------

def open_on_vision_page(run: str, manifest: dict, item_index: int) -> None:
    """The Vision page with this photo chosen (and the run's architecture in its sidebar when it has one)."""
    st.session_state[vision_runs_views.OPENED_PHOTO_KEY] = {"run": run, "item_index": int(item_index)}
    st.session_state[vision_runs_views.SOURCE_KEY] = vision_runs_views.RUN_SOURCE
    arch = vision_runs.run_architecture(manifest)
    if arch:
        st.session_state["vision_arch"] = arch  # the sidebar's network (dashboard.session.choose_classifier)
    st.switch_page(VISION_PAGE)


# --- sections -----------------------------------------------------------------------------------------

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
                        help=f"Intersection over union of the top {100 * vision_runs.TOP_SHARE:g}% of {vision_runs.BLOCK}x{vision_runs.BLOCK}-pixel "
                             "blocks by positive "
                             "attribution of the predicted and the true label. Low: two objects, a ranking "
                             "problem; high: the same pixels read as another class, a recognition problem.")
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


def photo_listing(run: str, manifest: dict, shown: pd.DataFrame) -> None:
    event = st.dataframe(vision_runs_views.listing_frame(shown), hide_index=True, width="stretch", on_select="rerun",
                         selection_mode="single-row", key="vision_runs_table",
                         column_config={name: NUMBER for name in ("confidence", "truth's probability", "overlap",
                                                                  "completeness error")})
    st.caption("Click a row to open its photo on the Vision page.")
    if event.selection.rows:
        open_on_vision_page(run, manifest, shown.index[event.selection.rows[0]])


def gallery(run: str, folder: pathlib.Path, stamp: tuple, manifest: dict, shown: pd.DataFrame) -> None:
    """A page of photos, each with the predicted and the true label's maps."""
    pages = max(math.ceil(len(shown) / PHOTOS_PER_PAGE), 1)
    c1, c2 = st.columns([1, 2])
    page = c1.number_input(f"Page (of {pages})", 1, pages, key=f"vision_runs_page_{pages}")
    style = c2.radio("Maps", vision_views.STYLES, index=vision_views.STYLES.index("overlay"), horizontal=True,
                     key="vision_runs_style", help="Positive attribution (toward the label) on the photo as the "
                                                   "network saw it: a heat map, or its pixels scaled")
    photos = shown.iloc[(page - 1) * PHOTOS_PER_PAGE: page * PHOTOS_PER_PAGE]
    maps = _maps(str(folder), stamp, tuple(int(k) for k in photos.index))
    for k, photo in photos.iterrows():
        with st.container(border=True):
            st.markdown(vision_runs_views.photo_caption(photo))
            if k not in maps:
                st.warning(f"The run holds no maps of both labels for {photo.item_id}.")
                continue
            predicted, truth = maps[k]
            try:
                view = vision_runs.network_view(load_image(vision_runs.photo_path(manifest, photo.source)), predicted.shape[0])
            except OSError as exc:  # its text names the server's path
                st.warning(f"{photo.item_id} cannot be read ({exc.strerror}).")
                continue
            except ValueError as exc:  # an ImageError says what is wrong with the file
                st.warning(f"{photo.item_id} cannot be shown: {exc}")
                continue
            cols = st.columns(3)
            cols[0].image(view, caption=f"{photo.item_id} as the network saw it", width=IMAGE_WIDTH)
            cols[1].image(vision_runs_views.map_picture(view, predicted, style), width=IMAGE_WIDTH,
                          caption=f"Predicted: {vision_runs_views.class_text(photo.predicted, photo.predicted_name)}, "
                                  f"p = {photo.confidence:.3f}")
            cols[2].image(vision_runs_views.map_picture(view, truth, style), width=IMAGE_WIDTH,
                          caption=f"Truth: {vision_runs_views.class_text(photo.truth, photo.truth_name)}, "
                                  f"p = {photo.truth_probability:.3f}")
            if st.button("Open on the Vision page", key=f"vision_runs_open_{k}"):
                open_on_vision_page(run, manifest, k)


def boxes(folder: pathlib.Path, stamp: tuple, manifest: dict) -> None:
    st.subheader("Attribution outside the human boxes")
    shares = _box_shares(str(folder), stamp, manifest)
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


# --- page -----------------------------------------------------------------------------------------

def main():
    st.title("Vision: a run's misclassifications")
    st.caption("Which photos the classifier gets wrong, and what it looks at when it does: a dataset run of a "
               "labelled photo folder (`python -m runs.runner --family vision --targets both ...`) "
               "explains each photo's predicted and true label from one scan.")
    chosen = choose_run("vision", key="vision_runs_run")
    if chosen is None:
        return
    run, folder, manifest = chosen
    policy = manifest.get("job", {}).get("targets")
    if policy != "both":
        st.warning(f"The run {run} explains only the {policy} label of each photo (`--targets {policy}`): comparing "
                   "a misclassified photo's two labels needs a run made with `--targets both`.")
        return
    if manifest.get("status") != "complete":
        st.caption(f"The run is still going: {len(store.finished_shards(folder))} of {manifest.get('shards')} "
                   "shards are done and listed.")
    stamp = store.stamp(folder)
    photos = _photos(str(folder), stamp)
    if photos.empty:
        st.info(f"No photo of the run {run} has a ground truth: its folder needs a labels.csv (or boxes.csv).")
        return
    criterion = st.radio("Misclassified when", list(vision_runs.CRITERIA), format_func=vision_runs_views.CRITERION_LABELS.get,
                         horizontal=True, key="vision_runs_criterion")
    wrong = vision_runs.misclassified(photos, criterion).join(_overlaps(str(folder), stamp))
    st.markdown(f"**{len(wrong)} of {len(photos)} photos misclassified ({criterion})**")
    if wrong.empty:
        st.success("The classifier gets every photo of this run right under this criterion.")
    else:
        shown = choose_photos(wrong)
        st.markdown(f"{len(shown)} shown.")
        photo_listing(run, manifest, shown)
        gallery(run, folder, stamp, manifest, shown)
        st.subheader("Which true classes go to which predictions")
        st.dataframe(vision_runs_views.confusion_frame(vision_runs.confusion(shown)), hide_index=True)
    boxes(folder, stamp, manifest)


run_page(main)
