"""Number agreement as a ground truth for next-word attributions (families.language.number_agreement): the pass rule
and the mapping of tokens to the data's words on hand-computed cases, the verb list, F against the model's logits, and
the command on a few prefixes of the real data with the shipped LSTM."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from families.language import number_agreement as agreement
from families.language.family import FAMILY
from families.language.ptb import Token, TokenizedText, WordMapping
from ig_core import AttributionEngine, ScanSettings

EPS = torch.finfo(torch.float32).eps
pytestmark = pytest.mark.numeric


@pytest.fixture(scope="module")
def model():
    return FAMILY.load(FAMILY.sources()[0], torch.device("cpu"))


def keys_prefix(**changes) -> agreement.AgreementPrefix:
    """"the keys to the old cabinet" -> a plural verb: subject "keys" (word 1), attractor "cabinet" (word 5)."""
    fields = dict(index=0, text="the keys to the old cabinet", plural=True, subject=(1,), attractors=(5,))
    return agreement.AgreementPrefix(**{**fields, **changes})


# -- spans and the mapping of tokens to words ----------------------------------------------------------------

def test_spans_are_inclusive_word_ranges():
    assert agreement.span_words(" [(2, 2), (6, 8)] ") == (2, 6, 7, 8)
    assert agreement.span_words("[]") == ()


def test_tokens_map_back_to_the_whitespace_words_they_came_from(model):
    # "(NAHB)" is one word of three pieces, two of them removed; "company's" one word of two tokens
    text = "the company's lobbies (NAHB) , which"
    item = FAMILY.parse(model, text)
    assert item.texts == ["the", "company", "'s", "<unk>", "nahb", "which"]
    assert agreement.token_words(item, text) == [0, 1, 1, 2, 3, 5]


def test_a_long_texts_cut_words_and_a_tokenizers_start_token_belong_to_no_token_and_no_word(model):
    text = " ".join(["the market fell"] * 20)  # 60 words, the model reads the last 50
    assert agreement.token_words(FAMILY.parse(model, text), text) == list(range(10, 60))
    start = TokenizedText(tokens=tuple(Token(name, 0, k, "word") for k, name in enumerate(("<s>", "the", "keys"))),
                          words=tuple(WordMapping(name, (name,), (), True) for name in ("<s>", "the", "keys")),
                          notices=(), dropped_tokens=0)
    assert agreement.token_words(start, "the keys") == [-1, 0, 1]
    # sums of small whole numbers in float64: exact in any order
    np.testing.assert_array_equal(agreement.word_scores(np.array([9.0, 1.0, 2.0]), [-1, 0, 1], 2), [1.0, 2.0])


def test_pieces_that_do_not_spell_the_words_are_refused(model):
    item = FAMILY.parse(model, "the keys to the cabinet")
    with pytest.raises(agreement.SpanError):
        agreement.token_words(item, "the keys to a cabinet")


def test_a_words_score_is_the_sum_of_its_tokens_and_a_word_without_tokens_has_none():
    scores = agreement.word_scores(np.array([1.0, 2.0, 3.0, 4.0]), [0, 2, 2, 3], 5)
    np.testing.assert_array_equal(scores, [1.0, np.nan, 5.0, 4.0, np.nan])  # whole numbers summed: exact


# -- the pass rule ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("scores, preference, correct, passes", [
    # the model prefers plural (F < 0), rightly: scores count toward plural when negative
    ([0.1, -0.9, 0.2, 0.0, 0.3, -0.4], -1.0, True, True),  # keys -0.9 -> 0.9 beats cabinet -0.4 -> 0.4
    ([0.1, -0.2, 0.2, 0.0, 0.3, -0.4], -1.0, True, False),  # keys 0.2 < cabinet 0.4
    ([0.1, -0.4, 0.2, 0.0, 0.3, -0.4], -1.0, True, False),  # a tie fails
    # it prefers singular (F > 0), wrongly: it passes when the attractor's score beats the subject's
    ([0.1, 0.2, 0.0, 0.0, 0.3, 0.7], 0.5, False, True),
    ([0.1, 0.9, 0.0, 0.0, 0.3, 0.7], 0.5, False, False),
])
def test_pass_rule_on_written_out_word_scores(scores, preference, correct, passes):
    judged = agreement.verdict(np.array(scores), keys_prefix(), preference)
    assert (judged.correct, judged.passes) == (correct, passes)


def test_the_best_word_of_a_span_of_several_words_counts_and_words_without_tokens_are_passed_over():
    prefix = keys_prefix(text="the keys and locks to the old , cabinet", subject=(1, 3), attractors=(6, 7, 8))
    scores = np.array([0.0, 0.1, 0.0, 0.6, 0.0, 0.0, 0.2, np.nan, 0.5])  # F > 0: singular, wrongly; "," no token
    judged = agreement.verdict(scores, prefix, 2.0)
    assert (judged.subject_best, judged.attractor_best, judged.passes) == (0.6, 0.5, False)
    with pytest.raises(agreement.SpanError, match="attractors"):
        agreement.verdict(np.array([0.0, 0.1, np.nan, np.nan, np.nan, np.nan]), keys_prefix(), 1.0)


def test_unmapped_prefixes_are_counted_and_do_not_pass():
    mapped = agreement.ReadPrefix(keys_prefix(), None, None, 0, -1.0, [0, 1, 2, 3, 4, 5])
    unmapped = agreement.ReadPrefix(keys_prefix(index=1), None, None, 0, -1.0, None, "pieces do not spell the words")
    explained = [agreement.Explained(np.array([0.1, -0.9, 0.2, 0.0, 0.3, -0.4]))] * 2
    rows = pd.DataFrame(agreement.prefix_rows([mapped, unmapped], "integrated_gradients", explained))
    assert rows["passes"].tolist() == [True, False] and rows["unmapped"].tolist() == ["", unmapped.unmapped]
    [summary] = agreement.summary(rows).to_dict("records")
    assert (summary["unmapped"], summary["pass rate"], summary["pass rate where the model is right"]) == (1, 0.5, 0.5)


# -- the verbs and F ---------------------------------------------------------------------------------------------

def test_verb_pairs_are_distinct_words_and_the_shipped_model_knows_the_auxiliaries(model):
    singular = [one for one, _ in agreement.VERB_PAIRS]
    plural = [other for _, other in agreement.VERB_PAIRS]
    assert len(set(singular + plural)) == 2 * len(agreement.VERB_PAIRS)  # no word on both sides, none twice
    singular_ids, plural_ids = agreement.verb_ids(model)
    assert len(singular_ids) == len(plural_ids) and not set(singular_ids) & set(plural_ids)
    words = model.target_names
    kept = list(zip((words[i] for i in singular_ids), (words[i] for i in plural_ids)))
    assert set(kept) <= set(agreement.VERB_PAIRS)
    assert {("is", "are"), ("was", "were"), ("has", "have"), ("does", "do")} <= set(kept)


def test_f_is_the_log_probability_difference_of_the_two_numbers(model):
    singular, plural = agreement.verb_ids(model)
    item = FAMILY.parse(model, "the keys to the old cabinet")
    request = FAMILY.engine_input(model, item)
    preference = agreement.NumberPreference(request.forward, singular, plural)
    with torch.no_grad():
        logits = request.forward(*request.inputs)[0].double()
        f = float(preference(*request.inputs)[0, 0])
    probabilities = torch.softmax(logits, -1)
    by_hand = float(probabilities[singular].sum().log() - probabilities[plural].sum().log())
    # float32 logsumexps round at the scale of the largest logit, a few dozen roundings each
    assert f == pytest.approx(by_hand, abs=64 * EPS * float(logits.abs().max()))


# -- the command on the real data ---------------------------------------------------------------------------------

def test_the_command_on_five_prefixes_writes_the_results_and_the_rows(shared_data, tmp_path, single_thread):
    out = tmp_path / "number_agreement_small.md"
    rows = agreement.main(["--limit", "5", "--data", str(shared_data / agreement.DATA), "--methods",
                           "integrated_gradients", "gradient_x_input", "random", "--out", str(out)])
    written = pd.read_csv(out.with_suffix(".csv"))
    assert len(written) == 15 and written.groupby("method").size().to_dict() == {
        "integrated_gradients": 5, "gradient_x_input": 5, "random": 5}
    assert (written["prefix"].drop_duplicates() == list(range(5))).all()
    integrated = rows[rows["method"] == "integrated_gradients"]
    assert (integrated["relative_delta"] <= 0.01).all()  # the default scan's tolerance
    text = out.read_text()
    for part in ("Command: `python -m families.language.number_agreement --limit 5", "agreement accuracy",
                 "| integrated_gradients | 5 |", "| random | 5 |", "0.907"):
        assert part in text


def test_the_top_pair_variant_explains_each_prefixes_likeliest_pair_as_the_familys_contrast(model, single_thread):
    texts = ["the keys to the old cabinet", "the report of the new company"]  # one length: stacked in one call
    read = agreement.read_all(model, [keys_prefix(index=k, text=text) for k, text in enumerate(texts)],
                              agreement.NumberPreference(model.extra.forward, *agreement.verb_ids(model)), "top-pair")
    singular, plural = agreement.verb_ids(model)
    for one in read:
        with torch.no_grad():
            probabilities = torch.softmax(one.request.forward(*one.request.inputs)[0], -1)
        likeliest = int((probabilities[singular] + probabilities[plural]).argmax())
        assert (one.target.target, one.target.rather_than) == (singular[likeliest], plural[likeliest])
    explained = agreement.explain_batch(AttributionEngine(device="cpu", cache_size=0), model, read, ScanSettings())
    assert [len(one.token_scores) for one in explained] == [6, 6]
    assert all(one.completeness_defined and one.relative_delta <= 0.01 for one in explained)


def test_prefixes_read_from_the_unk_baseline_start_every_position_at_unks_embedding(model, single_thread):
    preference = agreement.NumberPreference(model.extra.forward, *agreement.verb_ids(model))
    [zeros, unk] = [agreement.read_all(model, [keys_prefix()], preference, "number", baseline)[0]
                    for baseline in ("zeros", "unk")]
    # the same lookup of the same text's ids in the same shape: the same computation, whichever the baseline
    assert zeros.item.ids == unk.item.ids and zeros.request.inputs[0].shape == unk.request.inputs[0].shape
    assert torch.equal(zeros.request.inputs[0], unk.request.inputs[0])
    assert not zeros.request.baseline[0].any()
    unk_row = model.extra.embed([model.extra.vocab.index["<unk>"]])[0, 0]
    # an embedding lookup is a gather, no arithmetic: it copies the row exactly at any batch shape
    assert all(torch.equal(position, unk_row) for position in unk.request.baseline[0][0])
    explained = agreement.explain_batch(AttributionEngine(device="cpu", cache_size=0), model, [unk], ScanSettings())
    assert explained[0].relative_delta <= 0.01  # completeness holds from this baseline too
