"""Train the LSTM language model (Zaremba et al. 2014) and write a checkpoint with its card.

    python -m families.language.train --config small --out families/language/checkpoints/small.pt
    python -m families.language.train --train my_train.txt --valid my_valid.txt --out my_model.pt

Without --train: Penn Treebank ($IG_DATA_DIR/ptb). With --train/--valid: an own corpus, one sentence
(or paragraph) per line, tokenized by the rules the Language page applies to the user's text
(families.language.ptb.read_text_tokens); the vocabulary is its --vocab-size most frequent tokens,
<unk>, <eos> and N included, and is stored in the checkpoint.

Truncated backpropagation through time over the training text cut into ``batch_size`` parallel
streams; plain SGD (lr 1, halved after epoch 4 for "small"), gradient norm clipped at 5, loss
summed over the unrolled steps and averaged over the batch, uniform initialisation. Valid and test
perplexity are measured at the end with batch size 1 on the saved (half precision) weights.
"""
from __future__ import annotations

import argparse
import datetime
import math
import pathlib
import platform
import shlex
import sys
import time

import torch
import torch.nn.functional as F

from families.language import checkpoint as ckpt
from families.language.lstm import CONFIGS, LSTMConfig, LSTMLanguageModel
from families.language.ptb import VOCAB_SIZE, Vocabulary, ensure_ptb, load_corpus, read_text_tokens

TEST_SLICE_TOKENS = 5000  # the card's "test slice" perplexity: first tokens of ptb.test.txt


def batchify(data: torch.Tensor, batch_size: int) -> torch.Tensor:
    """[N] -> [batch_size, N // batch_size]: row b is the b-th contiguous stretch of the text."""
    n = data.numel() // batch_size
    return data[: n * batch_size].view(batch_size, n)


def _detach(state):
    return tuple(s.detach() for s in state)


@torch.no_grad()
def evaluate(model: LSTMLanguageModel, data: torch.Tensor, batch_size: int = 1, bptt: int = 100,
             device: "str | torch.device" = "cpu") -> float:
    """Perplexity of ``data`` (1-D ids), state carried over the whole text."""
    was_training = model.training
    model.eval()
    rows = batchify(data, batch_size).to(device)
    state = model.init_state(batch_size, device=device)
    total, count = 0.0, 0
    for i in range(0, rows.shape[1] - 1, bptt):
        x = rows[:, i: i + bptt]
        y = rows[:, i + 1: i + 1 + bptt]
        x = x[:, : y.shape[1]]
        logits, state = model(x, state)
        total += F.cross_entropy(logits.float().reshape(-1, logits.shape[-1]), y.reshape(-1),
                                 reduction="sum").item()
        count += y.numel()
    model.train(was_training)
    return math.exp(total / count)


def train_epoch(model, rows, hp, lr, device, log, epoch) -> float:
    model.train()
    state = model.init_state(rows.shape[0], device=device)
    bptt = hp["bptt"]
    n_steps = (rows.shape[1] - 1) // bptt
    total, count, t0 = 0.0, 0, time.time()
    params = [p for p in model.parameters()]
    for step, i in enumerate(range(0, n_steps * bptt, bptt)):
        x = rows[:, i: i + bptt]
        y = rows[:, i + 1: i + 1 + bptt]
        state = _detach(state)
        logits, state = model(x, state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        model.zero_grad(set_to_none=True)
        (loss * bptt).backward()  # Zaremba: sum over the unrolled steps, mean over the batch
        torch.nn.utils.clip_grad_norm_(params, hp["clip"])
        with torch.no_grad():
            for p in params:
                p.add_(p.grad, alpha=-lr)
        total += loss.item() * y.numel()
        count += y.numel()
        if step % max(1, n_steps // 10) == 0 and step:
            rate = (time.time() - t0) / step
            log(f"  epoch {epoch} step {step}/{n_steps} train ppl {math.exp(total / count):.1f} "
                f"({rate * 1000:.0f} ms/step, epoch ETA {rate * (n_steps - step) / 60:.1f} min)")
    return math.exp(total / count)


def load_own_corpus(train_file, valid_file, vocab_size: int = VOCAB_SIZE):
    """(vocabulary, train ids, valid ids, corpus record) of an analyst's own text files."""
    train_file, valid_file = pathlib.Path(train_file), pathlib.Path(valid_file)
    train_tokens = read_text_tokens(train_file)
    if len(train_tokens) < 2:
        raise ValueError(f"{train_file.name} holds no words to train on")
    vocab = Vocabulary.most_frequent(train_tokens, vocab_size, corpus=f"the text {train_file.name}")
    valid = torch.tensor(vocab.encode(read_text_tokens(valid_file)), dtype=torch.long)
    if valid.numel() < 2:
        raise ValueError(f"{valid_file.name} holds no words to measure the perplexity on")
    corpus = dict(description=vocab.corpus, train=train_file.name, valid=valid_file.name, vocab_size=len(vocab))
    return vocab, torch.tensor(vocab.encode(train_tokens), dtype=torch.long), valid, corpus


def load_ptb(data_dir=None):
    """(vocabulary, train ids, valid ids, test ids, corpus record) of the Penn Treebank."""
    paths = ensure_ptb(data_dir)
    vocab = Vocabulary.from_file(paths["train"])
    corpus = dict(description=vocab.corpus, train=paths["train"].name, valid=paths["valid"].name,
                  test=paths["test"].name, vocab_size=len(vocab))
    return (vocab, load_corpus(paths["train"], vocab), load_corpus(paths["valid"], vocab),
            load_corpus(paths["test"], vocab), corpus)


def train(out, config: str = "small", epochs: "int | None" = None, device="cpu", seed: int = 1234,
          train_file=None, valid_file=None, vocab_size: int = VOCAB_SIZE, train_tokens: "int | None" = None,
          data_dir=None, command: str = "", log=print) -> dict:
    """Train, write the checkpoint ``out`` and its card, and return the metrics (valid, and test for PTB).

    train_file/valid_file: an own corpus (both or neither); without them the Penn Treebank.
    """
    device = torch.device(device)
    torch.manual_seed(seed)
    hp = dict(CONFIGS[config])
    epochs = epochs if epochs is not None else hp["epochs"]
    start_wall = time.time()
    started = datetime.datetime.now(datetime.timezone.utc)

    if train_file is not None:
        vocab, train_ids, valid, corpus = load_own_corpus(train_file, valid_file, vocab_size)
        test = None
    else:
        vocab, train_ids, valid, test, corpus = load_ptb(data_dir)
    if train_tokens:
        train_ids = train_ids[:train_tokens]
    log(f"{corpus['train']}: vocab {len(vocab)}, train {train_ids.numel()} valid {valid.numel()} tokens; "
        f"config {config} {hp}; epochs {epochs}; device {device}; threads {torch.get_num_threads()}")

    model_config = LSTMConfig.named(config, vocab_size=len(vocab))
    model = LSTMLanguageModel(model_config).to(device)
    model.init_uniform(hp["init_scale"])
    rows = batchify(train_ids, hp["batch_size"]).to(device)
    if rows.shape[1] <= hp["bptt"]:
        raise ValueError(f"the training text is too short: {train_ids.numel()} tokens, at least "
                         f"{hp['batch_size'] * (hp['bptt'] + 1)} needed for config {config}")
    history = []
    for epoch in range(1, epochs + 1):
        lr = hp["lr"] * hp["lr_decay"] ** max(epoch - hp["decay_after"], 0)
        t0 = time.time()
        train_ppl = train_epoch(model, rows, hp, lr, device, log, epoch)
        epoch_s = time.time() - t0
        # a short own validation text still gives every one of the batch's rows two tokens
        valid_batch = max(1, min(hp["batch_size"], valid.numel() // 2))
        valid_ppl = evaluate(model, valid, batch_size=valid_batch, bptt=hp["bptt"], device=device)
        history.append(dict(epoch=epoch, lr=lr, train_ppl=round(train_ppl, 2), valid_ppl=round(valid_ppl, 2),
                            seconds=round(epoch_s, 1)))
        log(f"epoch {epoch}/{epochs} lr {lr:.4g} train ppl {train_ppl:.2f} valid ppl {valid_ppl:.2f} "
            f"({epoch_s / 60:.1f} min)")

    # Measure on exactly what is saved: half-precision weights, loaded back as float32.
    state = ckpt.half_state_dict(model)
    final = LSTMLanguageModel(model_config)
    final.load_state_dict({k: v.float() for k, v in state.items()})
    final.to(device)
    log("evaluating the saved weights with batch size 1 ...")
    metrics = dict(valid_ppl=round(evaluate(final, valid, device=device), 2))
    if test is not None:
        metrics.update(test_ppl=round(evaluate(final, test, device=device), 2), test_slice_tokens=TEST_SLICE_TOKENS,
                       test_slice_ppl=round(evaluate(final, test[:TEST_SLICE_TOKENS], device=device), 3))
    wall = time.time() - start_wall
    device_name = (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)")
    training = dict(config_name=config, epochs=epochs, hyperparameters=hp, seed=seed, corpus=corpus,
                    train_tokens=int(train_ids.numel()), history=history, command=command,
                    wall_seconds=round(wall, 1), device=device_name, torch=str(torch.__version__),
                    date=started.strftime("%Y-%m-%d %H:%M UTC"))
    out = ckpt.save(out, state, vocab.words, model_config, metrics, training)
    card = ckpt.write_card(out, model_config, metrics, training)
    log(f"perplexity {metrics}; wall {wall / 60:.1f} min")
    log(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB) and {card}")
    return metrics


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="small")
    ap.add_argument("--out", type=pathlib.Path, required=True,
                    help="checkpoint path (.pt); the card is written beside it (.md)")
    ap.add_argument("--train", type=pathlib.Path, default=None,
                    help="own training text (UTF-8, one sentence or paragraph per line); default: Penn Treebank")
    ap.add_argument("--valid", type=pathlib.Path, default=None, help="own validation text (required with --train)")
    ap.add_argument("--vocab-size", type=int, default=VOCAB_SIZE,
                    help="with --train: vocabulary size, <unk>, <eos> and N included (default 10,000)")
    ap.add_argument("--epochs", type=int, default=None, help="default: the config's (13 small, 39 medium, 6 tiny)")
    ap.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--train-tokens", type=int, default=None, help="use only the first N training tokens (smoke runs)")
    ap.add_argument("--data-dir", type=pathlib.Path, default=None,
                    help="default: $IG_DATA_DIR (PTB in its ptb/ folder)")
    args = ap.parse_args(argv)
    if (args.train is None) != (args.valid is None):
        ap.error("--train and --valid go together")
    for path in (args.train, args.valid):
        if path is not None and not path.is_file():
            ap.error(f"no such file: {path}")

    if args.threads:
        torch.set_num_threads(args.threads)
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    start_wall = time.time()

    def log(msg: str) -> None:
        print(f"[{time.time() - start_wall:7.0f}s] {msg}", flush=True)

    command = "python -m families.language.train " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    try:
        train(args.out, config=args.config, epochs=args.epochs, device=device, seed=args.seed, train_file=args.train,
              valid_file=args.valid, vocab_size=args.vocab_size, train_tokens=args.train_tokens,
              data_dir=args.data_dir, command=command, log=log)
    except ValueError as exc:  # a corpus too small, a vocabulary size too small: say so, no traceback
        ap.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
