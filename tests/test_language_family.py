"""The Language family through the contract (families.contract): sources, safe loading, parsing, one scan."""
from __future__ import annotations

import pytest
import torch

from families.checkpoint import CheckpointError
from families.contract import InputError, ModelSource
from families.language.family import FAMILY
from families.registry import FAMILIES
from ig_core import AttributionEngine, Contrast, ScanSettings

EPS = torch.finfo(torch.float32).eps
pytestmark = pytest.mark.numeric


@pytest.fixture(scope="module")
def model():
    return FAMILY.load(FAMILY.sources()[0], torch.device("cpu"))


def test_registered_and_lists_the_shipped_model_then_the_folders_by_name(tmp_path, monkeypatch):
    assert FAMILIES["language"] is FAMILY and FAMILY.input_name == "text"
    folder = tmp_path / "language"
    folder.mkdir()
    for name in ("b.pt", "a.pt", "notes.txt"):
        (folder / name).write_bytes(b"x")
    monkeypatch.setenv("IG_MODELS_DIR", str(tmp_path))
    assert [s.name for s in FAMILY.sources()] == ["small.pt (default)", "shipped: ptb_gpt2", "a.pt", "b.pt"]


def test_load_refuses_code_and_other_formats_without_a_server_path(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("unsafe code ran",))

    evil, other = tmp_path / "evil.pt", tmp_path / "other.pt"
    torch.save({"format": "ig-dashboard/lstm-language-model", "x": Evil()}, evil)
    torch.save({"format": "ig-dashboard/table-classifier", "version": 1}, other)
    for path, reason in ((evil, "code"), (other, "not a ig-dashboard/lstm-language-model checkpoint")):
        with pytest.raises(CheckpointError, match=reason) as refusal:
            FAMILY.load(ModelSource(path.name, path=path), torch.device("cpu"))
        assert path.name in str(refusal.value) and str(tmp_path) not in str(refusal.value)


@pytest.mark.parametrize("text", ["", "   ", "\U0001F600 \U0001F389"])
def test_parse_refuses_a_text_without_words(model, text):
    with pytest.raises(InputError):
        FAMILY.parse(model, text)


def test_explain_is_complete_and_records_add_up(model):
    item = FAMILY.parse(model, "the shareholders claimed more")
    explanation = FAMILY.explain(AttributionEngine(device="cpu"), model, item, None, ScanSettings())
    assert explanation.target_names == ["than"] and explanation.completeness_ok
    assert explanation.relative_delta[0] <= 0.01
    for record in explanation.records("paper", "the shareholders claimed more"):
        gap = record["score_input"] - record["score_baseline"]
        assert list(record["scores"]) == ["1 the", "2 shareholders", "3 claimed", "4 more"]
        assert sum(record["scores"].values()) == pytest.approx(gap, abs=abs(record["delta"]) + 1e-9)


def test_the_pages_scan_and_a_comparisons_scan_of_one_loaded_model_share_the_engines_cache(model):
    from families.language.attribution import explain_next_word

    engine = AttributionEngine(device="cpu")
    settings = ScanSettings(rule="gauss-legendre", steps=4)
    page = explain_next_word(engine, model.extra, "the shareholders claimed", None, settings, model_key=model.key)
    item = FAMILY.parse(model, "the shareholders claimed")
    again = FAMILY.explain(engine, model, item, page.targets, settings)
    assert again.attribution is page.attribution  # keyed by the model's content both ways: one scan


def test_a_contrast_is_explained_on_log_probabilities_and_its_words_add_up_to_the_difference(model):
    lm, vocabulary = model.extra, model.target_names
    is_, are = vocabulary.index("is"), vocabulary.index("are")
    item = FAMILY.parse(model, "the company said the report")
    settings = ScanSettings()
    explanation = FAMILY.explain(AttributionEngine(device="cpu"), model, item, [Contrast(is_, are), are], settings)
    assert explanation.target_names == ["is rather than are", "are"] and explanation.contrasted
    assert explanation.explained_score(0) == "log P(is | text) - log P(are | text)"
    assert explanation.explained_score(1) == "log P(are | text)"
    embeddings = lm.embed(item.ids).float()
    with torch.no_grad():
        text, baseline = (torch.log_softmax(lm.forward(x).double(), -1)[0] for x in (embeddings, 0 * embeddings))
    f_text, f_baseline = float(text[is_] - text[are]), float(baseline[is_] - baseline[are])
    # F(text) by the engine's float32 pass and by hand from the same logits: a few roundings at the logits' scale
    assert explanation.score_input[0] == pytest.approx(f_text, abs=64 * EPS * float(text.abs().max()))
    assert explanation.score_baseline[0] == pytest.approx(f_baseline, abs=64 * EPS * float(baseline.abs().max()))
    gap = f_text - f_baseline
    assert abs(explanation.word_attributions[0].sum() - gap) <= settings.tolerance * abs(gap)


def test_the_lstm_starts_from_its_eos_or_unk_embedding_where_asked(model):
    """The LSTM's vocabulary has <eos> and <unk>: either's embedding at every position is a baseline, and the
    attributions add up to F(text) - F(that baseline)."""
    import dataclasses

    from families.language.baselines import baseline_embeddings, offered

    lm = model.extra
    assert lm.baseline_tokens() == {"eos": lm.vocab.index["<eos>"], "unk": lm.vocab.index["<unk>"]}
    assert list(offered(lm)) == ["zeros", "eos", "unk"]
    item = dataclasses.replace(FAMILY.parse(model, "the shareholders claimed more"), baseline="unk")
    request = FAMILY.engine_input(model, item)
    unk = lm.embed([lm.vocab.index["<unk>"]])[0, 0]
    # an embedding lookup is a gather, no arithmetic: it copies the table's row exactly at any batch shape
    assert all(torch.equal(row, unk) for row in request.baseline[0][0])
    # engine_input makes its baseline with this very call on these very inputs: the same computation
    assert torch.equal(baseline_embeddings(lm, item, request.inputs[0]), request.baseline[0])
    explanation = FAMILY.explain(AttributionEngine(device="cpu"), model, item, None, ScanSettings())
    assert explanation.completeness_ok and explanation.relative_delta[0] <= 0.01
    with torch.no_grad():
        direct = torch.softmax(lm.forward(request.baseline[0]), -1)[0, explanation.targets[0]]
    # the engine evaluates F(baseline) in a batch of path points, this check alone: float32 rounding of the LSTM's
    # few hundred operations per output, so a bound of 1e-5 relative
    assert explanation.score_baseline[0] == pytest.approx(float(direct), rel=1e-5)
