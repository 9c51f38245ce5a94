"""What a text's integrated gradients start from: its token embeddings scaled towards a baseline of the same shape.

- "zeros" (the default, the paper's and the LSTM's): all-zero embeddings.
- "eos", "pad", "unk": that special token's embedding at every position, where the model's tokenizer has the token
  (a language model's `baseline_tokens()`; the LSTM's vocabulary has <eos> and <unk>).

The choice travels with the text (TokenizedText.baseline), so it is part of what is explained: the engine's cache,
the page's request and a dataset run's input options (TextWindows' --baseline) all see it.
"""
from __future__ import annotations

import torch

from families.language.ptb import TextError, TokenizedText

ZEROS = "zeros"
LABELS = {ZEROS: "zero embeddings", "eos": "eos-token embeddings", "pad": "pad-token embeddings",
          "unk": "unk-token embeddings"}  # F(baseline) reads "F(zero embeddings)", ...


def offered(lm) -> dict[str, str]:
    """The baselines a language model can start from, by name, each with what it is for people."""
    named = {ZEROS: "zero embeddings"}
    for role, token in lm.baseline_tokens().items():
        named[role] = f"the {role} token {lm.vocab.words[token]} at every position"
    return named


def baseline_embeddings(lm, item: TokenizedText, embeddings: torch.Tensor) -> torch.Tensor:
    """The baseline of the item's embeddings [1, L, D] (float32, on their device); TextError (an InputError) for a
    token the model has no token for."""
    if item.baseline == ZEROS:
        return torch.zeros_like(embeddings)
    token = lm.baseline_tokens().get(item.baseline)
    if token is None:
        raise TextError(f"This model has no {item.baseline} token to start from; it offers "
                        f"{', '.join(offered(lm))}.")
    return lm.embed([token] * len(item)).float()
