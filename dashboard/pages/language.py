"""Language: which earlier words drive the LSTM's next-word prediction (paper Section 3.2, Figures 8-10).

Thin: the Language family's models (families.language.family: the default checkpoint and the models folder's,
cached by content), a form for the text and the targets, one call to families.language.attribution.explain_next_word
(one forward pass for the top words, one engine scan for all targets), tables and charts from dashboard.renderers.language and
the shared completeness panel. The result is kept in the session and view controls live in fragments.

A window of a corpus run (dashboard/pages/language_runs.py, families.language.run_rows.OpenWindow) opens here with its model,
its target word and the other of the next word and the model's top word: while the text is the window's, its exact tokens are read as the run
read them (typed text would turn <eos> into <unk>).
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from families.language import run_rows as language_runs
from families.registry import FAMILIES
from families.language import TextError
from families.language import attribution as language_attribution
from families.language.ptb import window_tokens
from dashboard.renderers import language as language_views
from dashboard.renderers import method_comparison
from dashboard.scaffold import choose_model, compare_methods, completeness_panel, page_settings, run_page, straight_line
from dashboard.session import explain_refining, get_engine

FAMILY = FAMILIES["language"]
TOP_CHOICE = "(most probable next word)"
NO_SECOND = "(none)"
EXAMPLES = {  # the paper's two examples: the context ends right before the word predicted
    "Figure 9: the shareholders claimed more -> than": ("the shareholders claimed more", "than"),
    "Figure 10: ... came news that the -> ual": ("and N minutes after the ual trading halt came news that the", "ual"),
}
RESULT_KEY = "language_result"
PENDING_KEY = "language_pending"  # (tokens, targets) asked for and not yet explained
MODEL_KEY = "language_model_key"  # the model the form's words and the result belong to
WINDOW_KEY = "lang_window"  # the run's window the form holds (an OpenWindow)


def _switch_model(key: str, vocab) -> None:
    """Another checkpoint: its vocabulary may lack the words picked, and the result was the other model's."""
    if st.session_state.get(MODEL_KEY) == key:
        return
    st.session_state[MODEL_KEY] = key
    st.session_state.pop(RESULT_KEY, None)
    for key, default in (("lang_target", TOP_CHOICE), ("lang_second", NO_SECOND)):
        if st.session_state.get(key, default) not in vocab:
            st.session_state[key] = default


def _use_example(name: str) -> None:
    text, target = EXAMPLES[name]
    st.session_state["lang_text"] = text
    st.session_state["lang_target"] = target
    st.session_state["lang_second"] = NO_SECOND
    st.session_state["lang_run"] = True


def _choose_window_model(window: language_runs.OpenWindow) -> None:
    """The sidebar's model: the one the window's run used, where the models folder still has it."""
    if window.model_name in [source.name for source in FAMILY.sources()]:
        st.session_state[f"{FAMILY.name}_model"] = window.model_name


def _fill_form(window: language_runs.OpenWindow, vocab) -> None:
    """The form holds the window, its word to explain and the second word; explained at once."""
    st.session_state[WINDOW_KEY] = window
    st.session_state["lang_text"] = window.text
    st.session_state["lang_target"] = window.target if window.target in vocab else TOP_CHOICE
    st.session_state["lang_second"] = window.second if window.second in vocab else NO_SECOND
    st.session_state["lang_run"] = True


def _tokenize(lm, text: str):
    """The window's exact tokens while the text is the window's; otherwise the text as typed."""
    window = st.session_state.get(WINDOW_KEY)
    if window is not None and text == window.text:
        return window_tokens(lm.vocab, window.words)
    st.session_state.pop(WINDOW_KEY, None)
    return language_attribution.tokenize_text(lm, text)


def _window_note() -> None:
    window = st.session_state.get(WINDOW_KEY)
    if window is not None:
        st.caption(f"From {window.origin}: its exact tokens are read, as the run read them ({window.settings}; "
                   "this page scans with the Home page's settings). Editing the text reads it as typed text, "
                   "where `<eos>` and `<unk>` are no words.")


