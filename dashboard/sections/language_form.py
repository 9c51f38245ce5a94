"""The Language page's form: the text and the words picked for it, as last explained or filled in. They last in the
session (Streamlit forgets widgets' values while another page shows) and in the URL (dashboard.url_state), so that a
reload or a copied link explains the same text for the same words."""
from __future__ import annotations

import streamlit as st

from dashboard.url_state import among, link, linked, nonblank, settings_in_url

TOP_CHOICE = "(most probable next word)"
NO_SECOND = "(none)"
FORM_KEY = "language_form_words"  # (text, target, second word) as last explained or filled in: targets of that text
FORM_WIDGETS = ("lang_text", "lang_target", "lang_second")
EXPLAIN_NOW_KEY = "lang_run"  # set: the page explains the form's text in this run, without a click on Explain


def set_form(text: str, target: str, second: str) -> None:
    """Fill the form with a text and the words picked for it."""
    st.session_state.update(zip(FORM_WIDGETS, (text, target, second)))
    st.session_state[FORM_KEY] = (text, target, second)


def restore_form() -> None:
    """The form as last explained or filled in: Streamlit forgets widgets' values while another page shows."""
    for widget, value in zip(FORM_WIDGETS, st.session_state.get(FORM_KEY, ())):
        st.session_state.setdefault(widget, value)


def form_in_url(page: str, vocab) -> None:
    """The scan settings, then the text and words that the URL which opened the page names: they fill the form and are
    explained at once (a word the model's vocabulary lacks is named in a warning, and its box keeps its default). The
    form as last explained or filled in is written into the URL."""
    settings_in_url(page)
    word = among(vocab, "a word of the model's vocabulary")
    chosen = linked(page, text=nonblank, target=word, second=word)
    if "text" in chosen:
        set_form(chosen["text"], chosen.get("target", TOP_CHOICE), chosen.get("second", NO_SECOND))
        st.session_state[EXPLAIN_NOW_KEY] = True
    text, target, second = st.session_state.get(FORM_KEY, (None, TOP_CHOICE, NO_SECOND))
    link(text=text, target=None if target == TOP_CHOICE else target, second=None if second == NO_SECOND else second)
