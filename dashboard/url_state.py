"""Choices that last in the URL: a page writes what it shows into its query parameters (`link`), and the URL a session
opens the page with (a reload, a copied link) sets those choices again before the page draws them (`linked`).

A reload starts a new session, and the sidebar clears the query parameters when it opens another page: so the
parameters a page was opened with are read once per session, and a choice the user changes afterwards is never set
back by them. The URL is user text: a value that cannot be used is quoted (escaped) in a warning and the default
stands."""
from __future__ import annotations

from dataclasses import fields, replace
from typing import Callable, Collection

import streamlit as st

from dashboard.renderers.markdown import escape_markdown
from dashboard.session import BUDGET, SETTINGS_KEY, STEPS, TOLERANCE, scan_settings
from ig_core import METHODS, RULES, ScanSettings
from ig_core.settings import literal

Reader = Callable[[str], object]  # a parameter's text into its value; ValueError (saying why) when it cannot be used
OPENED_WITH_KEY = "url_state_opened_with"  # {page: the query parameters it was opened with, not read yet}
QUOTED = 80  # characters of a refused value quoted in its warning
LONGEST_OPTIONS = 500  # characters of method options read (Python literals: their parser's work grows with the text)


def linked(page: str, **readers: Reader) -> dict:
    """The values that the URL which opened `page` in this session gives for the readers' parameters, each read once:
    {name: value} for those present that their reader takes; a warning for each it refuses."""
    opened_with = st.session_state.setdefault(OPENED_WITH_KEY, {})
    if page not in opened_with:
        opened_with[page] = st.query_params.to_dict()
    pending, values = opened_with[page], {}
    for name, read in readers.items():
        if name not in pending:
            continue
        text = pending.pop(name)
        try:
            values[name] = read(text)
        except ValueError as exc:
            quoted = text if len(text) <= QUOTED else text[:QUOTED - 3] + "..."
            st.warning(f"The link's {name} value \"{escape_markdown(quoted)}\" is not used ({escape_markdown(exc)}): "
                       "the default stands.")
    return values


def link(**values: object) -> None:
    """Write the page's current choices into its URL, for a reload or a copied link: a value as its text, a list or a
    tuple as its items joined by commas, None leaving the parameter out. Only changes are sent (each is a message to
    the browser)."""
    for name, value in values.items():
        if value is None:
            if name in st.query_params:
                del st.query_params[name]
            continue
        text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
        if st.query_params.get(name) != text:
            st.query_params[name] = text


def among(options: Collection[str], what: str) -> Reader:
    """A reader of one of the options (`what` names them: "one of the sample photos")."""
    def read(text: str) -> str:
        if text not in options:
            raise ValueError(f"not {what}")
        return text
    return read


def whole_number(low: int, high: int) -> Reader:
    return _number(int, "a whole number", low, high)


def decimal(low: float, high: float) -> Reader:
    return _number(float, "a number", low, high)


def _number(kind: type, what: str, low, high) -> Reader:
    """A reader of a `kind` between low and high (NaN is not)."""
    def read(text: str):
        try:
            number = kind(text)
        except ValueError:
            raise ValueError(f"not {what}") from None
        if not low <= number <= high:
            raise ValueError(f"not between {low:g} and {high:g}")
        return number
    return read


def indices(count: int, most: int) -> Reader:
    """A reader of 1 to `most` different indices below `count`, separated by commas ("3,17")."""
    def read(text: str) -> list[int]:
        try:
            numbers = [int(part) for part in text.split(",")]
        except ValueError:
            raise ValueError("not whole numbers separated by commas") from None
        if not 1 <= len(numbers) <= most or len(set(numbers)) < len(numbers) or not all(
                0 <= number < count for number in numbers):
            raise ValueError(f"not up to {most} different numbers from 0 to {count - 1}")
        return numbers
    return read


def accepted_by(check: Callable[[str], object]) -> Reader:
    """A reader of the text that `check` accepts (a ValueError from it says why not)."""
    def read(text: str) -> str:
        check(text)
        return text
    return read


def nonblank(text: str) -> str:
    if not text.strip():
        raise ValueError("empty")
    return text


# --- the scan settings every page shares ----------------------------------------------------------------------------

def settings_in_url(page: str) -> ScanSettings:
    """The shared scan settings, first as the URL that opened `page` sets them (its method, the method's options that
    differ from their defaults, the rule, steps, tolerance and step budget), then written into the URL."""
    chosen = linked(page, method=among(METHODS, "a method"), options=options_from_text, rule=among(RULES, "a rule"),
                    steps=whole_number(*STEPS), tolerance=decimal(*TOLERANCE), budget=whole_number(*BUDGET))
    current = scan_settings()
    if chosen:
        method = chosen.get("method", current.method)
        options = chosen.get("options", current.method_options if method == current.method else ())
        try:
            current = replace(current, method=method, method_options=options, rule=chosen.get("rule", current.rule),
                              steps=chosen.get("steps", current.steps),
                              tolerance=chosen.get("tolerance", current.tolerance),
                              max_steps=chosen.get("budget", current.max_steps))
        except ValueError as exc:  # options the method refuses: its message says what it takes
            st.warning(f"The link's scan settings are not used ({escape_markdown(exc)}): the settings in force stand.")
        else:
            st.session_state[SETTINGS_KEY] = current
    link(method=current.method, options=options_text(current), rule=current.rule, steps=current.steps,
         tolerance=f"{current.tolerance:g}", budget=current.max_steps)
    return current


def options_text(settings: ScanSettings) -> str | None:
    """The method's options that differ from their defaults, as NAME=VALUE pairs (Python literals) joined by ";"."""
    defaults = {field.name: field.default for field in fields(METHODS[settings.method].Options)}
    changed = [f"{name}={value!r}" for name, value in settings.method_options if defaults.get(name) != value]
    return ";".join(changed) or None


def options_from_text(text: str) -> dict:
    """options_text read back: {name: value}; the method itself checks the names and values."""
    if len(text) > LONGEST_OPTIONS:
        raise ValueError(f"longer than {LONGEST_OPTIONS} characters")
    options = {}
    for pair in text.split(";"):
        name, equals, value = pair.partition("=")
        if not (equals and name.strip()):
            raise ValueError("not NAME=VALUE pairs separated by semicolons")
        options[name.strip()] = literal(value.strip())
    return options
