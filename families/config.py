"""Where the dashboard finds its data, and the download helper used when a file is missing.

The data directory is ``$IG_DATA_DIR`` when set, otherwise ``~/.cache/ig-dashboard``. The models folder,
whose weights files the Vision pages offer, is ``$IG_MODELS_DIR`` when set, otherwise ``<data directory>/models``.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
import urllib.request

DEFAULT_DATA_DIR = pathlib.Path("~/.cache/ig-dashboard")
MODELS_ENV = "IG_MODELS_DIR"


class DataNotFound(Exception):
    """A data file is missing and could not be downloaded."""


def data_dir() -> pathlib.Path:
    """The data directory: ``$IG_DATA_DIR`` if set, else ``~/.cache/ig-dashboard``."""
    env = os.environ.get("IG_DATA_DIR")
    return pathlib.Path(env).expanduser().resolve() if env else DEFAULT_DATA_DIR.expanduser()


def models_dir() -> pathlib.Path:
    """The models folder: ``$IG_MODELS_DIR`` if set, else ``<data directory>/models``."""
    env = os.environ.get(MODELS_ENV, "").strip()
    return pathlib.Path(env).expanduser().resolve() if env else data_dir() / "models"


def download(url: str, dest: "str | os.PathLike[str]", timeout: float = 60.0) -> pathlib.Path:
    """Download ``url`` to ``dest`` atomically (via a temporary file in the same folder).

    Raises DataNotFound with a readable message when the download fails.
    """
    dest = pathlib.Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            shutil.copyfileobj(resp, out)
        os.replace(tmp, dest)
    except OSError as exc:  # URLError and HTTPError derive from OSError
        raise DataNotFound(f"could not download {url} to {dest}: {exc}") from exc
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest
