"""Language: which earlier words drive the LSTM's next-word prediction (paper Section 3.2, Figures 8-10).

Thin: the Language family's models (chosen through dashboard.scaffold.choose_model, cached by content), a form for
the text and the targets (kept in the session and in the URL: dashboard/sections/language_form.py), one call to
families.language.attribution.explain_next_word (one forward pass for the top words, one engine scan for all targets)
and the sections of dashboard/sections/language.py. The text asked for is kept in the session and explained on every
run of the page (the engine's cache answers a repeat).

A window of a corpus run (dashboard/pages/language_runs.py, families.language.run_rows.OpenWindow) opens here with
its model, its target word and the other of the next word and the model's top word: while the text is the window's,
its exact tokens are read as the run read them (typed text would turn <eos> into <unk>).
"""
from __future__ import annotations

import dataclasses

import streamlit as st

from dashboard.renderers import language as language_views
from dashboard.renderers.markdown import escape_markdown
from dashboard.scaffold import choose_model, page_settings, run_page
from dashboard.sections.language import first_picture, show_result
from dashboard.sections.language_form import (
    EXPLAIN_NOW_KEY,
    NO_CONTRAST,
    NO_SECOND,
    TOP_CHOICE,
    form_in_url,
    keep_targets_with_their_text,
    rather_than_box,
    restore_form,
    set_form,
)
from dashboard.sections.language_tokens import choose_baseline
from dashboard.session import explain_refining, get_engine
from families.contract import InputError
from families.language import run_rows as language_runs
from families.language.attribution import explain_next_word
from families.language.next_words import MAX_CONTEXT, tokenize_text
from families.registry import FAMILIES

FAMILY = FAMILIES["language"]
EXAMPLES = {  # the paper's two examples: the context ends right before the word predicted
    "Figure 9: the shareholders claimed more -> than": ("the shareholders claimed more", "than"),
    "Figure 10: ... came news that the -> ual": ("and N minutes after the ual trading halt came news that the", "ual"),
}
REQUEST_KEY = "language_request"  # (tokens, targets, rather-than word or None) of the text to explain
MODEL_KEY = "language_model_key"  # the model the form's words and the request belong to
WINDOW_KEY = "lang_window"  # the run's window the form holds (an OpenWindow)


def _switch_model(key: str, vocab) -> None:
    """Another checkpoint: its vocabulary may lack the words picked, and the text asked for was the other model's."""
    if st.session_state.get(MODEL_KEY) == key:
        return
    st.session_state[MODEL_KEY] = key
    st.session_state.pop(REQUEST_KEY, None)
    for key, default in (("lang_target", TOP_CHOICE), ("lang_second", NO_SECOND), ("lang_rather_than", NO_CONTRAST)):
        if st.session_state.get(key, default) not in vocab:
            st.session_state[key] = default


def _use_example(name: str) -> None:
    set_form(*EXAMPLES[name], NO_SECOND)
    st.session_state[EXPLAIN_NOW_KEY] = True


def _choose_window_model(window) -> None:
    """The sidebar's model: the one the window's run used, where the models folder still has it."""
    if window.model_name in [source.name for source in FAMILY.sources()]:
        st.session_state[f"{FAMILY.name}_model"] = window.model_name


def _fill_form(window, vocab) -> None:
    """The form holds the window, its word to explain and the second word or the contrast's; explained at once."""
    st.session_state[WINDOW_KEY] = window
    set_form(window.text, window.target if window.target in vocab else TOP_CHOICE,
             window.second if window.second in vocab else NO_SECOND,
             window.rather_than if window.rather_than in vocab else NO_CONTRAST)
    st.session_state[EXPLAIN_NOW_KEY] = True


def _tokenize(lm, text: str):
    """The window's exact tokens while the text is the window's; otherwise the text as typed."""
    window = st.session_state.get(WINDOW_KEY)
    if window is not None and text == window.text:
        return lm.window_tokens(window.words)
    st.session_state.pop(WINDOW_KEY, None)
    return tokenize_text(lm, text)


def _window_note() -> None:
    window = st.session_state.get(WINDOW_KEY)
    if window is not None:
        st.caption(f"From {window.origin}: its exact tokens are read, as the run read them ({window.settings}; "
                   "this page scans with the Home page's settings). Editing the text reads it as typed text, "
                   "where `<eos>` and `<unk>` are no words.")


