"""Measurements of the Language page's attributions: ``python -m families.language.evaluate``.

1. The paper's two examples (Figures 9 and 10): the probability of the target, each word's integrated
   gradients and gradient x input, the relative completeness error, and a check of the word
   attributions against a fine fixed grid (trapezoid, 2048 steps).
2. Completeness over random 10-word windows of the PTB test set (fixed seed), target the word that
   follows in the corpus (as in Figure 8), at the default scan settings (ScanSettings()).
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from families.language import DEFAULT_CHECKPOINT, load_language_model
from families.language.attribution import explain_next_word
from families.language.family import FAMILY, loaded_language_model
from families.language.ptb import Token, TokenizedText, ensure_ptb, load_corpus
from ig_core import AttributionEngine, ScanSettings

EXAMPLES = (("the shareholders claimed more", "than"),
            ("and N minutes after the ual trading halt came news that the", "ual"))
REFERENCE = ScanSettings(rule="trapezoid", steps=2048)


def examples(engine, lm, settings: ScanSettings) -> None:
    for text, target in EXAMPLES:
        t0 = time.perf_counter()
        r = explain_next_word(engine, lm, text, [target], settings)
        seconds = time.perf_counter() - t0
        ref = explain_next_word(engine, lm, r.tokenized, [target], REFERENCE)
        top = r.top_words[0][0]
        print(f"\n{text!r} -> {target!r}  (model's top word: {top!r})")
        print(f"  P({target} | text) = {r.probability[0]:.4g}; "
              f"P({target} | zero embeddings) = {r.baseline_probability[0]:.3g}")
        scale = 1.0 if r.probability[0] >= 0.01 else 1e3  # Figure 10 prints its values times 1e3
        unit = "" if scale == 1.0 else " (x1e-3)"
        print(f"  {'word':>14} {'IG' + unit:>14} {'IG ref 2048' + unit:>18} {'grad x input' + unit:>20}")
        for w, a, b, g in zip(r.words, r.word_attributions[0], ref.word_attributions[0], r.gradient_x_input[0]):
            print(f"  {w:>14} {a * scale:14.4f} {b * scale:18.4f} {g * scale:20.5f}")
        print(f"  total IG {r.total_attribution[0]:.4g} vs F(text) - F(baseline) "
              f"{r.probability[0] - r.baseline_probability[0]:.4g}: relative completeness error "
              f"{r.relative_delta[0]:.2e} ({r.attribution.rule}, {r.attribution.steps_used} steps, {seconds:.2f} s); "
              f"max |IG - IG ref| = {np.max(np.abs(r.word_attributions - ref.word_attributions)):.2e}")


def windows(engine, lm, settings: ScanSettings, count: int, length: int, seed: int) -> None:
    corpus = load_corpus(ensure_ptb(allow_download=False)["test"], lm.vocab).numpy()
    rng = np.random.default_rng(seed)
    starts = rng.choice(len(corpus) - length - 1, size=count, replace=False)
    rel, steps, probs, t0 = [], [], [], time.perf_counter()
    model = loaded_language_model(lm)  # loaded on the engine's device by main()
    for s in starts:
        ids, target = corpus[s:s + length], int(corpus[s + length])
        tokens = tuple(Token(lm.vocab.words[i], int(i), k, "word") for k, i in enumerate(ids))
        context = TokenizedText(tokens, (), (), 0)
        r = FAMILY.explain(engine, model, context, [target], settings)
        rel.append(float(r.relative_delta[0]))
        steps.append(r.attribution.steps_used)
        probs.append(float(r.probability[0]))
    rel, steps, probs = np.array(rel), np.array(steps), np.array(probs)
    q = lambda a, p: float(np.percentile(a, p))
    print(f"\n{count} random {length}-word windows of the PTB test set (seed {seed}), target = the next word in the "
          f"corpus, settings {settings}:")
    print(f"  relative completeness error: median {np.median(rel):.2e}, 90th percentile {q(rel, 90):.2e}, "
          f"max {rel.max():.2e}; within tolerance {settings.tolerance:g}: {np.mean(rel <= settings.tolerance):.1%}")
    print(f"  steps used: median {np.median(steps):.0f}, 90th percentile {q(steps, 90):.0f}, max {steps.max()}")
    print(f"  target probability: median {np.median(probs):.3g}; "
          f"{time.perf_counter() - t0:.1f} s in all on {engine.device_name}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(DEFAULT_CHECKPOINT))
    parser.add_argument("--windows", type=int, default=200)
    parser.add_argument("--length", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    args = parser.parse_args(argv)
    engine = AttributionEngine(device=args.device)
    lm = load_language_model(args.checkpoint, device=engine.device)
    settings = ScanSettings()
    print(f"{lm.name}: test perplexity {lm.metrics.get('test_ppl', float('nan')):.2f}; {engine.device_name}")
    examples(engine, lm, settings)
    windows(engine, lm, settings, args.windows, args.length, args.seed)


if __name__ == "__main__":
    main()
