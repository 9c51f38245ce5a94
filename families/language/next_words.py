"""A text as a language model's context, the target words asked of it and its most probable next words.

Every refusal is a TextError (an InputError) with a message for people.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from families.language import LanguageModel, TextError, TokenizedText

MAX_CONTEXT = 50  # words of context read; a longer text keeps its last MAX_CONTEXT tokens (with a notice)
MAX_TARGETS = 5
TOP_K = 10  # next words listed with every explanation


# --- input checks ------------------------------------------------------------------------------

def tokenize_text(lm: LanguageModel, text: str, max_tokens: int = MAX_CONTEXT) -> TokenizedText:
    """PTB tokens of the text (raises TextError with a message for people)."""
    if text is None or not str(text).strip():
        raise TextError("The text is empty: type a few English words, e.g. \"the shareholders claimed more\".")
    return lm.tokenize(str(text), max_tokens=max_tokens)


def _target_id(lm: LanguageModel, target) -> int:
    if isinstance(target, (int, np.integer)):
        if not 0 <= int(target) < len(lm.vocab):
            raise TextError(f"Target id {int(target)} is outside the vocabulary (0..{len(lm.vocab) - 1}).")
        return int(target)
    word = str(target).strip()
    for spelling in (word, word.lower()):
        if spelling in lm.vocab:
            return lm.vocab.index[spelling]
    raise TextError(f"The target {word!r} is not in the model's {len(lm.vocab):,}-word vocabulary; "
                    "pick a word from the list (numbers are the single word N).")


def resolve_targets(lm: LanguageModel, targets, top_id: int | None = None) -> tuple[list[str], list[int]]:
    """Vocabulary words (or ids) -> (words, ids), without duplicates.

    None (the whole argument, an empty list, or an entry) stands for the most probable next word, top_id.
    """
    if targets is None or isinstance(targets, (str, int, np.integer)):
        targets = [targets]
    targets = list(targets) or [None]
    if None in targets and top_id is None:
        raise TextError("The most probable next word is not known here: name the target word.")
    ids = list(dict.fromkeys(top_id if t is None else _target_id(lm, t) for t in targets))
    if len(ids) > MAX_TARGETS:
        raise TextError(f"At most {MAX_TARGETS} target words at once, got {len(ids)}.")
    return [lm.vocab.words[i] for i in ids], ids


# --- predictions -------------------------------------------------------------------------------

def next_word_probabilities(lm: LanguageModel, ids: Sequence[int]) -> torch.Tensor:
    """Softmax over the vocabulary after the context ids -> [V] on the CPU (any language model: its embeddings
    through its attribution forward)."""
    with torch.no_grad():
        return torch.softmax(lm.forward(lm.embed(list(ids))).float(), -1)[0].cpu()


def as_context(lm: LanguageModel, text: str | TokenizedText, max_tokens: int = MAX_CONTEXT) -> TokenizedText:
    """A text's tokens (tokenize_text), or a TokenizedText as it is (never tokenized again)."""
    return text if isinstance(text, TokenizedText) else tokenize_text(lm, text, max_tokens)


def most_probable_words(lm: LanguageModel, probs: torch.Tensor, k: int = TOP_K) -> list[tuple[str, float]]:
    """The k words of the largest probability in `probs` [V], with it."""
    values, indices = probs.topk(max(1, min(int(k), len(probs))))
    return [(lm.vocab.words[int(i)], float(v)) for v, i in zip(values, indices)]


def top_k_next_words(lm: LanguageModel, text: str | TokenizedText, k: int = TOP_K,
                     max_tokens: int = MAX_CONTEXT) -> list[tuple[str, float]]:
    """The k most probable next words after the text, with their probabilities."""
    return most_probable_words(lm, next_word_probabilities(lm, as_context(lm, text, max_tokens).ids), k)
