"""The Language page's controls for a subword model (a Hugging Face folder's): the baseline the scan starts from (in
the sidebar), the token table's columns as pieces or words, and the downloads of both. Where every token is a word
and zero embeddings are the only baseline (the LSTM), none of them shows."""
from __future__ import annotations

import json

import streamlit as st

from dashboard.renderers import language as language_views
from families.language.baselines import ZEROS, offered

BASELINE_KEY = "lang_baseline"


def choose_baseline(lm) -> str:
    """The baseline chosen in the sidebar among those the model offers (families.language.baselines); zero
    embeddings, without a choice, where the model offers no other."""
    choices = offered(lm)
    if len(choices) == 1:
        return ZEROS
    if st.session_state.get(BASELINE_KEY) not in choices:  # the previous model's choice, which this one lacks
        st.session_state.pop(BASELINE_KEY, None)
    return st.sidebar.selectbox("Baseline", list(choices), format_func=choices.get, key=BASELINE_KEY,
                                help="What integrated gradients scale the context's token embeddings from: zero "
                                     "embeddings, or one special token's embedding at every position. F(baseline) "
                                     "is the model's prediction there.")


def by_word(result) -> bool:
    """Whether the token table shows words (their pieces' scores summed) rather than pieces: a choice where a word
    has several pieces, words first."""
    if result.tokenized.pieces_are_words:
        return False
    return st.radio("Scores per", ["word", "piece"], horizontal=True, key="lang_score_level",
                    help="A word's score is the sum of its pieces' (so the words' scores add up as the pieces' "
                         "do).") == "word"


def pieces_and_words_downloads(result) -> None:
    """Every target's scores per piece (with its word's number) and per word, as CSV and JSON; only where a word
    has several pieces."""
    if result.tokenized.pieces_are_words:
        return
    frame = language_views.scores_frame(result)
    csv_column, json_column = st.columns(2)
    csv_column.download_button("Pieces and words (CSV)", frame.to_csv(index=False),
                               file_name="language_piece_and_word_scores.csv", mime="text/csv", key="lang_pieces_csv")
    # json.dumps writes floats exactly (pandas' to_json rounds them to 10 digits)
    json_column.download_button("Pieces and words (JSON)", json.dumps(frame.to_dict(orient="records"), indent=1),
                                file_name="language_piece_and_word_scores.json", mime="application/json",
                                key="lang_pieces_json")
