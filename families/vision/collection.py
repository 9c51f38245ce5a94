"""The photos a vision dataset run explains: a folder of photos, with labels.csv or boxes.csv for ground truth
(families.vision.photos)."""
from __future__ import annotations

import hashlib
import pathlib

from families.collection import Collection, Item
from families.vision.photos import list_photos


class PhotoFolder(Collection):
    kind, reads = "photo folder", "a folder of photos"

    @classmethod
    def accepts(cls, path: pathlib.Path) -> bool:
        return path.is_dir()

    def items(self) -> list[Item]:
        return [Item(k, photo.file, photo.file, photo.path, photo.label)
                for k, photo in enumerate(list_photos(self.path))]

    def fingerprint(self) -> str:
        """The listing with sizes and modification times: hashing every photo's bytes would take as long as a
        small run."""
        digest = hashlib.sha256()
        for side_file in ("labels.csv", "boxes.csv"):
            if (self.path / side_file).is_file():
                digest.update((self.path / side_file).read_bytes())
        for item in self.items():
            stat = item.raw.stat() if item.raw.exists() else None
            digest.update(f"{item.id}:{stat and stat.st_size}:{stat and stat.st_mtime_ns}\n".encode())
        return digest.hexdigest()
