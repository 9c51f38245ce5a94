"""What a dataset run's job decides, as the manifest keeps it (a restart must repeat it): the collection its input
is, the scan settings and the target policy (the family and its model by name: ModelFamily.source_named)."""
from __future__ import annotations

import pathlib
from typing import Sequence

from families.collection import Collection
from families.contract import ModelFamily
from families.registry import FAMILIES
from ig_core import Contrast, ScanSettings

# the target policies and what each needs of the input, for the message that refuses a policy
POLICIES = {
    "predicted": "a model's prediction",  # the top class, task or next word
    "truth": "one true target per item, not one label per task",  # a photo folder's labels.csv, a text's next word
    "both": "one true target per item, not one label per task",  # predicted and truth from one scan
    "actives": "per-task labels (a molecule CSV or SDF)",  # every task the item is labelled active on
    "next_word": "text windows",  # the word that follows a text window
    # a misclassified item's prediction rather than its truth (F = out[predicted] - out[truth]); needs what truth needs
    "contrast": "one true target per item, not one label per task",
}
NOTHING_TO_CONTRAST = "predicted the true class: nothing to contrast"


def settings_of(job: dict) -> ScanSettings:
    settings = job["settings"]
    return ScanSettings(**{**settings, "method_options": dict(settings["method_options"])})  # JSON keeps pairs as lists


def collection_of(job: dict) -> Collection:
    return FAMILIES[job["family"]].open_collection(pathlib.Path(job["input"]), job["input_options"])


def served_policies(collection: Collection, family: ModelFamily) -> tuple[str, ...]:
    """The policies a run of this family's model on the collection can serve: a contrast needs a ground truth to
    contrast with and a family that explains contrasts."""
    contrasts = "truth" in collection.policies and family.contrast_output is not None
    return collection.policies + (("contrast",) if contrasts else ())


def check_policy(policy: str, collection: Collection, family: ModelFamily) -> None:
    """Refuse a policy the collection or the family cannot serve before any model is loaded."""
    if policy == "contrast" and family.contrast_output is None:
        raise ValueError(f"--targets contrast explains a prediction rather than the truth, and the {family.name} "
                         "family offers no contrasts (a target rather than another)")
    served = served_policies(collection, family)
    if policy not in served:
        raise ValueError(f"--targets {policy} needs {POLICIES[policy]}, and a {collection.kind} serves "
                         f"{', '.join(served)}")


def choose_targets(policy: str, predicted: int, truth: int | None,
                   actives: Sequence[int]) -> list[tuple[int | Contrast, str]]:
    """(target, why) pairs under the policy; none when the item has no such target (for a contrast: no truth, or a
    prediction that is the truth)."""
    if policy == "predicted":
        return [(predicted, "predicted")]
    if policy == "actives":
        return [(t, "active") for t in actives]
    if truth is None:
        return []
    if policy in ("truth", "next_word"):
        return [(truth, policy)]
    if policy == "contrast":
        return [] if predicted == truth else [(Contrast(predicted, truth), "contrast")]
    return [(predicted, "predicted+truth")] if predicted == truth else [(predicted, "predicted"), (truth, "truth")]


def no_target_reason(policy: str, predicted: int, truth: int | None) -> str:
    """Why choose_targets gave an item no target: the row's error when it is skipped."""
    if policy == "actives":
        return "active on no task of the model"
    if policy == "contrast" and predicted == truth:
        return NOTHING_TO_CONTRAST
    return "no ground truth the model can explain"
