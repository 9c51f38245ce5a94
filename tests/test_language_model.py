"""The PTB LSTM language model layer: tokenizer, vocabulary, attribution forward, checkpoint."""
from __future__ import annotations

import math
import pathlib
import re

import pytest
import torch

from families.language import CheckpointError, load_language_model
from families.language import checkpoint as ckpt
from families.language.lstm import EmbeddedForward, LSTMConfig, LSTMLanguageModel
from families.language.ptb import EOS, NUM, UNK, TextError, Vocabulary, load_corpus, ptb_paths, tokenize
from families.language.train import TEST_SLICE_TOKENS, batchify, evaluate

CHECKPOINT = pathlib.Path(__file__).resolve().parents[1] / "families/language/checkpoints/small.pt"
pytestmark = pytest.mark.numeric



@pytest.fixture(scope="module")
def ptb(shared_data):
    """Paths of the real PTB files (skips without IG_DATA_DIR; conftest fails instead in CI)."""
    paths = ptb_paths(shared_data)
    missing = [str(p) for p in paths.values() if not p.is_file()]
    if missing:
        pytest.fail(f"IG_DATA_DIR={shared_data} lacks the Penn Treebank files: {missing}")
    return paths


# A small vocabulary with the Treebank's special tokens and spellings, for fast tokenizer tests.
WORDS = [UNK, EOS, NUM, "the", "shareholders", "claimed", "more", "than", "$", "million", "in", "losses",
         "do", "n't", "ca", "wo", "it", "'s", "company", "'", "investors", "mr.", "u.s.", "said", "rose",
         "at&t", "&", "we", "'re", "i", "'m", "panic", "will", "fall", "is", "big", "30-year", "by", "yes"]


@pytest.fixture(scope="module")
def vocab():
    return Vocabulary(WORDS)


# ----------------------------------------------------------------------------------- tokenizer

def test_lowercase_numbers_and_currency(vocab):
    t = tokenize("The shareholders claimed more than $5,000,000.50 in LOSSES", vocab)
    assert t.texts == ["the", "shareholders", "claimed", "more", "than", "$", "N", "in", "losses"]
    assert t.ids == vocab.encode(t.texts)
    money = next(w for w in t.words if w.text == "$5,000,000.50")
    assert money.tokens == ("$", NUM) and "number -> N" in money.notes
    assert [tok.kind for tok in t.tokens][5:7] == ["symbol", "number"]
    assert t.notices == ()


@pytest.mark.parametrize("text, expected", [
    ("1990", [NUM]), ("3.5%", [NUM, NUM]), ("3.5 %", [NUM, NUM]), ("rose 5 %", ["rose", NUM, NUM]),
    ("12,345", [NUM]), ("-7", [NUM]), ("1/2", [NUM]),
    ("30-year", ["30-year"]),           # a vocabulary word with digits stays itself
    ("\u0661\u0662\u0663", [NUM]),      # Arabic-Indic digits
    ("\uff11\uff12", [NUM]),            # full-width digits
])
def test_numbers_become_N(vocab, text, expected):
    assert tokenize(text, vocab).texts == expected


def test_percent_sign_is_N_like_the_treebank(vocab):
    """PTB has no "%" (grep ptb.train.txt: "N N" for "5 %"): standalone or attached, it becomes N."""
    sign = tokenize("rose 5 %", vocab).words[-1]
    assert sign.text == "%" and sign.tokens == (NUM,) and "% -> N" in sign.notes and sign.used


def test_percent_matches_the_treebank_text(ptb):
    """Mikolov's PTB has no "%" at all: "8.45 %" was written "N N" (e.g. "to N N from N N")."""
    corpus = ptb["train"].read_text(encoding="utf-8")
    assert "%" not in corpus and " to N N from N N " in corpus
    real = Vocabulary.from_file(ptb["train"])
    assert tokenize("rose to 8.45% from 8.47 %", real).texts == ["rose", "to", NUM, NUM, "from", NUM, NUM]
    assert tokenize("the % sign", real).texts == ["the", NUM, "sign"]


