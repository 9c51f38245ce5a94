"""Analysts' own Hugging Face causal language models on the Language pages (families.language.hugging_face).

Tiny models with random weights are built offline in a temporary models folder: a GPT-2 with a byte-level BPE
tokenizer, a Llama with a SentencePiece-style (Metaspace, "▁") tokenizer and a GPT-2 with a word-level tokenizer,
each saved by save_pretrained as safetensors; beside them folders that must be refused unread: pickled weights only, an
architecture transformers does not know, and a config asking for code of its own.
"""
from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil

import numpy as np
import pytest
import torch
from unsafe_files import RunsCode, torch_bytes

from dashboard.renderers import language as language_views
from families.contract import FamilyError
from families.language import attribution as language_attribution
from families.language.family import FAMILY, model_key_of
from families.language.hugging_face import ModelFolder
from families.language.next_words import next_word_probabilities
from families.language.ptb import read_text_tokens
from ig_core import AttributionEngine, Contrast, ScanSettings
from runs import store
from runs.runner import main

pytestmark = pytest.mark.numeric

ROOT = pathlib.Path(__file__).resolve().parents[1]
SENTENCES = ["the shareholders claimed more than the company said", "the cat sat on the mat and the dog ran home",
             "analysts expected the shares to rise after the report", "it is a sunny day, isn't it?"] * 3
TEXT = "the shareholders claimed more"
EPS64 = float(np.finfo(np.float64).eps)


def byte_level_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.train_from_iterator(SENTENCES, trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                                   unk_token="<|endoftext|>")


def sentencepiece_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    tokenizer.train_from_iterator(SENTENCES, trainers.UnigramTrainer(
        vocab_size=100, special_tokens=["<unk>", "<s>", "</s>"], unk_token="<unk>"))
    # a Llama reads <s> before the text
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A",
                                                             special_tokens=[("<s>", tokenizer.token_to_id("<s>"))])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", bos_token="<s>", eos_token="</s>")


