"""Training the language model on an own corpus: tokenization that agrees with the page's, the vocabulary,
a tiny model that beats a unigram model, and explanations with it (module function and command line)."""
from __future__ import annotations

import collections
import math
import pathlib
import random
import subprocess
import sys

import pytest
import torch

from families.language import TextError, load_language_model
from families.language import attribution as language_attribution
from families.language.ptb import EOS, NUM, UNK, Vocabulary, read_text_tokens, tokenize
from families.language.train import train
from ig_core import AttributionEngine, ScanSettings

pytestmark = pytest.mark.numeric  # completeness and accuracy bounds: CI runs them on the portable kernels too

ROOT = pathlib.Path(__file__).resolve().parents[1]
# A grammar with a clear next-word rule: each animal has its own verb and food.
ANIMALS = {"cat": ("eats", "fish"), "dog": ("chews", "bone"), "bird": ("pecks", "seed"), "cow": ("grazes", "grass")}
ADJECTIVES = ("big", "small", "old", "young", "happy")
VOCAB_SIZE = 30  # the grammar has 23 tokens with <unk>, <eos> and N


def write_corpus(path: pathlib.Path, lines: int, seed: int) -> pathlib.Path:
    """Sentences like "The big cat eats the fish at 7 o'clock." (capitals, numbers, punctuation as typed)."""
    rng = random.Random(seed)
    text = []
    for _ in range(lines):
        animal = rng.choice(sorted(ANIMALS))
        verb, food = ANIMALS[animal]
        text.append(f"The {rng.choice(ADJECTIVES)} {animal} {verb} the {food} at {rng.randint(1, 12)} o'clock.")
    path.write_text("\n".join(text) + "\n", encoding="utf-8")
    return path