def test_emoji_are_not_called_punctuation(vocab):
    for text in ("\U0001F600\U0001F600", "\U0001F600 \U0001F389 !!", "\u2192 \u00a9"):
        with pytest.raises(TextError, match="no letters or digits") as err:
            tokenize(text, vocab)
        assert "punctuation" not in str(err.value)
    with pytest.raises(TextError, match="only punctuation"):
        tokenize("!!! \u00ab ... \u00bb", vocab)
    emoji = tokenize("the \U0001F600 company", vocab).words[1]
    assert emoji.tokens == () and emoji.notes == ("symbol or emoji removed",)


@pytest.mark.parametrize("text, expected", [
    ("don't", ["do", "n't"]), ("Can't", ["ca", "n't"]), ("won't", ["wo", "n't"]),
    ("company's", ["company", "'s"]), ("it\u2019s", ["it", "'s"]), ("investors'", ["investors", "'"]),
    ("we're", ["we", "'re"]), ("I'm", ["i", "'m"]),
])
def test_contractions_split_like_the_treebank(vocab, text, expected):
    assert tokenize(text, vocab).texts == expected


def test_punctuation_abbreviations_and_sentence_ends(vocab):
    t = tokenize('"Mr. Smith," said the U.S. company (at&t): "panic!" Yes.', vocab)
    assert t.texts == ["mr.", UNK, "said", "the", "u.s.", "company", "at&t", "panic", EOS, "yes"]
    comma = [w for w in t.words if w.text == ","]
    assert comma and comma[0].tokens == () and not comma[0].used


def test_unknown_words_are_reported(vocab):
    t = tokenize("the zyxwv company rose", vocab)
    assert t.texts == ["the", UNK, "company", "rose"]
    assert t.unknown_words == ["zyxwv"]
    assert t.words[1].notes == ("not in vocabulary -> <unk>",)
    assert any("zyxwv" in n for n in t.notices)


@pytest.mark.parametrize("text", ["", "   \n\t ", "?! ... ,"])
def test_empty_text_is_a_clear_error(vocab, text):
    with pytest.raises(TextError, match="empty|no words"):
        tokenize(text, vocab)


def test_all_unknown_is_a_clear_error(vocab):
    with pytest.raises(TextError, match="None of the words"):
        tokenize("zyxwv qwrtp", vocab)
    with pytest.raises(TextError, match="other languages or scripts"):
        tokenize("\u6771\u4eac \u5927\u962a", vocab)


def test_non_latin_words_become_unk_with_a_notice(vocab):
    t = tokenize("\u041c\u043e\u0441\u043a\u0432\u0430 is big", vocab)
    assert t.texts == [UNK, "is", "big"]
    assert any("non-Latin" in n for n in t.notices)


def test_long_text_is_truncated_with_a_notice(vocab):
    text = " ".join(["the shareholders claimed more"] * 2500)  # 10,000 words
    t = tokenize(text, vocab, max_tokens=200)
    assert len(t) == 200 and t.dropped_tokens == 9800
    assert t.texts[-4:] == ["the", "shareholders", "claimed", "more"]
    assert any("only the last 200" in n for n in t.notices)
    assert sum(w.used for w in t.words) == 200 and not t.words[0].used
    assert t.tokens[0].word_index == 9800  # tokens point back at the user's words


# ------------------------------------------------------------------------------ vocabulary

def test_vocabulary_from_the_real_training_text(ptb):
    v = Vocabulary.from_file(ptb["train"])
    assert len(v) == 10_000
    for w in (UNK, NUM, EOS, "the", "n't", "'s", "$", "&"):
        assert w in v
    train = load_corpus(ptb["train"], v)
    assert train.numel() == 929_589  # Mikolov's PTB: 887,521 words + 42,068 <eos>
    assert int((train == v.unk_id).sum()) == 45_020


