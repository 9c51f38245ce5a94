"""Which earlier words drive the LSTM's next-word prediction (paper Section 3.2, Figures 8-10).

No Streamlit here: the Language page calls these and draws the result with views.language.

    lm = load_language_model()
    engine.prepare(lm.model)
    result = explain_next_word(engine, lm, "the shareholders claimed more", ["than"])
    result.word_attributions[0]     # integrated gradients per context word (Figure 9, first row)

The counterfactuals scale all the context's embedding vectors together, gamma(alpha) = alpha * E
(baseline: all-zero embeddings), and F is the softmax probability of the target word after the
context. One engine scan serves every target asked for.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
import torch

from ig_core import AttributionEngine, ScanSettings
from models.language import LanguageModel, TextError, TokenizedText

MAX_CONTEXT = 50  # words of context read; a longer text keeps its last MAX_CONTEXT tokens (with a notice)
MAX_TARGETS = 5

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


@dataclasses.dataclass
class NextWordExplanation:
    """Everything the page shows for one text; arrays indexed [target t], [alpha k], [word l]."""

    text: str
    tokenized: TokenizedText
    words: list[str]  # the context tokens, in order (PTB spelling: "N", "<unk>", "n't")
    targets: list[str]
    target_ids: list[int]
    probability: np.ndarray  # [T] F(text): softmax probability of each target after the context
    baseline_probability: np.ndarray  # [T] F(zero embeddings)
    word_attributions: np.ndarray  # [T, L] integrated gradients per word (IG_QUANTITY)
    gradient_x_input: np.ndarray  # [T, L] gradient x input at the text per word (GRADIENT_QUANTITY)
    gradient_sum: np.ndarray  # [T, L] sum over dims of the plain gradient at the text
    alphas: np.ndarray  # [K] every alpha the scan evaluated
    scores: np.ndarray  # [K, T] F(alpha * E): the saturation curve (Figure 8)
    interior_gradient_x_input: np.ndarray  # [K, T, L] see INTERIOR_QUANTITIES
    interior_gradient_sum: np.ndarray  # [K, T, L]
    delta: np.ndarray  # [T] total IG - (F(text) - F(baseline))
    relative_delta: np.ndarray  # [T] |delta| / |F(text) - F(baseline)|
    rule: str
    steps_used: int
    points_evaluated: int
    tolerance: float
    nonfinite: bool = False
    message: str = ""

    @property
    def notices(self) -> tuple[str, ...]:
        return self.tokenized.notices

    @property
    def total_attribution(self) -> np.ndarray:
        """[T] sum of the words' integrated gradients."""
        return self.word_attributions.sum(-1)

    @property
    def completeness_ok(self) -> bool:
        return bool(np.all(self.relative_delta <= self.tolerance)) and not self.nonfinite

    def index(self, target: str) -> int:
        return self.targets.index(target)


# --- input checks ------------------------------------------------------------------------------

def tokenize_text(lm: LanguageModel, text: str, max_tokens: int = MAX_CONTEXT) -> TokenizedText:
    """PTB tokens of the text (raises TextError with a message for people)."""
    if text is None or not str(text).strip():
        raise TextError("The text is empty: type a few English words, e.g. \"the shareholders claimed more\".")
    return lm.tokenize(str(text), max_tokens=max_tokens)


def resolve_targets(lm: LanguageModel, targets, default_ids: Sequence[int] = ()) -> tuple[list[str], list[int]]:
    """Vocabulary words (or ids) -> (words, ids), without duplicates; None -> default_ids."""
    if targets is None or (isinstance(targets, (list, tuple)) and not targets):
        ids = list(default_ids)
    else:
        if isinstance(targets, (str, int, np.integer)):
            targets = [targets]
        ids = []
        for t in targets:
            if isinstance(t, (int, np.integer)):
                if not 0 <= int(t) < len(lm.vocab):
                    raise TextError(f"Target id {int(t)} is outside the vocabulary (0..{len(lm.vocab) - 1}).")
                ids.append(int(t))
                continue
            word = str(t).strip()
            if word not in lm.vocab:
                lowered = word.lower()
                if lowered in lm.vocab:
                    word = lowered
                else:
                    raise TextError(f"The target {word!r} is not in the model's 10,000-word vocabulary; "
                                    "pick a word from the list (numbers are the single word N).")
            ids.append(lm.vocab.index[word])
    ids = list(dict.fromkeys(ids))
    if not ids:
        raise TextError("Pick at least one target word.")
    if len(ids) > MAX_TARGETS:
        raise TextError(f"At most {MAX_TARGETS} target words at once, got {len(ids)}.")
    return [lm.vocab.words[i] for i in ids], ids


# --- predictions -------------------------------------------------------------------------------