def _input_form(vocab):
    """(run, text, targets): targets for explain_next_word, None standing for the most probable word."""
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
                                 f"reads the last {language_attribution.MAX_CONTEXT} words.")
        c1, c2 = st.columns(2)
        target = c1.selectbox("Explain the next word", [TOP_CHOICE] + vocab.words, key="lang_target",
                              help=f"Any word of the {len(vocab):,}-word vocabulary; type to search.")
        second = c2.selectbox("Compare with a second word (same scan)", [NO_SECOND] + vocab.words, key="lang_second")
        submitted = st.form_submit_button("Explain", type="primary")
    run = submitted or st.session_state.pop("lang_run", False)
    targets = [None if target == TOP_CHOICE else target] + ([] if second == NO_SECOND else [second])
    return run, text, targets


def _pick_target(result, key: str) -> str:
    names = result.target_names
    return st.radio("Target", names, horizontal=True, key=key) if len(names) > 1 else names[0]


def _show_tokenization(tokenized) -> None:
    st.subheader("1. What the model reads")
    shown = " ".join(f"`{t}`" for t in tokenized.texts)
    st.markdown(f"**Context ({len(tokenized)} tokens):** {shown}")
    for notice in tokenized.notices:
        st.warning(notice)
    changed = any(w.notes or not w.used for w in tokenized.words)
    with st.expander("Tokenization of each word (which became <unk> or N)", expanded=changed):
        st.dataframe(language_views.tokenization_frame(tokenized), hide_index=True, width="stretch")


def _show_top(top) -> None:
    st.subheader(f"2. Top {len(top)} next words")
    st.dataframe(language_views.top_k_frame(top), hide_index=True,
                 column_config={"probability": st.column_config.NumberColumn(format="%.4f")})


@st.fragment
def _show_table(result) -> None:
    st.subheader("3. Word scores (Figures 9 and 10)")
    target = _pick_target(result, "lang_table_target")
    shared = st.toggle("One colour scale for both rows", value=True, key="lang_shared_scale",
                       help="On: the gradient row looks pale next to integrated gradients (saturation). "
                            "Off: each row scaled to its own largest value.")
    st.altair_chart(language_views.token_table_chart(result, target, shared_scale=shared), width="content")
    st.caption(f"**{language_views.IG_ROW}**: {language_attribution.IG_QUANTITY}. "
               f"**{language_views.GRADIENT_ROW}**: {language_attribution.GRADIENT_QUANTITY}.")
    st.download_button("Download the table (CSV)", language_views.token_frame(result).to_csv(index=False),
                       file_name="language_word_scores.csv", mime="text/csv", key="lang_csv")


def _show_method_scores(result) -> None:
    """Another method's word scores: a row per target, a column per context word."""
    st.subheader(f"3. Word scores: {method_comparison.chosen_method(result.settings).label}")
    frame = pd.DataFrame(result.word_attributions, index=result.target_names,
                         columns=language_attribution.word_columns(result.words))
    st.dataframe(frame)
    st.caption("Each word's score: the method's attributions summed over the word's embedding dimensions.")
    st.download_button("Download the table (CSV)", frame.to_csv(index_label="target"),
                       file_name="language_word_scores.csv", mime="text/csv", key="lang_csv")


def _words_side_by_side(runs) -> None:
    """The compared methods' word scores as token tables: a row per method, a column per context word."""
    words = language_attribution.word_columns(runs[0].explanation.words)
    st.dataframe(method_comparison.scores_table(runs, words).set_index("feature").T)


def _explain(model, tokenized, targets, settings):
    """The explanation, its picture drawn as the adaptive rule refines it (a Stop keeps the latest)."""
    return explain_refining(
        "Attributing", "language", f"{model.key}|{tokenized.ids}|{targets}", settings,
        lambda progress, partial: language_attribution.explain_next_word(
            get_engine(), model.extra, tokenized, targets, settings, progress=progress, model_key=model.key,
            partial=partial),
        show=_first_picture)


def _first_picture(result) -> None:
    st.altair_chart(language_views.token_table_chart(result, result.target_names[0]), width="content")


