"""Train the PTB LSTM language model (Zaremba et al. 2014) and write a checkpoint with its card.

    python -m models.language.train --config small --out models/language/checkpoints/small.pt

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

from models.language import checkpoint as ckpt
from models.language.lstm import CONFIGS, LSTMConfig, LSTMLanguageModel
from models.language.ptb import Vocabulary, ensure_ptb, load_corpus

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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="small")
    ap.add_argument("--out", type=pathlib.Path, required=True, help="checkpoint path (.pt); the card is written beside it (.md)")
    ap.add_argument("--epochs", type=int, default=None, help="default: the config's (13 small, 39 medium)")
    ap.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda, cuda:1 ...")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--train-tokens", type=int, default=None, help="use only the first N training tokens (smoke runs)")
    ap.add_argument("--data-dir", type=pathlib.Path, default=None, help="default: $IG_DATA_DIR (PTB in its ptb/ folder)")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available()
                          else ("cpu" if args.device == "auto" else args.device))
    torch.manual_seed(args.seed)
    hp = dict(CONFIGS[args.config])
    epochs = args.epochs if args.epochs is not None else hp["epochs"]
    start_wall = time.time()
    started = datetime.datetime.now(datetime.timezone.utc)

    def log(msg: str) -> None:
        print(f"[{time.time() - start_wall:7.0f}s] {msg}", flush=True)

    paths = ensure_ptb(args.data_dir)
    vocab = Vocabulary.from_file(paths["train"])
    train = load_corpus(paths["train"], vocab)
    if args.train_tokens:
        train = train[: args.train_tokens]
    valid = load_corpus(paths["valid"], vocab)
    test = load_corpus(paths["test"], vocab)
    log(f"PTB: vocab {len(vocab)}, train {train.numel()} valid {valid.numel()} test {test.numel()} tokens; "
        f"config {args.config} {hp}; epochs {epochs}; device {device}; threads {torch.get_num_threads()}")

    config = LSTMConfig.named(args.config, vocab_size=len(vocab))
    model = LSTMLanguageModel(config).to(device)
    model.init_uniform(hp["init_scale"])
    rows = batchify(train, hp["batch_size"]).to(device)
    history = []
    for epoch in range(1, epochs + 1):
        lr = hp["lr"] * hp["lr_decay"] ** max(epoch - hp["decay_after"], 0)
        t0 = time.time()
        train_ppl = train_epoch(model, rows, hp, lr, device, log, epoch)
        epoch_s = time.time() - t0
        valid_ppl = evaluate(model, valid, batch_size=hp["batch_size"], bptt=hp["bptt"], device=device)
        history.append(dict(epoch=epoch, lr=lr, train_ppl=round(train_ppl, 2), valid_ppl=round(valid_ppl, 2),
                            seconds=round(epoch_s, 1)))
        log(f"epoch {epoch}/{epochs} lr {lr:.4g} train ppl {train_ppl:.2f} valid ppl {valid_ppl:.2f} "
            f"({epoch_s / 60:.1f} min)")

    # Measure on exactly what is saved: half-precision weights, loaded back as float32.
    state = ckpt.half_state_dict(model)
    final = LSTMLanguageModel(config)
    final.load_state_dict({k: v.float() for k, v in state.items()})
    final.to(device)
    log("evaluating the saved weights with batch size 1 ...")
    metrics = dict(
        valid_ppl=round(evaluate(final, valid, device=device), 2),
        test_ppl=round(evaluate(final, test, device=device), 2),
        test_slice_tokens=TEST_SLICE_TOKENS,
        test_slice_ppl=round(evaluate(final, test[:TEST_SLICE_TOKENS], device=device), 3),
    )
    wall = time.time() - start_wall
    device_name = (torch.cuda.get_device_name(device) if device.type == "cuda"
                   else f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)")
    command = "python -m models.language.train " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    training = dict(config_name=args.config, epochs=epochs, hyperparameters=hp, seed=args.seed,
                    train_tokens=int(train.numel()), history=history, command=command,
                    wall_seconds=round(wall, 1), device=device_name, torch=str(torch.__version__),
                    date=started.strftime("%Y-%m-%d %H:%M UTC"))
    ckpt.save(args.out, state, vocab.words, config, metrics, training)
    card = ckpt.write_card(args.out, config, metrics, training)
    log(f"valid ppl {metrics['valid_ppl']}, test ppl {metrics['test_ppl']} "
        f"(test slice {TEST_SLICE_TOKENS} tokens: {metrics['test_slice_ppl']}); wall {wall / 60:.1f} min")
    log(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB) and {card}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