def unigram_perplexity(train_ids: list[int], valid_ids: list[int], vocab_size: int) -> float:
    """Perplexity of the validation ids under the training text's word frequencies (add-one smoothing)."""
    counts = collections.Counter(train_ids)
    total = len(train_ids) + vocab_size
    return math.exp(-sum(math.log((counts[i] + 1) / total) for i in valid_ids) / len(valid_ids))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("corpus")
    return (write_corpus(folder / "animals_train.txt", 2000, seed=0),
            write_corpus(folder / "animals_valid.txt", 200, seed=1))


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    """(checkpoint path, metrics) of a tiny model trained for 3 epochs (about a second)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("models") / "language" / "animals.pt"
    metrics = train(out, config="tiny", epochs=3, train_file=corpus[0], valid_file=corpus[1],
                    vocab_size=VOCAB_SIZE, command="(test)", log=lambda msg: None)
    torch.set_num_threads(before)
    return out, metrics


def test_own_text_is_read_like_the_users_text(tmp_path):
    path = tmp_path / "own.txt"
    path.write_text("The Cat's 3 fish. It can't swim!\n\n!!!\nMr. Smith said \u201cyes\u201d\n", encoding="utf-8")
    tokens = read_text_tokens(path)
    assert tokens == ["the", "cat", "'s", NUM, "fish", EOS, "it", "ca", "n't", "swim", EOS,
                      "mr", EOS, "smith", "said", "yes", EOS]  # blank and punctuation-only lines add nothing
    vocab = Vocabulary.most_frequent(tokens, 100, corpus="the text own.txt")
    # the page's tokenizer reads the same line into the same tokens with this vocabulary
    assert tokenize("The Cat's 3 fish. It can't swim!", vocab).texts == tokens[:10]
    assert tokenize("Mr. Smith said \u201cyes\u201d", vocab).texts == tokens[11:16]


def test_vocabulary_is_the_most_frequent_words_with_the_special_tokens():
    tokens = ["a"] * 5 + ["b"] * 3 + ["c"] * 2 + ["d"] + [EOS] * 4
    vocab = Vocabulary.most_frequent(tokens, 5, corpus="the text x.txt")
    assert vocab.words == ["a", EOS, "b", UNK, NUM]  # by frequency, then spelling
    assert vocab.id("c") == vocab.unk_id and vocab.corpus == "the text x.txt"
    with pytest.raises(ValueError, match="at least 4"):
        Vocabulary.most_frequent(tokens, 3, corpus="x")


def test_tiny_model_beats_the_unigram_model_and_explains_a_next_word(corpus, trained, one_thread):
    path, metrics = trained
    raw = torch.load(path, weights_only=True)
    vocab = Vocabulary(raw["vocab"])
    assert raw["training"]["corpus"] == dict(description="the text animals_train.txt", train="animals_train.txt",
                                             valid="animals_valid.txt", vocab_size=len(vocab))
    train_ids = vocab.encode(read_text_tokens(corpus[0]))
    valid_ids = vocab.encode(read_text_tokens(corpus[1]))
    unigram = unigram_perplexity(train_ids, valid_ids, len(vocab))
    print(f"valid perplexity: tiny LSTM {metrics['valid_ppl']}, unigram {unigram:.3f}")
    assert 10 < unigram < 20  # 23 tokens, "the" and <eos> frequent
    assert metrics["valid_ppl"] < unigram / 4  # the grammar leaves about (5 x 4)^(1/10) = 1.35
    card = path.with_suffix(".md").read_text()
    assert "`animals_train.txt`" in card and "`animals_valid.txt`" in card and f"{len(vocab)}-word vocabulary" in card
    assert f"| valid | {metrics['valid_ppl']:.2f} |" in card and "(test)" in card

    lm = load_language_model(path)
    assert lm.vocab.words == vocab.words and lm.vocab.corpus == "the text animals_train.txt"
    result = language_attribution.explain_next_word(AttributionEngine(device="cpu"), lm, "The big cat eats the", None,
                                                    ScanSettings())
    print(f"P(fish) = {result.probability[0]:.3f}, relative completeness error {result.relative_delta[0]:.2e}")
    assert result.target_names == ["fish"] and result.probability[0] > 0.5
    gap = result.probability[0] - result.baseline_probability[0]
    assert abs(result.total_attribution[0] - gap) <= 0.01 * abs(gap) and result.completeness_ok
    with pytest.raises(TextError, match=f"not in the model's {len(vocab)}-word vocabulary"):
        language_attribution.explain_next_word(AttributionEngine(device="cpu"), lm, "the cat", ["than"], ScanSettings())
    with pytest.raises(TextError,
                       match=f"{len(vocab)}-word vocabulary \\(the text animals_train.txt\\)"):
        lm.tokenize("zebras yodel")


def test_command_line_trains_an_own_corpus(corpus, tmp_path):
    out = tmp_path / "cli.pt"
    cmd = [sys.executable, "-m", "families.language.train", "--train", str(corpus[0]), "--valid", str(corpus[1]),
           "--vocab-size", str(VOCAB_SIZE), "--config", "tiny", "--epochs", "1", "--threads", "1", "--device", "cpu",
           "--out", str(out)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lm = load_language_model(out)
    assert len(lm.vocab) == 23 and lm.metrics["valid_ppl"] < 10
    assert lm.training["command"].startswith("python -m families.language.train --train ")
    assert "--vocab-size 30" in out.with_suffix(".md").read_text()

    lonely = subprocess.run(cmd[:5] + ["--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert lonely.returncode == 2 and "--train and --valid go together" in lonely.stderr
    empty = tmp_path / "empty.txt"
    empty.write_text("!!!\n\n", encoding="utf-8")
    nothing = subprocess.run(cmd[:4] + [str(empty), "--valid", str(corpus[1]), "--out", str(out)], cwd=ROOT,
                             capture_output=True, text=True, timeout=60)
    assert (nothing.returncode == 2 and "empty.txt holds no words" in nothing.stderr
            and "Traceback" not in nothing.stderr)
