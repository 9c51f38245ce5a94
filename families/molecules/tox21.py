"""The Tox21 table (MoleculeNet: 7,831 molecules, 12 tasks, blank = unknown label): where it lies, how it is read, and
its actives per task. The training script and the pages read it from here."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from families.config import DataNotFound, data_dir, download
from families.molecules.featurize import MoleculeError, MoleculeFeatures

if TYPE_CHECKING:  # pandas is imported where a table is read (training from a --cache needs none)
    import pandas as pd

TOX21_URL = "https://deepchemdata.s3-us-west-1.amazonaws.com/datasets/tox21.csv.gz"
TOX21_TASKS = ["NR-AR", "NR-AR-LBD", "NR-AhR", "NR-Aromatase", "NR-ER", "NR-ER-LBD", "NR-PPAR-gamma",
               "SR-ARE", "SR-ATAD5", "SR-HSE", "SR-MMP", "SR-p53"]


def tox21_path(allow_download: bool = True) -> Path:
    folder = data_dir() / "molecules"
    # tox21_moleculenet.csv: the shared data's copy; .csv.gz: what the download below saves.
    # (DeepChem's older tox21.csv.gz, 8,014 rows, is a different file and is not used.)
    for name in ("tox21_moleculenet.csv", "tox21_moleculenet.csv.gz"):
        if (folder / name).exists():
            return folder / name
    if not allow_download:
        raise DataNotFound(f"Tox21 is not in {folder}; set IG_DATA_DIR to a folder with "
                           "molecules/tox21_moleculenet.csv")
    return download(TOX21_URL, folder / "tox21_moleculenet.csv.gz")


def load_tox21(path: Path | None = None) -> "pd.DataFrame":
    """The smiles column and the 12 task columns (NaN unknown) of the file at `path` (default: tox21_path())."""
    import pandas as pd  # here, so that training from a --cache needs neither pandas nor RDKit

    df = pd.read_csv(path or tox21_path())
    missing = [t for t in TOX21_TASKS + ["smiles"] if t not in df.columns]
    if missing:
        raise DataNotFound(f"{path} is not the MoleculeNet Tox21 file (missing columns {missing})")
    return df[["smiles"] + TOX21_TASKS]


def tox21_frame() -> "pd.DataFrame":
    """The Tox21 table of the data directory, never downloaded (DataNotFound when it is not there)."""
    return load_tox21(tox21_path(allow_download=False))


def actives(frame: "pd.DataFrame", task: str) -> "pd.DataFrame":
    """Rows labelled active (1) on `task`, with their row number in the CSV."""
    if task not in frame.columns:
        raise ValueError(f"unknown task {task!r}")
    sel = frame[frame[task] == 1]
    return sel[["smiles"]].assign(row=sel.index.to_numpy()).reset_index(drop=True)


def featurize_actives(frame: "pd.DataFrame", task: str, featurizer) -> list[MoleculeFeatures]:
    """The actives of `task` that `featurizer` accepts, named "Tox21 row <row>"; the others are left out."""
    out = []
    sel = actives(frame, task)
    for smiles, row in zip(sel["smiles"], sel["row"]):
        try:
            out.append(featurizer.from_smiles(smiles, name=f"Tox21 row {row}"))
        except MoleculeError:
            continue
    return out