def word_level_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ["<unk>", "<eos>"] + sorted({word for sentence in SENTENCES for word in sentence.split()})
    tokenizer = Tokenizer(models.WordLevel({word: i for i, word in enumerate(words)}, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", eos_token="<eos>")


def save_gpt2(folder: pathlib.Path, tokenizer, seed: int = 0) -> None:
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(seed)
    eos = tokenizer.eos_token_id
    config = GPT2Config(n_layer=1, n_head=2, n_embd=16, n_positions=64, vocab_size=len(tokenizer), bos_token_id=eos,
                        eos_token_id=eos)
    GPT2LMHeadModel(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


def save_llama(folder: pathlib.Path, tokenizer) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=64,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)


@pytest.fixture(scope="module")
def models(tmp_path_factory, single_thread) -> pathlib.Path:
    """A models folder: language/ holds the three tiny models, a checkpoint file and the three folders to refuse;
    markers/ is where the refused folders' code would leave its mark."""
    root = tmp_path_factory.mktemp("hf_models")
    language, markers = root / "language", root / "markers"
    markers.mkdir()
    gpt2 = language / "tiny-gpt2"
    save_gpt2(gpt2, byte_level_tokenizer())
    save_llama(language / "tiny-llama", sentencepiece_tokenizer())
    (language / "tiny-llama" / "ig_card.json").write_text(json.dumps(
        {"valid_ppl": 12.5, "training": {"corpus": {"description": "twelve test sentences"}}}))
    save_gpt2(language / "tiny-words", word_level_tokenizer())
    (language / "own.pt").write_bytes(b"not a checkpoint")

    pickled = language / "pickled"  # pickled weights only: unpickling them would leave a marker
    pickled.mkdir()
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(gpt2 / name, pickled / name)
    (pickled / "pytorch_model.bin").write_bytes(torch_bytes({"weights": RunsCode(f"touch {markers / 'pickled'}")}))

    unknown = language / "unknown-arch"
    shutil.copytree(gpt2, unknown)
    config = json.loads((unknown / "config.json").read_text())
    (unknown / "config.json").write_text(json.dumps(
        config | {"model_type": "no_such_model", "architectures": ["NoSuchModelForCausalLM"]}))

    remote = language / "remote-code"  # a config asking for its own modeling code, which would leave a marker
    shutil.copytree(gpt2, remote)
    (remote / "config.json").write_text(json.dumps(
        config | {"auto_map": {"AutoModelForCausalLM": "modeling_evil.EvilForCausalLM"}}))
    (remote / "modeling_evil.py").write_text(f"import pathlib\npathlib.Path({str(markers / 'remote')!r}).touch()\n")
    return root


@pytest.fixture
def models_dir(models, monkeypatch) -> pathlib.Path:
    monkeypatch.setenv("IG_MODELS_DIR", str(models))
    return models


def load(name: str):
    return FAMILY.load(FAMILY.source_named(name), torch.device("cpu"))


def test_model_folders_are_listed_by_name_beside_the_checkpoints(models_dir):
    names = [source.name for source in FAMILY.sources()][len(FAMILY.shipped()):]
    assert names == ["own.pt", "pickled", "remote-code", "tiny-gpt2", "tiny-llama", "tiny-words",
                     "unknown-arch"]  # names under the models folder, nothing of its place
    assert isinstance(FAMILY.source_named("tiny-gpt2"), ModelFolder)


@pytest.mark.parametrize("name, reason", [
    ("pickled", r"pickled weights only \(pytorch_model.bin\), which are not read"),
    ("unknown-arch", "model type 'no_such_model' .* transformers does not know"),
    ("remote-code", r"asks for code of its own \(auto_map in its config.json\)"),
])
def test_unsafe_or_unknown_folders_are_refused_unread(models_dir, name, reason):
    with pytest.raises(FamilyError, match=reason) as refusal:
        load(name)
    message = str(refusal.value)
    assert f"The folder {name} " in message and str(models_dir) not in message
    assert not list((models_dir / "markers").iterdir())  # nothing unpickled, no code of the folder imported


def test_a_folder_s_digest_covers_its_files(models, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(models / "language" / "tiny-gpt2", copy)
    source, original = ModelFolder("copy", path=copy), ModelFolder("tiny-gpt2", path=models / "language" / "tiny-gpt2")
    assert source.digest == original.digest  # the same files: one model for the caches
    key = model_key_of(source)
    save_gpt2(copy, byte_level_tokenizer(), seed=1)  # other weights in the same files' places
    assert source.digest != original.digest and model_key_of(source) != key


def test_pieces_are_grouped_into_words(models_dir):
    gpt2 = load("tiny-gpt2").extra
    text = gpt2.tokenize("The shareholders claimed more, isn't it?")
    assert text.context_words == ["The", "shareholders", "claimed", "more,", "isn't", "it?"]
    assert text.texts[0] == "T" and "▁share" in text.texts  # byte-level pieces decoded, a word's space as "▁"
    assert text.word_of_token == sorted(text.word_of_token) and not text.pieces_are_words
    llama = load("tiny-llama").extra
    text = llama.tokenize(TEXT)
    assert text.texts[0] == "<s>" and text.context_words == ["<s>", *TEXT.split()]  # a special token is a word
    firsts = [k for k in range(1, len(text)) if text.word_of_token[k] != text.word_of_token[k - 1]]
    assert all(text.texts[k].startswith("▁") == (k in firsts) for k in range(1, len(text)))  # a word's first piece
    words = load("tiny-words").extra
    text = words.tokenize(TEXT)
    assert text.texts == text.context_words == TEXT.split() and text.pieces_are_words
    assert words.vocab.unit == "word" and gpt2.vocab.unit == "piece"
    assert words.baseline_tokens() == {"eos": 1, "unk": 0} and gpt2.baseline_tokens() == {"eos": 0}


def assert_complete_with_words_summing_their_pieces(explanation) -> None:
    """Completeness within the engine's tolerance; each word's scores the sum of its pieces', exactly: the same
    float64 additions in the same order (TokenizedText.per_word), and the words' total the pieces' up to float64
    rounding of the reordered sum."""
    assert explanation.completeness_ok
    assert np.all(explanation.relative_delta[~explanation.nothing_to_attribute] <= explanation.settings.tolerance)
    frame = language_views.scores_frame(explanation)
    for target in explanation.target_names:
        pieces = frame[(frame.target == target) & (frame.level == "piece")]
        words = frame[(frame.target == target) & (frame.level == "word")]
        assert words.text.tolist() == explanation.tokenized.context_words
        for column in (language_views.IG_ROW, language_views.GRADIENT_ROW):
            assert words[column].tolist() == [sum(pieces[column][pieces.word == w], 0.0) for w in words.word]
        piece_scores = pieces[language_views.IG_ROW].to_numpy()
        bound = len(piece_scores) * EPS64 * np.abs(piece_scores).sum()
        assert abs(words[language_views.IG_ROW].sum() - piece_scores.sum()) <= bound


def _texts(elements) -> list[str]:
    return [str(element.value) for element in elements]


@pytest.mark.parametrize("name, pieces", [("tiny-gpt2", "piece"), ("tiny-llama", "piece"), ("tiny-words", "word")])
def test_the_language_page_explains_a_folder_s_model(models_dir, monkeypatch, name, pieces):
    from streamlit.testing.v1 import AppTest

    explained = []
    explain_next_word = language_attribution.explain_next_word

    def keep(*args, **kwargs):
        explained.append(explain_next_word(*args, **kwargs))
        return explained[-1]

    monkeypatch.setattr(language_attribution, "explain_next_word", keep)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["scan_settings"] = ScanSettings()  # the adaptive rule to 1%
    at.run()
    at.switch_page("dashboard/pages/language.py").run()
    at.selectbox(key="language_model").set_value(name).run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    assert any(f"-{pieces} vocabulary" in caption for caption in _texts(at.sidebar.caption))
    baseline = at.selectbox(key="lang_baseline")
    assert baseline.options[0] == "zero embeddings" and baseline.value == "zeros"
    at.text_area(key="lang_text").set_value(TEXT)
    at.button(key="FormSubmitter:language_form-Explain").click().run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    result = explained[-1]
    assert result.tokenized.baseline == "zeros" and result.top_words[0][0] == result.target_names[0]
    assert_complete_with_words_summing_their_pieces(result)
    downloads = [button.label for button in at.get("download_button")]
    if pieces == "piece":  # a word of several pieces: words or pieces in the table, both in the downloads
        assert at.radio(key="lang_score_level").value == "word"
        assert "Pieces and words (CSV)" in downloads and "Pieces and words (JSON)" in downloads
    else:  # every piece a word: the LSTM's views
        assert "lang_score_level" not in [radio.key for radio in at.radio]
        assert "Pieces and words (CSV)" not in downloads
    # from the eos token's embedding: another scan, named as such
    baseline.set_value("eos").run()
    assert not at.exception and not at.error, _texts(at.exception) + _texts(at.error)
    result = explained[-1]
    assert result.tokenized.baseline == "eos"
    assert_complete_with_words_summing_their_pieces(result)
    assert any("alpha = 0 is the baseline (eos-token embeddings)" in caption for caption in _texts(at.caption))


def test_the_page_names_a_refused_folder_only(models_dir):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    at.switch_page("dashboard/pages/language.py").run()
    at.selectbox(key="language_model").set_value("pickled").run()
    assert not at.exception
    errors = _texts(at.error)
    assert any("pickled cannot be used" in e and "pickled weights only" in e for e in errors), errors
    assert not any(str(models_dir) in e for e in errors)
    assert not list((models_dir / "markers").iterdir())


def test_explanations_of_several_targets_and_a_token_baseline(models_dir):
    model = load("tiny-gpt2")
    item = dataclasses.replace(FAMILY.parse(model, TEXT), baseline="eos")
    targets = [int(i) for i in next_word_probabilities(model.extra, item.ids).topk(2).indices]  # one scan for both
    explanation = FAMILY.explain(AttributionEngine(device="cpu"), model, item, targets, ScanSettings())
    assert explanation.target_names == [model.target_names[t] for t in targets]
    assert_complete_with_words_summing_their_pieces(explanation)
    first, second = targets
    contrasted = FAMILY.explain(AttributionEngine(device="cpu"), model, item, [first, Contrast(first, second)],
                                ScanSettings())  # log P(first) - log P(second), with log P(first), in one scan
    assert contrasted.rather_than == [None, second]
    assert contrasted.target_names[1] == f"{model.target_names[first]} rather than {model.target_names[second]}"
    assert_complete_with_words_summing_their_pieces(contrasted)
    eos = model.extra.embed([model.extra.tokenizer.eos_token_id])[0, 0]
    # the baseline is the eos row of the embedding table, looked up and repeated: no arithmetic, so exact
    assert torch.equal(FAMILY.engine_input(model, item).baseline[0][0], eos.expand(len(item), -1))
    with pytest.raises(FamilyError, match="no pad token"):
        FAMILY.engine_input(model, dataclasses.replace(item, baseline="pad"))


def test_a_dataset_run_over_text_windows(models_dir, tmp_path):
    text = tmp_path / "text.txt"
    text.write_text("\n".join(SENTENCES[:4]) + "\n")
    out = tmp_path / "run"
    assert main(["--family", "language", "--input", str(text), "--model", "tiny-gpt2", "--targets", "next_word",
                 "--window", "6", "--limit", "5", "--baseline", "eos", "--quiet", "--out", str(out)]) == 0
    manifest = store.read_manifest(out)
    assert manifest["job"]["input_options"]["baseline"] == "eos"  # the baseline is part of the run's identity
    rows = store.read(out).to_pandas()
    assert (rows.status == "explained").all() and len(rows) == 5
    lm, words = load("tiny-gpt2").extra, read_text_tokens(text)
    for row in rows.itertuples():
        window = words[6 * row.item_index:6 * row.item_index + 6]
        assert row.source == " ".join(window)
        # the truth: the first piece of the next word after the window's (<eos>: the tokenizer's end token)
        truth = lm.next_token_id(window, words[6 * row.item_index + 6])
        assert truth is not None and row.target == row.truth == truth
        assert [name.split(" ", 1)[1] for name in row.score_names] == lm.window_tokens(window).texts
        assert row.relative_delta <= 0.01 or row.nothing_to_attribute


def test_the_shipped_transformer_reads_text_by_the_penn_treebank_rules():
    """Its card says it reads text as its corpus was made (lower case, numbers -> N, unknown words -> <unk>), so a
    typed text maps word by word onto its tokens, as the LSTM's does."""
    shipped = FAMILY.load(FAMILY.source_named("ptb_gpt2"), torch.device("cpu"))
    lstm = FAMILY.load(FAMILY.source_named("small.pt"), torch.device("cpu"))
    text = "You know what the law of averages, 1990 zyzzyva"
    item, reference = FAMILY.parse(shipped, text), FAMILY.parse(lstm, text)
    assert item.texts == reference.texts == ["you", "know", "what", "the", "law", "of", "averages", "N", "<unk>"]
    assert list(item.ids) == [shipped.extra.tokenizer.convert_tokens_to_ids(word) for word in item.texts]
    assert [w.text for w in item.words] == [w.text for w in reference.words]