def test_missing_ptb_is_downloaded_or_reported(tmp_path, monkeypatch, ptb):
    from families.config import DataNotFound
    from families.language import ptb as ptb_module

    with pytest.raises(DataNotFound, match="IG_DATA_DIR"):
        ptb_module.ensure_ptb(tmp_path / "empty", allow_download=False)
    # the real download code, fed from a local copy (file:// URL) since CI has no internet
    monkeypatch.setattr(ptb_module, "PTB_URL", ptb["train"].parent.as_uri() + "/ptb.{split}.txt")
    paths = ptb_module.ensure_ptb(tmp_path)
    assert paths["valid"] == tmp_path / "ptb" / "ptb.valid.txt"
    assert paths["valid"].read_bytes() == ptb["valid"].read_bytes()
    monkeypatch.setattr(ptb_module, "PTB_URL", (tmp_path / "nowhere").as_uri() + "/ptb.{split}.txt")
    with pytest.raises(DataNotFound, match="could not download"):
        ptb_module.ensure_ptb(tmp_path / "other")


# ------------------------------------------------------------------------------ the model

def _tiny_model(seed=0, vocab_size=50, dim=8):
    torch.manual_seed(seed)
    m = LSTMLanguageModel(LSTMConfig(vocab_size=vocab_size, dim=dim, layers=2, dropout=0.0))
    m.init_uniform(0.3)
    return m.eval()


def test_forward_embedded_equals_the_normal_forward():
    m = _tiny_model()
    ids = torch.randint(0, 50, (7,))
    logits, _ = m(ids.unsqueeze(0))
    via_emb = m.forward_embedded(m.embed_tokens(ids))
    assert via_emb.shape == (1, 50)
    torch.testing.assert_close(via_emb[0], logits[0, -1])
    # every prefix: the prediction after word t
    for t in range(1, 8):
        torch.testing.assert_close(m.forward_embedded(m.embed_tokens(ids[:t]))[0], logits[0, t - 1])


def test_attribution_forward_on_a_batch_of_scaled_copies():
    m = _tiny_model().requires_grad_(False)
    f = EmbeddedForward(m)
    ids = torch.randint(0, 50, (5,))
    emb = m.embed_tokens(ids)  # [1, T, D]
    alphas = torch.linspace(0, 1, 9).view(-1, 1, 1)
    batch = (alphas * emb).requires_grad_(True)  # [K, T, D]
    scores = f(batch)
    assert scores.shape == (9, 50)
    # each row is that copy alone; alpha = 0 is the all-zero-embedding baseline
    torch.testing.assert_close(scores[3], f(batch[3:4].detach())[0])
    torch.testing.assert_close(scores[-1], m(ids.unsqueeze(0))[0][0, -1])
    target = int(ids[-1])
    grad, = torch.autograd.grad(torch.softmax(scores, -1)[:, target].sum(), batch)
    assert grad.shape == batch.shape and torch.isfinite(grad).all() and grad.abs().sum() > 0
    # completeness of a fine Riemann sum along the straight path: sum of attributions ~ F(x) - F(0)
    k = 400
    a = (torch.arange(k) + 0.5) / k
    path = (a.view(-1, 1, 1) * emb).requires_grad_(True)
    p = torch.softmax(f(path), -1)[:, target]
    g, = torch.autograd.grad(p.sum(), path)
    attributions = (emb[0] * g.mean(0)).sum()
    with torch.no_grad():
        delta = torch.softmax(f(emb), -1)[0, target] - torch.softmax(f(torch.zeros_like(emb)), -1)[0, target]
    assert abs(float(attributions - delta)) < 1e-3 * max(1.0, abs(float(delta))) + 1e-5


def test_forward_embedded_rejects_bad_shapes():
    m = _tiny_model()
    with pytest.raises(ValueError, match="seq_len"):
        m.forward_embedded(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="at least one word"):
        m.forward_embedded(torch.zeros(2, 0, 8))


# --------------------------------------------------------------------------- checkpoints

