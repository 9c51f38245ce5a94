"""A language run's windows (a results store of `--family language`): where the model is surprised and which
context words carry the attribution there. Pure: numpy and pandas, no Streamlit.

A row of the store is one window and one target word: `source` the window's tokens (joined by spaces), `scores`
the integrated gradients of P(target | window) per context word (`score_names` "1 the", "2 cat", ...; position
1 is the first word), `gradient_scores` gradient x input per word read off the same scan. Per row:

    surprise (bits)       -log2 P(target | window): the surprise at the actual next word when the target is the
                          truth (--targets next_word, truth)
    last word's share     the last word's attribution / the sum of all the words' attributions
    disagreement          1 - Spearman's rank correlation of the integrated gradients and gradient x input

Over the corpus: the mean attribution by distance from the predicted word (distance 1 = the window's last word).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from families.contract import NEAR_EQUAL_FRACTION, ModelSource
from families.language.family import model_key_of
from ig_core.agreement import spearman_rows

# the statistics a page sorts the windows by, all "the larger, the more interesting"
SORTS = {"surprise": "surprise_bits", "last word's share": "last_word_share",
         "IG vs gradient disagreement": "disagreement"}
WORD_PLACES = ("in the window", "as the next word", "as the top word")
# what window_table reads of a run, in one read (two reads of a run being written could see different shards)
COLUMNS = ["item_index", "item_id", "source", "status", "target", "target_name", "rather_than", "chosen_as", "truth",
           "predicted",
           "truth_rank", "probability", "relative_delta", "scores", "gradient_scores"]
OPEN_WINDOW_KEY = "language_open_window"  # the session's OpenWindow, from the run page to the Language page


def surprise_bits(probability) -> np.ndarray:
    """-log2 P: 0 bits for a certain word, 1 bit more for every halving of its probability (inf at P = 0)."""
    with np.errstate(divide="ignore"):
        return -np.log2(np.asarray(probability, dtype=np.float64))


def last_word_shares(scores_per_window: Sequence[Sequence[float] | None]) -> np.ndarray:
    """Each window's last word's attribution over the sum of all its words'. Words that pull in opposite directions
    can put it below 0 or above 1. NaN without scores, and where the words all but cancel (their sum, F(window) -
    F(baseline) up to the completeness error, is at most NEAR_EQUAL_FRACTION of their total size): the baseline then
    scores like the window, and a share of that near-zero sum would say how small it is, not which word counts."""
    shares = np.full(len(scores_per_window), np.nan)
    for rows, values in _by_length(scores_per_window).values():
        totals = values.sum(axis=1)
        meaningful = np.abs(totals) > NEAR_EQUAL_FRACTION * np.abs(values).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            shares[rows] = np.where(meaningful, values[:, -1] / totals, np.nan)
    return shares


def cancelling_windows(table: pd.DataFrame) -> int:
    """How many of the table's windows have scores but no last word's share: their words all but cancel."""
    return int((table["last_word_share"].isna() & table["scores"].notna()).sum())


def disagreements(scores_per_window, gradient_scores_per_window) -> np.ndarray:
    """Each window's 1 - Spearman's rank correlation of its two per-word scores: 0 when they rank the words
    alike, 2 when in reverse (NaN when either is missing, of another length or constant)."""
    out = np.full(len(scores_per_window), np.nan)
    pairs = [None if s is None or g is None or len(s) != len(g) else np.concatenate([s, g])
             for s, g in zip(scores_per_window, gradient_scores_per_window)]
    for length, (rows, values) in _by_length(pairs).items():
        half = length // 2
        out[rows] = 1.0 - spearman_rows(values[:, :half], values[:, half:])
    return out


def _by_length(vectors) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """{length: (positions, values [m, length])} of the non-empty vectors, so that windows of one length are
    computed together."""
    groups: dict[int, list[int]] = {}
    for position, vector in enumerate(vectors):
        if vector is not None and len(vector) > 0:
            groups.setdefault(len(vector), []).append(position)
    return {length: (np.array(rows), np.array([vectors[k] for k in rows], dtype=np.float64))
            for length, rows in groups.items()}


def distance_profile(scores_per_window: Sequence[Sequence[float]], normalise: bool = False) -> pd.DataFrame:
    """Mean attribution by distance from the predicted word (1 = the window's last word), over the windows:
    columns distance, mean, sem (standard error of the mean; NaN for one window) and windows (how many
    windows reach that far back). normalise: each window's scores divided by their sum first (a window whose
    scores sum to 0 is left out)."""
    windows = [np.asarray(scores, dtype=np.float64) for scores in scores_per_window
               if scores is not None and len(scores) > 0]
    if normalise:
        windows = [values / values.sum() for values in windows if values.sum() != 0]
    # a row per window, its last word in column 0: windows of any length line up by distance
    by_distance = np.full((len(windows), max((len(values) for values in windows), default=0)), np.nan)
    for row, values in zip(by_distance, windows):
        row[:len(values)] = values[::-1]
    counts = np.sum(~np.isnan(by_distance), axis=0)
    means = np.nansum(by_distance, axis=0) / np.maximum(counts, 1)
    spread = np.sqrt(np.nansum((by_distance - means) ** 2, axis=0) / np.maximum(counts - 1, 1))
    return pd.DataFrame({"distance": np.arange(1, by_distance.shape[1] + 1), "mean": means,
                         "sem": np.where(counts > 1, spread / np.sqrt(counts), np.nan), "windows": counts})


def word_name(word_id, vocabulary: Sequence[str] | None, known: dict[int, str]) -> str | None:
    """A vocabulary id as its word: from the vocabulary where there is one, else from the rows that name it
    (`known`), else "#id"."""
    if word_id is None or pd.isna(word_id):
        return None
    word_id = int(word_id)
    if vocabulary is not None and 0 <= word_id < len(vocabulary):
        return vocabulary[word_id]
    return known.get(word_id, f"#{word_id}")


def window_table(rows: pd.DataFrame, vocabulary: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per explained window and target, in store order, from a run's COLUMNS: the window, the words of
    the next word and of the model's top word, what was explained (a word, or a contrast "a rather than b"), the
    three statistics and the words' integrated gradients (`scores`, for distance_profile of any subset).
    `vocabulary` names the ids (without it, the words the rows name as targets, else "#id")."""
    rows = rows[(rows["status"] == "explained") & rows["target"].notna()].reset_index(drop=True)
    known = dict(zip(rows["target"].astype(int), rows["target_name"]))
    other = [word_name(r, vocabulary, known) for r in rows["rather_than"]]
    table = pd.DataFrame({
        "item_index": rows["item_index"].astype(int), "item_id": rows["item_id"], "window": rows["source"],
        "target": rows["target"].astype(int), "target_name": rows["target_name"], "rather_than_name": other,
        "explained": [word if o is None else f"{word} rather than {o}" for word, o in zip(rows["target_name"], other)],
        "chosen_as": rows["chosen_as"],
        "next_word": [word_name(t, vocabulary, known) for t in rows["truth"]],
        "top_word": [word_name(p, vocabulary, known) for p in rows["predicted"]],
        "truth_rank": rows["truth_rank"], "probability": rows["probability"].astype(float),
        "relative_delta": rows["relative_delta"].astype(float),
    })
    table["surprise_bits"] = surprise_bits(table["probability"])
    table["last_word_share"] = last_word_shares(list(rows["scores"]))
    table["disagreement"] = disagreements(list(rows["scores"]), list(rows["gradient_scores"]))
    table["scores"] = rows["scores"]
    return table


