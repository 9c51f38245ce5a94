"""What a dataset run's job decides, as the manifest keeps it (a restart must repeat it): the collection its input
is, the scan settings and the target policy (the family and its model by name: ModelFamily.source_named)."""
from __future__ import annotations

import pathlib
from typing import Sequence

from families.collection import Collection
from families.registry import FAMILIES
from ig_core import ScanSettings

# the target policies and what each needs of the input, for the message that refuses a policy
POLICIES = {
    "predicted": "a model's prediction",  # the top class, task or next word
    "truth": "one true target per item, not one label per task",  # a photo folder's labels.csv, a text's next word
    "both": "one true target per item, not one label per task",  # predicted and truth from one scan
    "actives": "per-task labels (a molecule CSV or SDF)",  # every task the item is labelled active on
    "next_word": "text windows",  # the word that follows a text window
}


def settings_of(job: dict) -> ScanSettings:
    settings = job["settings"]
    return ScanSettings(**{**settings, "method_options": dict(settings["method_options"])})  # JSON keeps pairs as lists


def collection_of(job: dict) -> Collection:
    return FAMILIES[job["family"]].open_collection(pathlib.Path(job["input"]), job["input_options"])


def check_policy(policy: str, collection: Collection) -> None:
    """Refuse a policy the collection cannot serve before any model is loaded."""
    if policy not in collection.policies:
        raise ValueError(f"--targets {policy} needs {POLICIES[policy]}, and a {collection.kind} serves "
                         f"{', '.join(collection.policies)}")


def choose_targets(policy: str, predicted: int, truth: int | None, actives: Sequence[int]) -> list[tuple[int, str]]:
    """(target, why) pairs under the policy; none when the item has no such target."""
    if policy == "predicted":
        return [(predicted, "predicted")]
    if policy == "actives":
        return [(t, "active") for t in actives]
    if truth is None:
        return []
    if policy in ("truth", "next_word"):
        return [(truth, policy)]
    return [(predicted, "predicted+truth")] if predicted == truth else [(predicted, "predicted"), (truth, "truth")]
