"""Which earlier words drive the LSTM's next-word prediction (paper Section 3.2, Figures 8-10).

No Streamlit here: the Language page calls these and draws the result with dashboard.renderers.language.

    lm = load_language_model()
    engine.prepare(lm.model)
    result = explain_next_word(engine, lm, "the shareholders claimed more", ["than"])
    result.word_attributions[0]     # integrated gradients per context word (Figure 9, first row)
    result.top_words                # the most probable next words

The counterfactuals scale all the context's embedding vectors together, gamma(alpha) = alpha * E
(baseline: all-zero embeddings), and F is the softmax probability of the target word after the
context. One engine scan serves every target asked for; the scan itself is the Language family's
(families.language.family), whose explanation is NextWordExplanation.
"""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch

from ig_core import Attribution, AttributionEngine, ScanSettings
from families.contract import Explanation
from families.language import LanguageModel, TextError, TokenizedText

MAX_CONTEXT = 50  # words of context read; a longer text keeps its last MAX_CONTEXT tokens (with a notice)
MAX_TARGETS = 5
TOP_K = 10  # next words listed with every explanation

# What each per-word quantity is: said once here, shown by the page and the CSV.
IG_QUANTITY = ("sum over the embedding dimensions of (e - 0) x the average gradient dF/de along the path "
               "from zero embeddings to the text; the words' values add up to F(text) - F(zero embeddings)")
GRADIENT_QUANTITY = ("sum over the embedding dimensions of dF/de x e at the text itself (alpha = 1), "
                     "i.e. gradient x input")
INTERIOR_QUANTITIES = {
    "gradient x embedding": "sum over the embedding dimensions of the interior gradient dF/de at alpha * e, "
                            "times e (its area under the curve over alpha is the word's integrated gradient)",
    "gradient": "sum over the embedding dimensions of the interior gradient dF/de at alpha * e",
}


def word_columns(words: Sequence[str]) -> list[str]:
    """Unique names for the context words, in order: "1 the", "2 shareholders", ... (a word may repeat)."""
    return [f"{i + 1} {w}" for i, w in enumerate(words)]


class NextWordExplanation(Explanation):
    """Everything the page shows for one text; targets are word ids, target_names the words; arrays indexed
    [target t], [alpha k] (every alpha the scan evaluated, 0 first and 1 last), [word l]."""

    def __init__(self, attribution: Attribution, targets: Sequence[int], target_names: Sequence[str],
                 settings: ScanSettings, model_key: str, tokenized: TokenizedText, embeddings: torch.Tensor,
                 top_words: list[tuple[str, float]]):
        super().__init__(attribution, targets, target_names, settings, model_key)
        self.tokenized = tokenized
        self.top_words = top_words  # the most probable next words after the text, with P
        e = embeddings[0].detach().double().cpu()  # [L, D]
        self.word_attributions = attribution.attributions_per_target[0][:, 0].double().cpu().sum(-1).numpy()  # [T, L]
        self.alphas = np.array(sorted(attribution.interior_gradients))  # [K]
        where = np.searchsorted(attribution.alphas, self.alphas)
        self.saturation = np.asarray(attribution.scores[where, 0, :], dtype=float)  # [K, T] F(alpha * E), Figure 8
        kept = [attribution.interior_gradients[a][0][:, 0].double().cpu() for a in self.alphas]
        interior = (torch.stack(kept) if kept  # [K, T, L, D]; none where a method keeps no gradient
                    else attribution.attributions_per_target[0][:, 0].double().cpu().unsqueeze(0)[:0])
        self.interior_gradient_x_input = (interior * e).sum(-1).numpy()  # [K, T, L] see INTERIOR_QUANTITIES
        self.interior_gradient_sum = interior.sum(-1).numpy()  # [K, T, L]

    @property
    def words(self) -> list[str]:
        """The context tokens, in order (PTB spelling: "N", "<unk>", "n't")."""
        return self.tokenized.texts

    @property
    def probability(self) -> np.ndarray:
        """[T] F(text): the softmax probability of each target after the context."""
        return self.score_input

    @property
    def baseline_probability(self) -> np.ndarray:
        """[T] F(zero embeddings)."""
        return self.score_baseline

    @property
    def nothing_to_attribute(self) -> np.ndarray:
        """[T] F(text) = F(baseline) up to rounding (set by the engine)."""
        return self.nothing_per_target()

    @property
    def gradient_x_input(self) -> np.ndarray:
        """[T, L] gradient x input at the text (alpha = 1) per word (GRADIENT_QUANTITY)."""
        return self.interior_gradient_x_input[-1]

    @property
    def gradient_sum(self) -> np.ndarray:
        """[T, L] sum over the embedding dimensions of the plain gradient at the text (alpha = 1)."""
        return self.interior_gradient_sum[-1]

    @property
    def total_attribution(self) -> np.ndarray:
        """[T] sum of the words' integrated gradients."""
        return self.word_attributions.sum(-1)

    def index(self, target: str) -> int:
        """The position of a target word among the explained ones."""
        return self.target_names.index(target)

    def scores(self, t: int) -> dict[str, float]:
        """The t-th target's integrated gradients per context word ("1 the", "2 shareholders", ...)."""
        return dict(zip(word_columns(self.words), self.word_attributions[t].tolist()))


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
    """Softmax over the vocabulary after the context ids -> [V] on the CPU."""
    with torch.no_grad():
        return lm.model.next_word_probs(list(ids)).float().cpu()