def _input_form(vocab):
    """(run, text, targets, rather_than): for explain_next_word, None standing for the most probable word."""
    # the paper's examples need PTB's words: an own model may lack them
    examples = [(i, name) for i, (name, (_, target)) in enumerate(EXAMPLES.items()) if target in vocab]
    if examples:
        st.caption("The paper's examples (fill in the form and run):")
        for col, (i, name) in zip(st.columns(len(examples)), examples):
            col.button(name, on_click=_use_example, args=(name,), key=f"lang_example_{i}")
    with st.form("language_form"):
        text = st.text_area("Text: the words before the one to predict", key="lang_text", height=80,
                            placeholder="the shareholders claimed more",
                            help="Lower case, numbers become N, punctuation is removed and unknown words become "
                                 f"<unk>, as in the text the model was trained on ({vocab.corpus}). The model "
                                 f"reads the last {MAX_CONTEXT} words.")
        c1, c2 = st.columns(2)
        target = c1.selectbox("Explain the next word", [TOP_CHOICE] + vocab.words, key="lang_target",
                              help=f"Any word of the {len(vocab):,}-word vocabulary; type to search.")
        second = c2.selectbox("Compare with a second word (same scan)", [NO_SECOND] + vocab.words, key="lang_second")
        rather_than = rather_than_box(c1, vocab)
        submitted = st.form_submit_button("Explain", type="primary", on_click=keep_targets_with_their_text)
    run = submitted or st.session_state.pop(EXPLAIN_NOW_KEY, False)
    targets = [None if target == TOP_CHOICE else target] + ([] if second == NO_SECOND else [second])
    return run, text, targets, rather_than


def _explained(model, baseline: str):
    """The text asked for, explained by the method chosen now from the baseline chosen now, its picture drawn as the
    adaptive rule refines it (a Stop keeps the latest); None without one. Explained on every run, the engine's cache
    answering a repeat: the page's elements keep their places from run to run (the browser keeps an opened expander
    open only there)."""
    if REQUEST_KEY not in st.session_state:
        return None
    tokenized, targets, rather_than = st.session_state[REQUEST_KEY]
    tokenized = dataclasses.replace(tokenized, baseline=baseline)
    settings = page_settings(FAMILY, model, tokenized)
    try:
        return explain_refining(
            "Attributing", "language", f"{model.key}|{tokenized.ids}|{baseline}|{targets}|{rather_than}", settings,
            lambda progress, partial: explain_next_word(
                get_engine(), model.extra, tokenized, targets, settings, progress=progress, model_key=model.key,
                partial=partial, rather_than=rather_than),
            show=first_picture)
    except InputError as exc:
        del st.session_state[REQUEST_KEY]
        st.error(escape_markdown(exc))
        return None


def _choose_model():
    """The sidebar's language model (LoadedModel), or None after saying why there is none."""
    model = choose_model(FAMILY)
    if model is not None:
        st.sidebar.caption(f"{language_views.model_summary(model.extra)}. Train your own with "
                           "`python -m families.language.train --train FILE --valid FILE --out ...` into the models "
                           "folder's language/ folder, or put a Hugging Face model folder there (save_pretrained "
                           "with safetensors).")
    return model


def main() -> None:
    st.title("Language: which words drive the next word")
    st.markdown("A language model of the Penn Treebank (by default the paper's word-level LSTM, Zaremba et al. 2014; "
                "also a GPT-2 trained here on the same text) or your own. Integrated gradients scale the embedding "
                "vectors of **all** the context tokens together from the baseline (zero embeddings by default) to "
                "the text and attribute the softmax probability of the next word to the words (paper Section 3.2), "
                "or with a \"rather than\" word the difference of the two words' log-probabilities.")
    restore_form()
    window = st.session_state.pop(language_runs.OPEN_WINDOW_KEY, None)
    if window is not None:
        _choose_window_model(window)
    model = _choose_model()
    if model is None:
        return
    lm = model.extra
    baseline = choose_baseline(lm)
    _switch_model(model.key, lm.vocab)
    if window is not None:
        _fill_form(window, lm.vocab)
    form_in_url(FAMILY.name, lm.vocab)
    run, text, targets, rather_than = _input_form(lm.vocab)
    if run:
        st.session_state.pop(REQUEST_KEY, None)
        try:
            st.session_state[REQUEST_KEY] = (_tokenize(lm, text), targets, rather_than)
        except InputError as exc:
            st.error(escape_markdown(exc))
    result = _explained(model, baseline)
    _window_note()
    if result is not None:
        show_result(FAMILY, model, result)
    elif not run:
        st.info("Type a text (or pick one of the paper's examples) and press Explain.")


run_page(main)
