"""LSTM language model for the language page (paper Section 3.2): Penn Treebank, or an own corpus.

    lm = load_language_model("families/language/checkpoints/small.pt")
    text = lm.tokenize("the shareholders claimed more")       # TokenizedText (raises TextError)
    emb = lm.model.embed_tokens(text.ids)                       # [1, T, D]
    logits = lm.forward(emb.expand(K, -1, -1) * alphas)         # [K, vocab]; target = next word id

A Hugging Face model folder is read through an object with the same interface
(families.language.hugging_face.HuggingFaceLanguageModel).
"""
from __future__ import annotations

import dataclasses
import pathlib

import torch

from families.language import checkpoint
from families.language.checkpoint import CheckpointError
from families.language.lstm import EmbeddedForward, LSTMConfig, LSTMLanguageModel
from families.language.ptb import (
    EOS,
    PTB_CORPUS,
    UNK,
    TextError,
    TokenizedText,
    Vocabulary,
    tokenize,
    window_tokens,
)

DEFAULT_CHECKPOINT = pathlib.Path(__file__).parent / "checkpoints" / "small.pt"

__all__ = [
    "CheckpointError", "DEFAULT_CHECKPOINT", "EmbeddedForward", "LSTMConfig", "LSTMLanguageModel",
    "LanguageModel", "TextError", "TokenizedText", "Vocabulary", "language_model", "load_language_model", "tokenize",
]


@dataclasses.dataclass
class LanguageModel:
    """A loaded checkpoint: model (eval mode, frozen, float32), vocabulary and its record."""

    model: LSTMLanguageModel
    vocab: Vocabulary
    metrics: dict
    training: dict
    name: str  # the file's name as the user knows it (never its folder)

    def __post_init__(self):
        self.forward = EmbeddedForward(self.model)  # forward(emb [K, T, D]) -> logits [K, V]

    def tokenize(self, text: str, **kwargs) -> TokenizedText:
        return tokenize(text, self.vocab, **kwargs)

    def window_tokens(self, words) -> TokenizedText:
        """A dataset run's window of corpus tokens, each as it is (families.language.ptb.window_tokens)."""
        return window_tokens(self.vocab, words)

    def next_token_id(self, words, next_word: str) -> int:
        """The id of the word after a window (<unk>'s for a word outside the vocabulary)."""
        return self.vocab.id(next_word)

    def baseline_tokens(self) -> dict[str, int]:
        """The vocabulary's <eos> and <unk>, whose embedding at every position may be the baseline; zero embeddings
        (the paper's) stay the default."""
        return {role: self.vocab.index[word] for role, word in (("eos", EOS), ("unk", UNK)) if word in self.vocab.index}

    def embed(self, ids) -> torch.Tensor:
        """Context word ids -> embeddings [1, T, D] (no gradient: the parameters are frozen)."""
        return self.model.embed_tokens(ids).detach()

    def to(self, device) -> "LanguageModel":
        self.model.to(device)
        return self


def language_model(source: bytes | pathlib.Path, name: str, device="cpu") -> LanguageModel:
    """The language model of a checkpoint's bytes or file (families.language.checkpoint.read: nothing in it runs).

    Raises CheckpointError (a ValueError) with a readable reason naming the file only: not a torch file, one
    that needs unsafe unpickling, another format, or weights that do not fit the model.
    """
    payload = checkpoint.read(source, name)
    model = checkpoint.build(payload, name)
    training = payload.get("training")
    training = training if isinstance(training, dict) else {}
    corpus = training.get("corpus")  # absent in checkpoints trained before own corpora: Penn Treebank
    description = corpus.get("description") if isinstance(corpus, dict) else None
    try:
        vocab = Vocabulary(payload["vocab"], corpus=str(description or PTB_CORPUS))
    except ValueError as exc:
        raise CheckpointError(f"{name}: bad vocabulary: {exc}") from None
    model.eval().requires_grad_(False).to(device)
    metrics = payload.get("metrics")
    return LanguageModel(model=model, vocab=vocab, metrics=dict(metrics) if isinstance(metrics, dict) else {},
                         training=training, name=name)


def load_language_model(path=DEFAULT_CHECKPOINT, device="cpu") -> LanguageModel:
    """Load a checkpoint written by ``python -m families.language.train`` (see language_model)."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(f"no language-model checkpoint named {path.name}")
    return language_model(path, path.name, device)
