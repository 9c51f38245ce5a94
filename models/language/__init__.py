"""LSTM language model for the language page (paper Section 3.2): Penn Treebank, or an own corpus.

    lm = load_language_model("models/language/checkpoints/small.pt")
    text = lm.tokenize("the shareholders claimed more")       # TokenizedText (raises TextError)
    emb = lm.model.embed_tokens(text.ids)                       # [1, T, D]
    logits = lm.forward(emb.expand(K, -1, -1) * alphas)         # [K, vocab]; target = next word id
"""
from __future__ import annotations

import dataclasses
import pathlib

import torch

from models.data import models_dir
from models.language.checkpoint import CheckpointError
from models.language.lstm import EmbeddedForward, LSTMConfig, LSTMLanguageModel
from models.language.ptb import PTB_CORPUS, TextError, TokenizedText, Vocabulary, tokenize

DEFAULT_CHECKPOINT = pathlib.Path(__file__).parent / "checkpoints" / "small.pt"
OWN_FOLDER = "language"  # own checkpoints: <models folder>/language/*.pt

__all__ = [
    "CheckpointError", "DEFAULT_CHECKPOINT", "EmbeddedForward", "LSTMConfig", "LSTMLanguageModel",
    "LanguageModel", "OWN_FOLDER", "TextError", "TokenizedText", "Vocabulary", "checkpoint_choices",
    "load_language_model", "tokenize",
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
    training = payload.get("training")
    training = training if isinstance(training, dict) else {}
    corpus = training.get("corpus")  # absent in checkpoints trained before own corpora: Penn Treebank
    description = corpus.get("description") if isinstance(corpus, dict) else None
    try:
        vocab = Vocabulary(payload["vocab"], corpus=str(description or PTB_CORPUS))
    except ValueError as exc:
        raise CheckpointError(f"{path.name}: bad vocabulary: {exc}") from exc
    model.eval().requires_grad_(False).to(device)
    metrics = payload.get("metrics")
    return LanguageModel(model=model, vocab=vocab, metrics=dict(metrics) if isinstance(metrics, dict) else {},
                         training=training, path=path)


def checkpoint_choices(default: "str | pathlib.Path" = DEFAULT_CHECKPOINT) -> dict[str, pathlib.Path]:
    """Shown name -> file: the default checkpoint, then the own ones in ``<models folder>/language/``
    (``python -m models.language.train --train ... --out`` there). Names only, never folders, for the browser."""
    default = pathlib.Path(default)
    choices = {f"{default.name} (default)": default}
    folder = models_dir() / OWN_FOLDER
    for path in sorted(folder.glob("*.pt")) if folder.is_dir() else ():
        if path.resolve() != default.resolve():
            choices[path.name] = path
    return choices
