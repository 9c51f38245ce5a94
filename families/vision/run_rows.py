"""The misclassified photos of a vision run: a results store of a labelled photo folder made with
`--family vision --targets both`, which holds per photo the predicted label's row and the true label's row (one
row, chosen_as "predicted+truth", where they agree), both from one scan.

What the Vision runs page shows, as functions of the store's rows (the page reads them: the listing without pixel
maps, and the maps of the few photos it needs):

- which photos are misclassified: top-1 (the truth is not ranked first) or top-5 (not among the first five, as
  the paper's Section 2.6 counts errors), most confident first;
- how far apart the two labels' maps are: the intersection over union of their top BLOCK x BLOCK-pixel blocks
  by positive attribution (TOP_SHARE of the blocks). A low overlap suggests two objects in the photo and a ranking
  problem (the network saw the true object too, but preferred another); a high overlap a recognition problem (the same
  pixels read as another class, as the paper's mantis read as a cricket);
- which true classes go to which predictions;
- for photos with human boxes, the share of positive attribution that falls outside the box, for right and
  wrong predictions.
"""
from __future__ import annotations

import dataclasses
import math
import pathlib
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
from PIL import Image
from torchvision.transforms import functional as TF

from families.config import data_dir
from families.vision.boxes import box_mask, resize_for
from families.vision.images import load_image
from families.vision.photos import list_photos

TOP_SHARE = 0.05  # the overlap of two maps compares their top 5% of blocks by positive attribution
# ... of 8x8 pixels: integrated-gradients maps are speckled, so the single top pixels of two maps on one object
# rarely coincide (on the 900 sample photos the pixel IoU had a median of 0.012, the block IoU 0.33)
BLOCK = 8
CRITERIA = {"top-1": 1, "top-5": 5}  # misclassified when the truth is ranked below this rank
PREDICTED_ROLES = ("predicted", "predicted+truth")  # the rows that explain the predicted label
TRUTH_ROLES = ("truth", "predicted+truth")  # the rows that explain the true label
BOXES_FOLDER = "imagenet_val_boxes"  # the data folder's photos with human boxes (boxes.csv)
# ways to sort the misclassified photos: column, ascending
SORTS = {
    "confidence, highest first": ("confidence", False),
    "overlap, lowest first": ("overlap", True),
    "overlap, highest first": ("overlap", False),
    "completeness error, largest first": ("relative_delta", False),
    "true class": ("truth_name", True),
    "predicted class": ("predicted_name", True),
}


# --- the photos of a run ----------------------------------------------------------------------------

def photo_table(listing: pd.DataFrame) -> pd.DataFrame:
    """One row per explained photo with a ground truth, indexed by item_index: item_id, source, predicted and
    predicted_name, truth and truth_name, truth_rank, confidence (the predicted class's probability),
    truth_probability, relative_delta (the larger of its two labels'; NaN for a method without completeness)
    and correct (top-1)."""
    rows = listing[(listing.status == "explained") & listing.truth.notna() & listing.target.notna()]
    predicted = rows[rows.chosen_as.isin(PREDICTED_ROLES)].set_index("item_index")
    truth = rows[rows.chosen_as.isin(TRUTH_ROLES)].set_index("item_index")
    photos = predicted[["item_id", "source", "predicted", "target_name", "truth", "truth_rank", "probability"]].rename(
        columns={"target_name": "predicted_name", "probability": "confidence"})
    photos = photos.join(truth[["target_name", "probability"]].rename(
        columns={"target_name": "truth_name", "probability": "truth_probability"}), how="inner")
    photos["relative_delta"] = rows.groupby("item_index").relative_delta.max()
    photos = photos.astype({"predicted": "int64", "truth": "int64", "truth_rank": "int64"})
    photos["correct"] = photos.predicted == photos.truth
    return photos


def misclassified(photos: pd.DataFrame, criterion: str = "top-1") -> pd.DataFrame:
    """The photos whose truth is ranked below CRITERIA[criterion], most confident first."""
    wrong = photos[photos.truth_rank > CRITERIA[criterion]]
    return wrong.sort_values("confidence", ascending=False, kind="stable")


def filter_photos(photos: pd.DataFrame, true_classes: Sequence[str] = (), predicted_classes: Sequence[str] = (),
                  confidence: tuple[float, float] = (0.0, 1.0), overlap: tuple[float, float] | None = None,
                  max_relative_delta: float | None = None) -> pd.DataFrame:
    """The photos of the chosen true and predicted classes (none chosen: all), of a confidence in the closed
    range, of an overlap in the range when one is given (photos without an overlap are then left out) and of a
    completeness error of at most max_relative_delta when given (photos without one are then left out)."""
    keep = photos.confidence.between(*confidence)
    if true_classes:
        keep &= photos.truth_name.isin(true_classes)
    if predicted_classes:
        keep &= photos.predicted_name.isin(predicted_classes)
    if overlap is not None:
        keep &= photos.overlap.between(*overlap)
    if max_relative_delta is not None:
        keep &= photos.relative_delta <= max_relative_delta
    return photos[keep]


