"""The Language page's form: the text and the words picked for it (the word to explain, a second word, and a word the
first is explained rather than), as last explained or filled in. They last in the session (Streamlit forgets widgets'
values while another page shows) and in the URL (dashboard.url_state), so that a reload or a copied link explains the
same text for the same words."""
from __future__ import annotations

import streamlit as st

from dashboard.url_state import among, link, linked, nonblank, settings_in_url

TOP_CHOICE = "(most probable next word)"
NO_SECOND = NO_CONTRAST = "(none)"
# (text, target, second word, rather-than word) as last explained or filled in: the words picked for that text
FORM_KEY = "language_form_words"
FORM_WIDGETS = ("lang_text", "lang_target", "lang_second", "lang_rather_than")
EXPLAIN_NOW_KEY = "lang_run"  # set: the page explains the form's text in this run, without a click on Explain
UNPICKED = (TOP_CHOICE, NO_SECOND, NO_CONTRAST)  # the word boxes' values where none is picked
LINKED_WORDS = ("target", "second", "rather_than")  # the word boxes' names in the URL


def set_form(text: str, target: str, second: str, rather_than: str = NO_CONTRAST) -> None:
    """Fill the form with a text and the words picked for it."""
    st.session_state.update(zip(FORM_WIDGETS, (text, target, second, rather_than)))
    st.session_state[FORM_KEY] = (text, target, second, rather_than)


def keep_targets_with_their_text() -> None:
    """On Explain: a word picked for another text (an example's, a run window's, an earlier one) is not carried over to
    a new text, which gets its own most probable next word, no second word and no contrast; a word picked along with
    it stays."""
    state = st.session_state
    text, *picked = (state[widget] for widget in FORM_WIDGETS)
    if FORM_KEY in state and state[FORM_KEY][0] != text:
        picked = [unpicked if word == earlier else word
                  for word, earlier, unpicked in zip(picked, state[FORM_KEY][1:], UNPICKED)]
    set_form(text, *picked)


def rather_than_box(column, vocab) -> str | None:
    """The form's "rather than" word: None for none (the word is explained on its own)."""
    other = column.selectbox("... rather than (a contrast)", [NO_CONTRAST] + vocab.words, key="lang_rather_than",
                             help="Explain log P(word | text) - log P(this word | text): which words make the model "
                                  "say the first rather than this one (\"is rather than are\"). Every word of the "
                                  "scan is then explained on its log-probability.")
    return None if other == NO_CONTRAST else other


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
    chosen = linked(page, text=nonblank, target=word, second=word, rather_than=word)
    if "text" in chosen:
        set_form(chosen["text"], *(chosen.get(name, unpicked) for name, unpicked in zip(LINKED_WORDS, UNPICKED)))
        st.session_state[EXPLAIN_NOW_KEY] = True
    text, *words = st.session_state.get(FORM_KEY, (None, *UNPICKED))
    link(text=text, **{name: None if word == unpicked else word
                       for name, word, unpicked in zip(LINKED_WORDS, words, UNPICKED)})