def next_word_probabilities(lm: LanguageModel, ids: Sequence[int]) -> torch.Tensor:
    """Softmax over the vocabulary after the context ids -> [V] on the CPU."""
    with torch.no_grad():
        return lm.model.next_word_probs(list(ids)).float().cpu()


def top_k_next_words(lm: LanguageModel, text: str | TokenizedText, k: int = 10,
                     max_tokens: int = MAX_CONTEXT) -> list[tuple[str, float]]:
    """The k most probable next words after the text, with their probabilities."""
    tokenized = text if isinstance(text, TokenizedText) else tokenize_text(lm, text, max_tokens)
    probs = next_word_probabilities(lm, tokenized.ids)
    values, indices = probs.topk(max(1, min(int(k), len(probs))))
    return [(lm.vocab.words[int(i)], float(v)) for v, i in zip(values, indices)]


# --- the explanation ----------------------------------------------------------------------------

def scan_context(engine: AttributionEngine, lm: LanguageModel, ids: Sequence[int], target_ids: Sequence[int],
                 settings: ScanSettings | None = None, progress: Callable[[float], None] | None = None,
                 keep_all_gradients: bool = True):
    """One engine scan of P(targets | alpha * embeddings of ids), baseline all-zero embeddings.

    Returns (embeddings [1, L, D], ig_core Attribution with a leading target dimension).
    """
    settings = settings or ScanSettings()
    engine.prepare(lm.model)  # on the engine's device, eval, frozen (a no-op the second time)
    emb = lm.embed(list(ids)).float()  # [1, L, D]
    result = engine.attribute(lm.forward, emb, [int(t) for t in target_ids], None, output="softmax",
                              keep_all_gradients=keep_all_gradients, progress=progress, **settings.options())
    return emb, result


def explain_next_word(
    engine: AttributionEngine,
    lm: LanguageModel,
    text: str,
    targets: str | Sequence[str | int] | None = None,
    settings: ScanSettings | None = None,
    progress: Callable[[float], None] | None = None,
    max_tokens: int = MAX_CONTEXT,
) -> NextWordExplanation:
    """Integrated and interior gradients of P(target | text) with respect to the context's words.

    targets: None -> the most probable next word; else one or several vocabulary words (one scan).
    Raises TextError (a ValueError) for text or targets that cannot be used; the message is for people.
    """
    settings = settings or ScanSettings()
    tokenized = tokenize_text(lm, text, max_tokens)
    default = []
    if targets is None or (isinstance(targets, (list, tuple)) and not targets):
        default = [int(next_word_probabilities(lm, tokenized.ids).argmax())]
    target_words, target_ids = resolve_targets(lm, targets, default)

    emb, result = scan_context(engine, lm, tokenized.ids, target_ids, settings, progress)

    e = emb[0].cpu().double()  # [L, D]
    attributions = result.attributions[:, 0].double()  # [T, L, D]
    grad_input = result.gradient_at_input[:, 0].double()  # [T, L, D]
    alphas = np.asarray(result.alphas, dtype=float)
    interior = torch.stack([result.interior_gradient(float(a))[:, 0].double() for a in alphas])  # [K, T, L, D]
    return NextWordExplanation(
        text=str(text), tokenized=tokenized, words=tokenized.texts, targets=target_words, target_ids=target_ids,
        probability=np.asarray(result.score_input[0], dtype=float),
        baseline_probability=np.asarray(result.score_baseline[0], dtype=float),
        word_attributions=attributions.sum(-1).numpy(),
        gradient_x_input=(grad_input * e).sum(-1).numpy(),
        gradient_sum=grad_input.sum(-1).numpy(),
        alphas=alphas,
        scores=np.asarray(result.scores[:, 0, :], dtype=float),
        interior_gradient_x_input=(interior * e).sum(-1).numpy(),
        interior_gradient_sum=interior.sum(-1).numpy(),
        delta=np.asarray(result.delta[0], dtype=float),
        relative_delta=np.asarray(result.relative_delta[0], dtype=float),
        rule=result.rule, steps_used=int(result.steps_used), points_evaluated=int(result.points_evaluated),
        tolerance=float(settings.tolerance), nonfinite=bool(result.nonfinite), message=result.message,
    )


def completeness_advice(result: NextWordExplanation) -> str:
    """What to do when the attributions miss F(text) - F(baseline) by more than the tolerance."""
    worst = float(np.max(result.relative_delta)) if result.relative_delta.size else float("nan")
    if result.rule == "adaptive":
        fix = ("raise the step budget (adaptive) on the Home page; the adaptive rule stopped at "
               f"{result.points_evaluated} path points")
    else:
        fix = (f"the {result.rule} rule used {result.steps_used} steps: choose the adaptive rule on the Home "
               "page (it refines the path until the tolerance is met) or raise the steps")
    return (f"The word attributions miss F(text) - F(baseline) by {100 * worst:.2f}% "
            f"(tolerance {100 * result.tolerance:g}%). To fix: {fix}.")
