"""Word-level LSTM language model after Zaremba, Sutskever and Vinyals (2014).

Embedding -> 2-layer LSTM -> linear decoder over the vocabulary. For attribution the model also
takes the context's embedding vectors directly (``forward_embedded``), so that integrated gradients
can scale them by alpha (paper Section 3.2: the baseline is all-zero embeddings).
"""
from __future__ import annotations

import contextlib
import dataclasses

import torch
from torch import nn

CONFIGS: dict[str, dict] = {
    # Zaremba et al. 2014: small 2x200 no dropout (test ppl 114.5), medium 2x650 dropout 0.5 (82.7)
    "small": dict(dim=200, layers=2, dropout=0.0, init_scale=0.1, lr=1.0, lr_decay=0.5,
                  decay_after=4, epochs=13, batch_size=20, bptt=20, clip=5.0),
    "medium": dict(dim=650, layers=2, dropout=0.5, init_scale=0.05, lr=1.0, lr_decay=0.8,
                   decay_after=6, epochs=39, batch_size=20, bptt=35, clip=5.0),
    # a seconds-long run on a small own corpus (tests, trying the command out)
    "tiny": dict(dim=32, layers=1, dropout=0.0, init_scale=0.1, lr=1.0, lr_decay=0.5,
                 decay_after=4, epochs=6, batch_size=20, bptt=20, clip=5.0),
}


@dataclasses.dataclass(frozen=True)
class LSTMConfig:
    vocab_size: int = 10_000
    dim: int = 200
    layers: int = 2
    dropout: float = 0.0

    @classmethod
    def named(cls, name: str, vocab_size: int = 10_000) -> "LSTMConfig":
        c = CONFIGS[name]
        return cls(vocab_size=vocab_size, dim=c["dim"], layers=c["layers"], dropout=c["dropout"])

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _no_cudnn(t: torch.Tensor):
    """cuDNN's LSTM backward refuses to run in eval mode: use the native kernels on the GPU."""
    if t.is_cuda:
        return torch.backends.cudnn.flags(enabled=False)
    return contextlib.nullcontext()


class LSTMLanguageModel(nn.Module):
    def __init__(self, config: LSTMConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(config.vocab_size, config.dim)
        self.drop = nn.Dropout(config.dropout)
        self.lstm = nn.LSTM(config.dim, config.dim, num_layers=config.layers,
                            dropout=config.dropout if config.layers > 1 else 0.0, batch_first=True)
        self.decoder = nn.Linear(config.dim, config.vocab_size)

    def init_uniform(self, scale: float) -> None:
        for p in self.parameters():
            nn.init.uniform_(p, -scale, scale)

    def init_state(self, batch: int, device=None, dtype=None):
        shape = (self.config.layers, batch, self.config.dim)
        p = self.decoder.weight
        z = torch.zeros(shape, device=device or p.device, dtype=dtype or p.dtype)
        return (z, z.clone())

    def forward(self, ids: torch.Tensor, state=None):
        """ids [B, T] -> (logits [B, T, V], state). Used for training and perplexity."""
        return self.forward_sequence(self.embed(ids), state)

    def forward_sequence(self, emb: torch.Tensor, state=None):
        """Embeddings [B, T, D] -> (logits at every position [B, T, V], final state)."""
        out, state = self.lstm(self.drop(emb), state)
        return self.decoder(self.drop(out)), state

    def embed_tokens(self, ids) -> torch.Tensor:
        """Word ids (list or [T] or [B, T] tensor) -> embeddings [B, T, D] (B = 1 for 1-D input)."""
        ids = torch.as_tensor(ids, dtype=torch.long, device=self.embed.weight.device)
        if ids.dim() == 1:
            ids = ids.unsqueeze(0)
        return self.embed(ids)

    def forward_embedded(self, emb: torch.Tensor) -> torch.Tensor:
        """Embeddings of the context [B, T, D] -> next-word logits [B, V] after the last word.

        The state starts at zero (the context is read from scratch). Differentiable with respect
        to ``emb`` on CPU and GPU, also in eval mode (cuDNN is switched off on the GPU).
        """
        if emb.dim() != 3 or emb.shape[-1] != self.config.dim:
            raise ValueError(f"expected embeddings [batch, seq_len, {self.config.dim}], got {tuple(emb.shape)}")
        if emb.shape[1] == 0:
            raise ValueError("the context must hold at least one word")
        with _no_cudnn(emb):
            out, _ = self.lstm(self.drop(emb))
        return self.decoder(self.drop(out[:, -1]))

    @torch.no_grad()
    def next_word_probs(self, ids) -> torch.Tensor:
        """Softmax over the vocabulary for the word after the context ``ids`` -> [V]."""
        return torch.softmax(self.forward_embedded(self.embed_tokens(ids)).float(), -1)[0]


class EmbeddedForward(nn.Module):
    """The attribution view of a language model: ``forward(emb [K, T, D]) -> logits [K, V]``.

    What the integrated-gradients engine calls with a batch of alpha-scaled copies of the embedded
    context; the target column is the id of the next word.
    """

    def __init__(self, lm: LSTMLanguageModel):
        super().__init__()
        self.lm = lm

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return self.lm.forward_embedded(emb)
