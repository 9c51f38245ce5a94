"""The Language page's sections for one explanation (not a page): what the model reads, its top next words, the word
scores (Figures 9 and 10), completeness, saturation (Figure 8), interior gradients and two next words side by side,
then methods side by side. View controls live in fragments: they redraw and never rescan."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard.renderers import colours, method_comparison
from dashboard.renderers import language as language_views
from dashboard.renderers.markdown import escape_markdown
from dashboard.scaffold import compare_methods, completeness_panel, sanity_check, straight_line
from dashboard.sections import language_tokens
from families.language.baselines import LABELS
from families.language.explanation import GRADIENT_QUANTITY, IG_QUANTITY, INTERIOR_QUANTITIES, word_columns


def pick_target(result, key: str) -> str:
    names = result.target_names
    return st.radio("Target", names, horizontal=True, key=key) if len(names) > 1 else names[0]


def show_tokenization(tokenized) -> None:
    st.subheader("1. What the model reads")
    shown = " ".join(f"`{t}`" for t in tokenized.texts)  # code spans: the tokens as they are, never markup
    st.markdown(f"**Context ({len(tokenized)} tokens):** {shown}")
    for notice in tokenized.notices:  # they quote the words typed
        st.warning(escape_markdown(notice))
    changed = any(w.notes or not w.used for w in tokenized.words)
    with st.expander("Tokenization of each word (which became <unk> or N)", expanded=changed):
        st.dataframe(language_views.tokenization_frame(tokenized), hide_index=True, width="stretch")


def show_contrast(result) -> None:
    """Where a target is a contrast: what its F is, and why every target of the scan is on log-probabilities."""
    for t, other in enumerate(result.rather_than):
        if other is not None:
            st.caption(f"F for {escape_markdown(result.target_names[t])}: "
                       f"{escape_markdown(result.explained_score(t))}. A contrast is explained on log-probabilities, "
                       "where the softmax's normaliser cancels: a difference of two probabilities would also move "
                       "with every other word. Every word of this scan is explained on its log-probability.")


def show_top(top) -> None:
    st.subheader(f"2. Top {len(top)} next words")
    st.dataframe(language_views.top_k_frame(top), hide_index=True,
                 column_config={"probability": st.column_config.NumberColumn(format="%.4f")})


@st.fragment
def show_table(result) -> None:
    st.subheader("3. Word scores (Figures 9 and 10)")
    target = pick_target(result, "lang_table_target")
    shared = st.toggle("One colour scale for both rows", value=True, key="lang_shared_scale",
                       help="On: the gradient row looks pale next to integrated gradients (saturation). "
                            "Off: each row scaled to its own largest value.")
    words = language_tokens.by_word(result)
    st.altair_chart(language_views.token_table_chart(result, target, shared_scale=shared, by_word=words),
                    width="content")
    st.caption(f"**{language_views.IG_ROW}**: {IG_QUANTITY}. **{language_views.GRADIENT_ROW}**: {GRADIENT_QUANTITY}. "
               + colours.caption(escape_markdown(result.explained_score(result.index(target)))))
    st.download_button("Download the table (CSV)", language_views.token_frame(result).to_csv(index=False),
                       file_name="language_word_scores.csv", mime="text/csv", key="lang_csv")
    language_tokens.pieces_and_words_downloads(result)


def show_method_scores(result) -> None:
    """Another method's word scores: a row per target, a column per context word."""
    st.subheader(f"3. Word scores: {method_comparison.chosen_method(result.settings).label}")
    frame = pd.DataFrame(result.word_attributions, index=result.target_names, columns=word_columns(result.words))
    st.dataframe(frame)
    st.caption("Each word's score: the method's attributions summed over the word's embedding dimensions.")
    st.download_button("Download the table (CSV)", frame.to_csv(index_label="target"),
                       file_name="language_word_scores.csv", mime="text/csv", key="lang_csv")


def words_side_by_side(runs) -> None:
    """The compared methods' word scores as token tables: a row per method, a column per context word."""
    words = word_columns(runs[0].explanation.words)
    st.dataframe(method_comparison.scores_table(runs, words).set_index("feature").T)


def first_picture(result) -> None:
    """The first target's word scores: what the page shows while the scan refines."""
    st.altair_chart(language_views.token_table_chart(result, result.target_names[0]), width="content")


def show_saturation(result) -> None:
    st.subheader("5. Saturation (Figure 8)")
    st.altair_chart(language_views.saturation_chart(result), width="stretch")
    st.caption("All the context's embedding vectors are scaled together by alpha; alpha = 0 is the baseline "
               f"({LABELS[result.tokenized.baseline]}), alpha = 1 the text. A curve that is flat near alpha = 1 means "
               "the gradient at the text says little: that is why the gradient row is small.")


@st.fragment
def show_interior(result) -> None:
    st.subheader("6. Interior gradients")
    c1, c2 = st.columns(2)
    quantity = c1.radio("Quantity", list(INTERIOR_QUANTITIES), horizontal=True, key="lang_interior_quantity")
    with c2:
        target = pick_target(result, "lang_interior_target")
    st.altair_chart(language_views.interior_gradient_heatmap(result, target, quantity), width="content")


@st.fragment
def show_comparison(result) -> None:
    if len(result.target_names) < 2:
        return
    first, second = result.target_names[:2]
    st.subheader("7. Two next words side by side")
    share = st.toggle("As a share of each target's F(text) - F(baseline)", value=False, key="lang_compare_share",
                      help="Targets of very different probability become comparable: each target's bars add up to 1.")
    st.altair_chart(language_views.comparison_chart(result, first, second, share=share), width="content")
    st.dataframe(language_views.comparison_frame(result, first, second), hide_index=True)


def show_result(family, model, result) -> None:
    """Every section of one explanation, in the page's order; those of the straight-line scan only for it."""
    show_tokenization(result.tokenized)
    show_top(result.top_words)
    show_contrast(result)
    integrated = result.settings.method == method_comparison.SCAN
    (show_table if integrated else show_method_scores)(result)
    completeness_panel(result, what="text", baseline_choice=False, title="4. Completeness")
    if straight_line(result.settings, "Saturation, interior gradients and two next words side by side"):
        show_saturation(result)
        show_interior(result)
        show_comparison(result)
    compare_methods(family, model, result.tokenized, result.engine_targets, result.settings, key="lang_compare",
                    show=words_side_by_side)
    sanity_check(family, model, result.tokenized, result.engine_targets, result.settings, key="lang_sanity")