def _as_tokenized(lm: LanguageModel, text: str | TokenizedText, max_tokens: int) -> TokenizedText:
    return text if isinstance(text, TokenizedText) else tokenize_text(lm, text, max_tokens)


def _top_words(lm: LanguageModel, probs: torch.Tensor, k: int) -> list[tuple[str, float]]:
    values, indices = probs.topk(max(1, min(int(k), len(probs))))
    return [(lm.vocab.words[int(i)], float(v)) for v, i in zip(values, indices)]


def top_k_next_words(lm: LanguageModel, text: str | TokenizedText, k: int = TOP_K,
                     max_tokens: int = MAX_CONTEXT) -> list[tuple[str, float]]:
    """The k most probable next words after the text, with their probabilities."""
    return _top_words(lm, next_word_probabilities(lm, _as_tokenized(lm, text, max_tokens).ids), k)


# --- the explanation ----------------------------------------------------------------------------

def explain_next_word(
    engine: AttributionEngine,
    lm: LanguageModel,
    text: str | TokenizedText,
    targets: str | Sequence[str | int | None] | None = None,
    settings: ScanSettings | None = None,
    progress: Callable[[float], None] | None = None,
    max_tokens: int = MAX_CONTEXT,
    top_k: int = TOP_K,
    model_key: str | None = None,
    partial: Callable[[NextWordExplanation], bool | None] | None = None,
) -> NextWordExplanation:
    """Integrated and interior gradients of P(target | text) with respect to the context's words.

    text: user text, or the TokenizedText of tokenize_text (not tokenized again).
    targets: None -> the most probable next word; else one or several vocabulary words (one scan),
    where a None entry stands for the most probable word. One forward pass gives the top_k next words
    (result.top_words) and that default target; one engine scan of the Language family gives the attributions.
    model_key: the loaded model's content key where the caller has one, so that its other scans of the same model
    (a comparison of methods) share the engine's cache; by default the model object keys it.
    partial: called with the explanation so far after each round of the adaptive rule (ModelFamily.explain).
    Raises TextError (a ValueError) for text or targets that cannot be used; the message is for people.
    """
    from families.language.family import FAMILY, loaded_language_model  # the family builds on this module

    tokenized = _as_tokenized(lm, text, max_tokens)
    probs = next_word_probabilities(lm, tokenized.ids)
    _, target_ids = resolve_targets(lm, targets, int(probs.argmax()))
    engine.prepare(lm.model)  # on the engine's device, eval, frozen (a no-op the second time)
    top_words = _top_words(lm, probs, top_k)

    def with_top_words(explanation: NextWordExplanation) -> NextWordExplanation:
        explanation.top_words = top_words
        return explanation

    so_far = None if partial is None else (lambda explanation: partial(with_top_words(explanation)))
    return with_top_words(FAMILY.explain(engine, loaded_language_model(lm, model_key), tokenized, target_ids, settings,
                                         progress, so_far))
