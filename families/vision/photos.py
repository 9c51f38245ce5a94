"""Photo folders: the photos of a folder with their ground truth (labels.csv) and boxes (boxes.csv), as the
ImageNet samples and validation photos in the data folder have them, or just every image file below it."""
from __future__ import annotations

import dataclasses
import pathlib

import pandas as pd

from families.vision.images import UPLOAD_TYPES

IMAGE_SUFFIXES = {f".{suffix}" for suffix in UPLOAD_TYPES}


@dataclasses.dataclass
class Photo:
    path: pathlib.Path
    file: str  # as listed (relative to the folder)
    label: int | None = None
    label_name: str = ""
    boxes: list = dataclasses.field(default_factory=list)  # [(xmin, ymin, xmax, ymax)] original pixels


def list_photos(folder: str | pathlib.Path, limit: int | None = None) -> list[Photo]:
    """Photos of a folder: from its labels.csv or boxes.csv (ImageNet samples / validation boxes),
    otherwise every image file below it (labels unknown)."""
    folder = pathlib.Path(folder)
    photos: dict[str, Photo] = {}
    if (folder / "boxes.csv").exists():
        for row in pd.read_csv(folder / "boxes.csv").itertuples(index=False):
            p = photos.setdefault(row.file,
                                  Photo(folder / row.file, row.file, int(row.class_index), str(row.class_name)))
            p.boxes.append((row.xmin, row.ymin, row.xmax, row.ymax))
    if (folder / "labels.csv").exists():
        for row in pd.read_csv(folder / "labels.csv").itertuples(index=False):
            photos.setdefault(row.file, Photo(folder / row.file, row.file, int(row.class_index), str(row.class_name)))
    if not photos:
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                rel = str(path.relative_to(folder))
                photos[rel] = Photo(path, rel)
    listed = list(photos.values())
    return listed[:limit] if limit else listed