def sort_windows(table: pd.DataFrame, by: str, ascending: bool = False) -> pd.DataFrame:
    """The windows by one of SORTS (largest first by default); windows without the statistic come last."""
    return table.sort_values(SORTS[by], ascending=ascending, na_position="last", kind="stable")


def with_word(table: pd.DataFrame, word: str, place: str = WORD_PLACES[0]) -> pd.DataFrame:
    """The windows where `word` (a token, any case; blank: all windows) is one of the window's words, the next
    word or the model's top word (WORD_PLACES)."""
    word = word.strip().lower()
    if not word:
        return table
    if place == WORD_PLACES[0]:
        keep = [word in window.lower().split(" ") for window in table["window"]]
    elif place == WORD_PLACES[1]:
        keep = table["next_word"].str.lower() == word
    elif place == WORD_PLACES[2]:
        keep = table["top_word"].str.lower() == word
    else:
        raise ValueError(f"place must be one of {WORD_PLACES}, got {place!r}")
    return table[np.asarray(keep, dtype=bool)]


def run_model_source(sources: Sequence[ModelSource], model_key: str) -> ModelSource | None:
    """The model a run used, among the family's sources, by its key (family, name and content digest as
    families.language.family.LanguageFamily.load makes it); None when no source has those bytes now."""
    return next((source for source in sources if model_key == model_key_of(source)), None)


@dataclass(frozen=True)
class OpenWindow:
    """A window the run page hands to the Language page: its tokens, the word to explain, a second word for the
    same scan or the word a contrast explains it rather than, the sidebar's model and where the window comes from."""

    words: tuple[str, ...]
    target: str
    second: str | None  # the other of the next word and the model's top word, where they differ
    model_name: str | None
    origin: str  # "tokens 40-60 of run ptb-test"
    settings: str  # the run's scan, for people: "integrated_gradients, gauss-legendre rule, 4 steps"
    rather_than: str | None = None  # a contrast row's other word: the target is explained rather than it

    @property
    def text(self) -> str:
        return " ".join(self.words)


def open_window(row: dict, run_name: str, model_name: str | None, job_settings: dict) -> OpenWindow:
    """What the Language page needs to explain one row of window_table as the run did, next to the word the
    model expected (or, for a row that explains the top word, the word that came); a contrast row as its contrast."""
    other = row["next_word"] if row["target_name"] == row["top_word"] else row["top_word"]
    settings = f"{job_settings.get('method')}, {job_settings.get('rule')} rule, {job_settings.get('steps')} steps"
    rather_than = row.get("rather_than_name")
    return OpenWindow(words=tuple(row["window"].split(" ")), target=row["target_name"],
                      second=other if other != row["target_name"] and rather_than is None else None,
                      model_name=model_name, origin=f"{row['item_id']} of run {run_name}", settings=settings,
                      rather_than=rather_than)
