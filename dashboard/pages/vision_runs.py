"""Vision: a run's misclassified photos, and what the classifier looks at when it is wrong.

Thin: a vision run of the runs folder (made with --targets both), the misclassified photos from the store's
listing (no maps), the overlaps of their two labels' maps (read once per run), then the sections of
dashboard/sections/vision_runs.py: a page of photos with both maps, the confusion counts and the attribution
outside human boxes. The analysis is families.vision.run_rows', the pictures and tables
dashboard.renderers.vision_runs'.
"""
from __future__ import annotations

import functools
import pathlib

import pandas as pd
import streamlit as st

from dashboard.renderers import vision_runs as vision_runs_views
from dashboard.scaffold import run_page
from dashboard.sections.vision_model_choice import select_in_sidebar
from dashboard.sections.vision_runs import boxes, choose_photos, gallery, photo_listing
from dashboard.session import choose_run
from families.contract import FamilyError
from families.vision import run_rows as vision_runs
from families.vision.family import FAMILY
from runs import completeness, store

VISION_PAGE = "dashboard/pages/vision.py"


# --- the run's reading, cached per run (its folder and its shards' names and times) --------------------------

@st.cache_data(show_spinner="Reading the run's listing...", max_entries=8)
def _photos(folder: str, stamp: tuple) -> pd.DataFrame:
    return vision_runs.photo_table(store.listing(pathlib.Path(folder)))


def read_maps(folder: pathlib.Path, item_indices) -> dict:
    """The two labels' maps of some photos, read from the shards that hold them."""
    indices = [int(k) for k in item_indices]
    return vision_runs.label_maps(store.item_rows(folder, indices), store.pixel_map) if indices else {}


@st.cache_data(show_spinner=False, max_entries=16)
def _maps(folder: str, stamp: tuple, item_indices: tuple) -> dict:
    return read_maps(pathlib.Path(folder), item_indices)


@st.cache_data(show_spinner="Comparing the two labels' maps of every misclassified photo...", max_entries=8)
def _overlaps(folder: str, stamp: tuple) -> pd.Series:
    """The overlaps of the top-1 misclassified photos (a superset of the top-5 ones); their maps are not kept."""
    wrong = vision_runs.misclassified(_photos(folder, stamp), "top-1")
    return vision_runs.overlaps(read_maps(pathlib.Path(folder), wrong.index))


@st.cache_data(show_spinner="Measuring the attribution outside the boxes...", max_entries=8)
def _box_shares(folder: str, stamp: tuple, manifest: dict) -> pd.DataFrame:
    """The shares of attribution outside the boxes of the run's photos that have boxes."""
    found = vision_runs.boxes_by_file_name(vision_runs.box_folders(manifest))
    boxed = vision_runs.boxed_photos(_photos(folder, stamp), found)
    return vision_runs.box_shares(boxed, read_maps(pathlib.Path(folder), boxed.index), found,
                                  vision_runs.photo_sizes(manifest, boxed))


def open_on_vision_page(run: str, manifest: dict, item_index: int) -> None:
    """The Vision page with this misclassified photo chosen, its contrast "predicted rather than true" preselected,
    and the run's model in its sidebar where the sidebar offers it."""
    st.session_state[vision_runs_views.OPENED_PHOTO_KEY] = {"run": run, "item_index": int(item_index),
                                                            vision_runs_views.CONTRAST_TRUTH: True}
    st.session_state[vision_runs_views.SOURCE_KEY] = vision_runs_views.RUN_SOURCE
    try:
        select_in_sidebar(FAMILY.source_named(manifest["job"].get("model")))
    except FamilyError:
        pass  # the run's model is no longer here: the sidebar keeps its choice
    st.switch_page(VISION_PAGE)


def main():
    st.title("Vision: a run's misclassifications")
    st.caption("Which photos the classifier gets wrong, and what it looks at when it does: a dataset run of a "
               "labelled photo folder (`python -m runs --family vision --targets both ...`) "
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
    criterion = st.radio("Misclassified when", list(vision_runs.CRITERIA), horizontal=True,
                         format_func=vision_runs_views.CRITERION_LABELS.get, key="vision_runs_criterion")
    wrong = vision_runs.misclassified(photos, criterion).join(_overlaps(str(folder), stamp))
    st.markdown(f"**{len(wrong)} of {len(photos)} photos misclassified ({criterion})**")
    if wrong.empty:
        st.success("The classifier gets every photo of this run right under this criterion.")
    else:
        shown = choose_photos(wrong)
        st.markdown(f"{len(shown)} shown.")
        open_photo = functools.partial(open_on_vision_page, run, manifest)
        photo_listing(shown, open_photo, completeness.tolerance_of(manifest))
        gallery(shown, manifest, functools.partial(_maps, str(folder), stamp), open_photo)
        st.subheader("Which true classes go to which predictions")
        st.dataframe(vision_runs_views.confusion_frame(vision_runs.confusion(shown)), hide_index=True)
    boxes(_box_shares(str(folder), stamp, manifest))


run_page(main)
