"""The GPT-2 trainer: a tokenizer with the LSTM's word ids, a folder that loads back safely in float16, and a
sliding-window perplexity that is exp(mean NLL) of every token scored once."""
from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer, GPT2Config, GPT2LMHeadModel

from families.language.ptb import EOS, UNK, Vocabulary, load_corpus, ptb_paths
from families.language.train_transformer import DEFAULTS, build_tokenizer, load_folder, perplexity, train

TINY = dict(DEFAULTS, n_layer=1, n_embd=16, n_head=2, n_positions=16, batch_size=4, warmup_steps=1, epochs=1)
EVAL_TOKENS = 300


@pytest.fixture(scope="module")
def ptb(shared_data):
    paths = ptb_paths(shared_data)
    if not all(p.is_file() for p in paths.values()):
        pytest.fail(f"IG_DATA_DIR={shared_data} lacks the Penn Treebank files")
    return paths


def test_tokenizer_gives_the_vocabulary_ids(ptb):
    vocab = Vocabulary.from_file(ptb["train"])
    tokenizer = build_tokenizer(vocab)
    # every word, "<unk>", "n't" and "mr." included, survives the pre-tokenizer whole and keeps its id
    assert tokenizer(" ".join(vocab.words))["input_ids"] == list(range(len(vocab)))
    line = ptb["valid"].read_text(encoding="utf-8").splitlines()[0].split()
    assert tokenizer(" ".join(line))["input_ids"] == vocab.encode(line)
    assert tokenizer("the zyzzogeton said")["input_ids"] == [vocab.id("the"), vocab.unk_id, vocab.id("said")]
    assert (tokenizer.unk_token, tokenizer.eos_token, tokenizer.eos_token_id) == (UNK, EOS, vocab.index[EOS])


def test_one_step_run_writes_a_folder_that_loads_safely(ptb, tmp_path, one_thread):
    out = tmp_path / "gpt2"
    train_tokens = TINY["batch_size"] * TINY["n_positions"] + TINY["n_positions"]  # exactly one batch
    card = train(out, TINY, train_tokens=train_tokens, eval_tokens=EVAL_TOKENS, data_dir=ptb["train"].parents[1],
                 command="(test)", log=lambda msg: None)
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "generation_config.json",
                                                     "ig_card.json", "model.safetensors", "tokenizer.json",
                                                     "tokenizer_config.json"]
    with safe_open(out / "model.safetensors", framework="pt") as weights:
        assert {weights.get_tensor(name).dtype for name in weights.keys()} == {torch.float16}
    assert card["training"]["steps"] == 1 and len(card["training"]["history"]) == 1
    assert json.loads((out / "ig_card.json").read_text()) == json.loads(json.dumps(card))
    assert f"| test | {card['test_ppl']:.2f} |" in (out / "README.md").read_text()

    model = AutoModelForCausalLM.from_pretrained(out, use_safetensors=True, trust_remote_code=False,
                                                 local_files_only=True)
    tokenizer = AutoTokenizer.from_pretrained(out, local_files_only=True)
    vocab = Vocabulary.from_file(ptb["train"])
    assert next(model.parameters()).dtype == torch.float16 and model.config.n_positions == TINY["n_positions"]
    assert tokenizer("the company 's shares")["input_ids"] == vocab.encode(["the", "company", "'s", "shares"])
    # the card's test perplexity is that of the saved weights
    test = load_corpus(ptb["test"], vocab)[:EVAL_TOKENS]
    assert perplexity(load_folder(out), test, TINY["n_positions"], TINY["n_positions"] // 2) == pytest.approx(
        card["test_ppl"], abs=0.01)


def test_perplexity_is_exp_mean_nll_of_each_token_with_its_window(one_thread):
    torch.manual_seed(0)
    context, stride, n = 4, 2, 13
    model = GPT2LMHeadModel(GPT2Config(vocab_size=11, n_positions=context, n_embd=8, n_layer=1, n_head=2)).eval()
    ids = torch.randint(11, (n,))
    nll = []
    for t in range(1, n):
        # token t is scored by the first window that reaches it: windows start every `stride` tokens
        begin = 0 if t < context else ((t - context) // stride + 1) * stride
        with torch.no_grad():
            logits = model(ids[begin:t][None]).logits[0, -1]
        nll.append(-torch.log_softmax(logits, -1)[ids[t]].item())
    by_hand = math.exp(sum(nll) / len(nll))
    for batch_size in (1, 3, 32):  # batches mixing the full windows with the shorter last one
        assert perplexity(model, ids, context, stride, batch_size=batch_size) == pytest.approx(by_hand, rel=1e-5)
    # one window over the whole text: the plain exp(mean cross-entropy) of one forward pass
    with torch.no_grad():
        whole = model(ids[None, :context]).logits[0, :-1]
    assert perplexity(model, ids[:context], context, stride) == pytest.approx(
        math.exp(torch.nn.functional.cross_entropy(whole, ids[1:context]).item()), rel=1e-5)