def sort_photos(photos: pd.DataFrame, sort: str) -> pd.DataFrame:
    """Sorted as SORTS[sort] says, ties in the photos' order, photos without a value last."""
    column, ascending = SORTS[sort]
    return photos.sort_values(column, ascending=ascending, kind="stable", na_position="last")


def confusion(photos: pd.DataFrame) -> pd.DataFrame:
    """Which true classes went to which predictions: truth, truth_name, predicted, predicted_name, photos;
    the most frequent first, then by class names."""
    columns = ["truth", "truth_name", "predicted", "predicted_name"]
    counts = photos.groupby(columns).size().rename("photos").reset_index()
    return counts.sort_values(["photos", "truth_name", "predicted_name"], ascending=[False, True, True],
                              kind="stable").reset_index(drop=True)


# --- the two labels' maps ---------------------------------------------------------------------------

def top_pixels(scores: np.ndarray, share: float = TOP_SHARE) -> np.ndarray:
    """The top ceil(share * pixels) pixels of a map [H, W] by positive attribution, as a bool mask; pixels
    without positive attribution are never among them, and ties go to the earlier pixel (row-major)."""
    positive = np.maximum(np.asarray(scores, dtype=np.float64), 0.0).ravel()
    count = math.ceil(share * positive.size)
    order = np.argsort(-positive, kind="stable")[:count]
    mask = np.zeros(positive.size, dtype=bool)
    mask[order] = True
    return (mask & (positive > 0)).reshape(np.shape(scores))


