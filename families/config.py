"""The operator's configuration: every IG_* environment variable of the families, the runs and the dashboard, with
what it sets and its default, and the download helper used when a data file is missing.

Variables are read when asked (`Variable.read`), never frozen at import, so a changed value applies to the next
page run. The engine (ig_core) reads its own IG_BATCH_MEMORY_MB: it is a library that imports nothing above it.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import tempfile
import urllib.request
from dataclasses import dataclass

DEFAULT_DATA_DIR = pathlib.Path("~/.cache/ig-dashboard")


@dataclass(frozen=True)
class Variable:
    """One environment variable: its name, what it sets and its default, in the README's words."""

    name: str
    meaning: str
    default: str

    def read(self) -> str:
        """The value set, stripped; "" when unset."""
        return os.environ.get(self.name, "").strip()

    def path(self) -> pathlib.Path | None:
        """The value as a path (~ expanded); None when unset."""
        value = self.read()
        return pathlib.Path(value).expanduser() if value else None


DATA_DIR = Variable("IG_DATA_DIR", "the data folder (photos, Tox21, PTB, shipped weights)", "`~/.cache/ig-dashboard`")
MODELS_DIR = Variable("IG_MODELS_DIR", "the operator's models, one subfolder per family (`vision/` or the folder "
                      "itself for weights, `molecules/`, `language/`, `tabular/`); the browser sees their names only",
                      "`$IG_DATA_DIR/models`")
RUNS_DIR = Variable("IG_RUNS_DIR", "the folder of dataset runs the dashboard browses; the browser never names a path",
                    "`results/` in the project")
TRUST_DIR = Variable("IG_TRUST_DIR", "the folder of trust tables (sanity checks, ground-truth benchmarks and "
                     "evaluations, per family and model) that the Trust page and Home read", "`bench/trust/` in the "
                     "project")
VISION_ARCH = Variable("IG_VISION_ARCH", "the Vision pages' torchvision model (`googlenet`, `inception_v3`, "
                       "`resnet50`, `mobilenet_v2`, ...)", "googlenet if its weights are cached, else mobilenet_v2 if "
                       "the shared file is in `IG_DATA_DIR`, else googlenet")
VISION_WEIGHTS = Variable("IG_VISION_WEIGHTS", "a local state_dict for `IG_VISION_ARCH` (loaded with "
                          "`weights_only=True`); read at every run", "torchvision's cache, then known files in "
                          "`IG_DATA_DIR`")
VISION_SAMPLES = Variable("IG_VISION_SAMPLES", "the folder of sample photos for the Vision picker and the reference "
                          "set of Expected Gradients", "`$IG_DATA_DIR/imagenet_samples`")
VISION_FACTORY = Variable("IG_VISION_FACTORY", "the operator's own vision models: `package.module:function`, "
                          "comma-separated (see the Vision section)", "none")
WEAVE_CHECKPOINTS = Variable("IG_WEAVE_CHECKPOINTS", "a folder of weave checkpoints (`*.pt`) the Molecules page ships "
                             "instead of the committed ones", "`families/molecules/checkpoints/`")
LANGUAGE_CHECKPOINT = Variable("IG_LANGUAGE_CHECKPOINT", "the Language page's default model, a checkpoint file "
                               "instead of the committed one", "`families/language/checkpoints/small.pt`")
VARIABLES = (DATA_DIR, MODELS_DIR, RUNS_DIR, TRUST_DIR, VISION_ARCH, VISION_WEIGHTS, VISION_SAMPLES, VISION_FACTORY,
             WEAVE_CHECKPOINTS, LANGUAGE_CHECKPOINT)


class DataNotFound(Exception):
    """A data file is missing and could not be downloaded."""


def data_dir() -> pathlib.Path:
    """The data directory: $IG_DATA_DIR if set, else ~/.cache/ig-dashboard."""
    folder = DATA_DIR.path()
    return folder.resolve() if folder else DEFAULT_DATA_DIR.expanduser()


def models_dir() -> pathlib.Path:
    """The models folder: $IG_MODELS_DIR if set, else <data directory>/models."""
    folder = MODELS_DIR.path()
    return folder.resolve() if folder else data_dir() / "models"


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
