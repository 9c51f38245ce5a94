"""PTB LSTM language model for the language page (paper Section 3.2).

    lm = load_language_model("models/language/checkpoints/small.pt")
    text = lm.tokenize("the shareholders claimed more")       # TokenizedText (raises TextError)
    emb = lm.model.embed_tokens(text.ids)                       # [1, T, D]
    logits = lm.forward(emb.expand(K, -1, -1) * alphas)         # [K, vocab]; target = next word id
"""
from __future__ import annotations

import dataclasses
import pathlib

import torch

from models.language.checkpoint import CheckpointError
from models.language.lstm import EmbeddedForward, LSTMConfig, LSTMLanguageModel
from models.language.ptb import TextError, TokenizedText, Vocabulary, tokenize

DEFAULT_CHECKPOINT = pathlib.Path(__file__).parent / "checkpoints" / "small.pt"

__all__ = [
    "CheckpointError", "DEFAULT_CHECKPOINT", "EmbeddedForward", "LSTMConfig", "LSTMLanguageModel",
    "LanguageModel", "TextError", "TokenizedText", "Vocabulary", "load_language_model", "tokenize",
]


@dataclasses.dataclass
class LanguageModel:
    """A loaded checkpoint: model (eval mode, frozen, float32), vocabulary and its record."""

    model: LSTMLanguageModel
    vocab: Vocabulary
    metrics: dict
    training: dict
    path: pathlib.Path

    def __post_init__(self):
        self.forward = EmbeddedForward(self.model)  # forward(emb [K, T, D]) -> logits [K, V]

    def tokenize(self, text: str, **kwargs) -> TokenizedText:
        return tokenize(text, self.vocab, **kwargs)

    def embed(self, ids) -> torch.Tensor:
        """Context word ids -> embeddings [1, T, D] (no gradient: the parameters are frozen)."""
        return self.model.embed_tokens(ids).detach()

    def to(self, device) -> "LanguageModel":
        self.model.to(device)
        return self


def load_language_model(path=DEFAULT_CHECKPOINT, device="cpu") -> LanguageModel:
    """Load a checkpoint written by ``python -m models.language.train`` (torch.load weights_only=True).

    Raises CheckpointError (a ValueError) with a readable reason for a missing file, a file that is
    not a checkpoint, one that needs unsafe unpickling, or one whose weights do not fit the model.
    """
    from models.language import checkpoint

    path = pathlib.Path(path)
    payload = checkpoint.read(path)
    model = checkpoint.build(payload, path)
    try:
        vocab = Vocabulary(payload["vocab"])
    except ValueError as exc:
        raise CheckpointError(f"{path}: bad vocabulary: {exc}") from exc
    model.eval().requires_grad_(False).to(device)
    return LanguageModel(model=model, vocab=vocab, metrics=dict(payload.get("metrics") or {}),
                         training=dict(payload.get("training") or {}), path=path)