def block_sums(scores: np.ndarray, block: int = BLOCK) -> np.ndarray:
    """A map's positive attribution summed over block x block tiles (the last row and column of tiles may be
    narrower)."""
    positive = np.maximum(np.asarray(scores, dtype=np.float64), 0.0)
    height, width = positive.shape
    padded = np.zeros((-(-height // block) * block, -(-width // block) * block))
    padded[:height, :width] = positive
    return padded.reshape(padded.shape[0] // block, block, padded.shape[1] // block, block).sum(axis=(1, 3))


def overlap(first: np.ndarray, second: np.ndarray, share: float = TOP_SHARE, block: int = BLOCK) -> float:
    """Intersection over union of the two maps' top blocks (top_pixels of block_sums); NaN when neither has any."""
    a, b = top_pixels(block_sums(first, block), share), top_pixels(block_sums(second, block), share)
    union = int((a | b).sum())
    return int((a & b).sum()) / union if union else float("nan")


def label_maps(rows: pd.DataFrame,
               pixel_map: Callable[[dict], np.ndarray]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{item_index: (predicted label's map, true label's map)} of a run's rows; pixel_map decodes a row's map (the
    store's encoding). A photo predicted right has one row, whose map is both."""
    maps: dict[int, list] = {}
    for row in rows.to_dict("records"):
        if row["chosen_as"] not in PREDICTED_ROLES + TRUTH_ROLES:
            continue  # a refused photo's row, or a label this page does not compare
        pair = maps.setdefault(int(row["item_index"]), [None, None])
        scores = pixel_map(row)
        if row["chosen_as"] in PREDICTED_ROLES:
            pair[0] = scores
        if row["chosen_as"] in TRUTH_ROLES:
            pair[1] = scores
    return {k: (predicted, truth) for k, (predicted, truth) in maps.items()
            if predicted is not None and truth is not None}


def overlaps(maps: dict[int, tuple[np.ndarray, np.ndarray]], share: float = TOP_SHARE,
             block: int = BLOCK) -> pd.Series:
    """The overlap of each photo's two maps, by item_index."""
    return pd.Series({k: overlap(predicted, truth, share, block) for k, (predicted, truth) in maps.items()},
                     name="overlap", dtype="float64").rename_axis("item_index")


# --- boxes ------------------------------------------------------------------------------------------

def outside_share(scores: np.ndarray, inside: np.ndarray) -> float:
    """The share of a map's positive attribution on pixels outside the bool mask; NaN when it has none."""
    positive = np.maximum(np.asarray(scores, dtype=np.float64), 0.0)
    total = positive.sum()
    return float(positive[~np.asarray(inside, dtype=bool)].sum() / total) if total > 0 else float("nan")


def boxes_by_file_name(folders: Iterable[pathlib.Path]) -> dict[str, list[tuple]]:
    """{file name: boxes (xmin, ymin, xmax, ymax) in the original photo's pixels} of the folders' boxes.csv."""
    boxes = {}
    for folder in folders:
        if (pathlib.Path(folder) / "boxes.csv").is_file():
            boxes.update({pathlib.PurePath(photo.file).name: list(photo.boxes)
                          for photo in list_photos(folder) if photo.boxes})
    return boxes


def box_folders(manifest: dict) -> list[pathlib.Path]:
    """Where a run's photos may have boxes: its own folder and the data folder's photos with boxes."""
    return [input_folder(manifest), data_dir() / BOXES_FOLDER]


def box_shares(photos: pd.DataFrame, maps: dict[int, tuple[np.ndarray, np.ndarray]], boxes: dict[str, list],
               sizes: dict[int, tuple[int, int]]) -> pd.DataFrame:
    """Per photo with boxes (matched by file name) and maps: item_index, item_id, correct (top-1), box_area (the
    boxes' share of the network's view), outside_predicted and outside_truth (the share of each label's positive
    attribution outside the boxes). sizes: {item_index: (width, height)} of the original photos."""
    rows = []
    for k, photo in photos.iterrows():
        name = pathlib.PurePath(photo.source).name
        if name not in boxes or k not in maps or k not in sizes:
            continue
        predicted, truth = maps[k]
        crop = predicted.shape[0]
        inside = box_mask(boxes[name], *sizes[k], resize=resize_for(crop), crop=crop).numpy()
        rows.append({"item_index": k, "item_id": photo.item_id, "correct": bool(photo.correct),
                     "box_area": float(inside.mean()), "outside_predicted": outside_share(predicted, inside),
                     "outside_truth": outside_share(truth, inside)})
    return pd.DataFrame(rows, columns=["item_index", "item_id", "correct", "box_area", "outside_predicted",
                                       "outside_truth"])


def box_summary(shares: pd.DataFrame) -> pd.DataFrame:
    """Right and wrong (top-1) predictions: photos, and the mean shares outside the boxes of the predicted and
    the true label's positive attribution (the same map for a right prediction)."""
    rows = []
    for correct, name in ((True, "right"), (False, "wrong")):
        group = shares[shares.correct == correct]
        rows.append({"prediction": name, "photos": len(group), "outside_predicted": group.outside_predicted.mean(),
                     "outside_truth": group.outside_truth.mean()})
    return pd.DataFrame(rows)


def boxed_photos(photos: pd.DataFrame, boxes: dict[str, list]) -> pd.DataFrame:
    """The photos that have boxes, matched by file name."""
    return photos[[pathlib.PurePath(source).name in boxes for source in photos.source]]


# --- the photos themselves --------------------------------------------------------------------------

def input_folder(manifest: dict) -> pathlib.Path:
    return pathlib.Path(manifest["job"]["input"])


def photo_path(manifest: dict, source: str) -> pathlib.Path:
    """A photo of the run: its source (a path relative to the run's input folder) in that folder. A source that
    is absolute or climbs out of the folder is refused (ValueError)."""
    relative = pathlib.PurePosixPath(source)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ValueError(f"the run's photo {source!r} is not inside its folder")
    return input_folder(manifest) / relative


def network_view(image: Image.Image, crop: int) -> Image.Image:
    """The picture a classifier of input size `crop` sees: the shorter side resized, then centre-cropped."""
    resized = TF.resize(image.convert("RGB"), [resize_for(crop)], interpolation=TF.InterpolationMode.BILINEAR,
                        antialias=True)
    return TF.center_crop(resized, [crop])


def photo_sizes(manifest: dict, photos: pd.DataFrame) -> dict[int, tuple[int, int]]:
    """{item_index: (width, height)} of the photos' files as decoded (orientation applied); unreadable photos
    are left out."""
    sizes = {}
    for k, source in photos.source.items():
        try:
            sizes[k] = load_image(photo_path(manifest, source)).size
        except (OSError, ValueError):
            continue
    return sizes


@dataclasses.dataclass(frozen=True)
class RunPhoto:
    """One photo of a run, as the Vision page opens it."""

    path: pathlib.Path
    item_id: str
    truth: int | None
    truth_name: str
    predicted: int
    predicted_name: str
    model_key: str


def run_photo(rows: pd.DataFrame, manifest: dict, item_index: int) -> RunPhoto:
    """The photo item_index of a run from its explained rows of the listing (ValueError when there are none)."""
    if rows.empty:
        raise ValueError(f"the run has no explained photo number {item_index}")
    names = dict(zip(rows.target, rows.target_name))
    first = rows.iloc[0]
    truth = None if pd.isna(first.truth) else int(first.truth)
    return RunPhoto(photo_path(manifest, first.source), first.item_id, truth, names.get(truth, ""),
                    int(first.predicted), names.get(int(first.predicted), ""), first.model_key)