def _save_tiny(path, model=None):
    model = model or _tiny_model()
    words = [UNK, EOS, NUM] + [f"w{i}" for i in range(47)]
    training = dict(config_name="tiny", epochs=0, hyperparameters=dict(bptt=20, batch_size=20, lr=1.0, lr_decay=0.5,
                    decay_after=4, clip=5.0, init_scale=0.1), seed=0, train_tokens=0, history=[],
                    command="(test)", wall_seconds=0.0, device="cpu", torch=torch.__version__, date="")
    metrics = dict(valid_ppl=1.0, test_ppl=1.0, test_slice_tokens=1, test_slice_ppl=1.0)
    return ckpt.save(path, ckpt.half_state_dict(model), words, model.config, metrics, training)


def test_checkpoint_round_trip_with_weights_only(tmp_path):
    model = _tiny_model()
    path = _save_tiny(tmp_path / "tiny.pt", model)
    raw = torch.load(path, weights_only=True)
    assert raw["state_dict"]["embed.weight"].dtype == torch.float16
    lm = load_language_model(path)
    assert len(lm.vocab) == 50 and not lm.model.training
    assert not any(p.requires_grad for p in lm.model.parameters())
    ids = [3, 4, 5]
    torch.testing.assert_close(lm.forward(lm.embed(ids)), model.forward_embedded(model.embed_tokens(ids)),
                               atol=5e-3, rtol=5e-3)  # float16 storage


def test_wrong_files_are_refused(tmp_path):
    with pytest.raises(CheckpointError, match="no language-model checkpoint"):
        load_language_model(tmp_path / "missing.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="weights_only"):
        load_language_model(tmp_path / "text.pt")
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="other.pt is not a ig-dashboard/lstm-language-model checkpoint"):
        load_language_model(tmp_path / "other.pt")

    class Evil:
        def __reduce__(self):
            return (print, ("unsafe code ran",))

    torch.save({"format": ckpt.FORMAT, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="weights_only"):
        load_language_model(tmp_path / "evil.pt")
    path = _save_tiny(tmp_path / "tiny.pt")
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["decoder.weight"] = torch.zeros(3, 3, dtype=torch.float16)
    torch.save(payload, tmp_path / "bad_shape.pt")
    with pytest.raises(CheckpointError, match="decoder.weight"):
        load_language_model(tmp_path / "bad_shape.pt")


def test_evaluate_matches_a_direct_computation(one_thread):
    m = _tiny_model()
    data = torch.randint(0, 50, (301,))
    logits, _ = m(data[:-1].unsqueeze(0))
    nll = torch.nn.functional.cross_entropy(logits[0], data[1:]).detach()
    assert evaluate(m, data, batch_size=1, bptt=37) == pytest.approx(math.exp(float(nll)), rel=1e-4)
    assert batchify(torch.arange(10), 3).tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]


# --------------------------------------------------------------- the trained checkpoint

@pytest.mark.skipif(not CHECKPOINT.is_file(), reason=f"no trained checkpoint at {CHECKPOINT} "
                    "(python -m families.language.train --config small --out families/language/checkpoints/small.pt)")
def test_trained_checkpoint_matches_its_card(ptb, one_thread):
    lm = load_language_model(CHECKPOINT)
    assert CHECKPOINT.stat().st_size < 15e6
    assert len(lm.vocab) == 10_000
    assert lm.vocab.words == Vocabulary.from_file(ptb["train"]).words
    card = CHECKPOINT.with_suffix(".md").read_text()
    card_test = float(re.search(r"\| test \| ([\d.]+) \|", card).group(1))
    card_slice = float(re.search(r"\| test, first [\d,]+ tokens \| ([\d.]+) \|", card).group(1))
    assert card_test == pytest.approx(lm.metrics["test_ppl"], abs=0.01)
    assert lm.metrics["test_ppl"] <= 120  # Zaremba et al. small: 114.5
    test = load_corpus(ptb["test"], lm.vocab)[:TEST_SLICE_TOKENS]
    ppl = evaluate(lm.model, test, batch_size=1, bptt=100)
    assert ppl == pytest.approx(card_slice, rel=2e-3)
    # the paper's Figure 9 sentence: "than" is a likely next word after "... claimed more"
    t = lm.tokenize("the shareholders claimed more")
    probs = lm.model.next_word_probs(t.ids)
    assert probs[lm.vocab.id("than")] > 0.05