def _show_saturation(result) -> None:
    st.subheader("5. Saturation (Figure 8)")
    st.altair_chart(language_views.saturation_chart(result), width="stretch")
    st.caption("All the context's embedding vectors are scaled together by alpha; alpha = 0 is the baseline "
               "(all-zero embeddings), alpha = 1 the text. A curve that is flat near alpha = 1 means the gradient "
               "at the text says little: that is why the gradient row is small.")


@st.fragment
def _show_interior(result) -> None:
    st.subheader("6. Interior gradients")
    c1, c2 = st.columns(2)
    quantity = c1.radio("Quantity", list(language_attribution.INTERIOR_QUANTITIES), horizontal=True,
                        key="lang_interior_quantity")
    with c2:
        target = _pick_target(result, "lang_interior_target")
    st.altair_chart(language_views.interior_gradient_heatmap(result, target, quantity), width="content")


@st.fragment
def _show_comparison(result) -> None:
    if len(result.target_names) < 2:
        return
    first, second = result.target_names[:2]
    st.subheader("7. Two next words side by side")
    share = st.toggle("As a share of each target's F(text) - F(baseline)", value=False, key="lang_compare_share",
                      help="Targets of very different probability become comparable: each target's bars add up to 1.")
    st.altair_chart(language_views.comparison_chart(result, first, second, share=share), width="content")
    st.dataframe(language_views.comparison_frame(result, first, second), hide_index=True)


def _choose_model():
    """The sidebar's language model (LoadedModel), or None after saying why there is none."""
    model = choose_model(FAMILY)
    if model is not None:
        st.sidebar.caption(f"{language_views.model_summary(model.extra)}. Train your own with "
                           "`python -m families.language.train --train FILE --valid FILE --out ...` into the models "
                           "folder's language/ folder.")
    return model


def main() -> None:
    st.title("Language: which words drive the next word")
    st.markdown("A word-level LSTM language model (Zaremba et al. 2014; by default the small one of the Penn "
                "Treebank). Integrated gradients scale the embedding vectors of **all** the context words together "
                "from zero (the baseline) to the text and attribute the softmax probability of the next word to the "
                "words (paper Section 3.2).")
    window = st.session_state.pop(language_runs.OPEN_WINDOW_KEY, None)
    if window is not None:
        _choose_window_model(window)
    model = _choose_model()
    if model is None:
        return
    lm = model.extra
    _switch_model(model.key, lm.vocab)
    if window is not None:
        _fill_form(window, lm.vocab)
    run, text, targets = _input_form(lm.vocab)
    if run:
        st.session_state.pop(RESULT_KEY, None)
        try:
            st.session_state[PENDING_KEY] = (_tokenize(lm, text), targets)
        except TextError as exc:
            st.error(str(exc))
    if PENDING_KEY in st.session_state:  # asked for and not yet explained: a click on Stop reruns the page to here
        tokenized, targets = st.session_state[PENDING_KEY]
        try:
            st.session_state[RESULT_KEY] = _explain(model, tokenized, targets, page_settings(FAMILY, model, tokenized))
        except TextError as exc:
            st.error(str(exc))
        del st.session_state[PENDING_KEY]
    elif RESULT_KEY in st.session_state:  # the same text again, by the method chosen now
        result = st.session_state[RESULT_KEY]
        settings = page_settings(FAMILY, model, result.tokenized)
        if settings != result.settings:
            st.session_state[RESULT_KEY] = _explain(model, result.tokenized, result.targets, settings)
    _window_note()
    result = st.session_state.get(RESULT_KEY)
    if result is None:
        if not run:
            st.info("Type a text (or pick one of the paper's examples) and press Explain.")
        return
    _show_tokenization(result.tokenized)
    _show_top(result.top_words)
    integrated = result.settings.method == method_comparison.SCAN
    (_show_table if integrated else _show_method_scores)(result)
    completeness_panel(result, what="text", baseline_choice=False, title="4. Completeness")
    if straight_line(result.settings, "Saturation, interior gradients and two next words side by side"):
        _show_saturation(result)
        _show_interior(result)
        _show_comparison(result)
    compare_methods(FAMILY, model, result.tokenized, result.targets, result.settings, key="lang_compare",
                    show=_words_side_by_side)


run_page(main)
