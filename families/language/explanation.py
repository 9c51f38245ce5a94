"""What the Language page shows for one text: the words' integrated gradients, the saturation curve and the interior
gradients of the next word's probability (paper Section 3.2, Figures 8-10), read from one engine scan.

The counterfactuals scale all the context's embedding vectors together, gamma(alpha) = alpha * E (baseline: all-zero
embeddings), and F is the softmax probability of a target word after the context; where a target is a contrast, "is
rather than are", every target of the scan is explained on log-probabilities and the contrast's F is
log P(is | text) - log P(are | text) (explained_score says which F a target has).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from families.contract import Explanation, target_label
from families.language import TokenizedText
from ig_core import Attribution, Contrast, ScanSettings

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
    """Everything the page shows for one text; targets are word ids (or contrasts of two), target_names the words ("is
    rather than are" for a contrast); arrays indexed [target t], [alpha k] (every alpha the scan evaluated, 0 first and
    1 last), [word l]."""

    def __init__(self, attribution: Attribution, targets: Sequence[int | Contrast], vocabulary: Sequence[str],
                 settings: ScanSettings, model_key: str, tokenized: TokenizedText, embeddings: torch.Tensor,
                 top_words: list[tuple[str, float]]):
        super().__init__(attribution, targets, [target_label(vocabulary, t) for t in targets], settings, model_key)
        self.vocabulary = vocabulary  # the model's words by id
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
        """[T] F(text): the softmax probability of each target after the context; in a scan with a contrast, its
        log-probability (the contrast's: a difference of two, explained_score)."""
        return self.score_input

    @property
    def baseline_probability(self) -> np.ndarray:
        """[T] F(zero embeddings), in the units of `probability`."""
        return self.score_baseline

    def explained_score(self, t: int) -> str:
        """What F is for the t-th target: "P(than | text)"; in a scan with a contrast, where every target is explained
        on log-probabilities, "log P(to | text)", and for the contrast itself "log P(is | text) - log P(are | text)"."""
        word, other = self.vocabulary[self.targets[t]], self.rather_than[t]
        if not self.contrasted:
            return f"P({word} | text)"
        return f"log P({word} | text)" + ("" if other is None else f" - log P({self.vocabulary[other]} | text)")

    @property
    def nothing_to_attribute(self) -> np.ndarray:
        """[T] F(text) = F(baseline) up to rounding (set by the engine)."""
        return self.nothing_per_target()

    @property
    def gradient_x_input(self) -> np.ndarray:
        """[T, L] gradient x input at the text (alpha = 1) per word (GRADIENT_QUANTITY)."""
        return self.interior_gradient_x_input[-1]

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

