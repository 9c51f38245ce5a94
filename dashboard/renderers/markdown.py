"""User text (a SMILES, a file name, a word) inside Markdown: shown as typed, never read as markup."""
from __future__ import annotations

import re

# anywhere: links ("[N+](=O)" reads as one), emphasis, code, HTML and entities ("&amp;"), LaTeX ($), strikethrough,
# table cells, and Streamlit's emoji (":o:") and colours (":red[...]")
INLINE = re.compile(r"([\\`*_\[\]<>$~|&:])")
# at a line's start: a heading ("#"), a list item ("-", "+") or a numbered one ("1." or "1)")
BLOCK = re.compile(r"^(\s*(?:\d+(?=[.)]))?)([#+.)-])", re.M)


def escape_markdown(text: str) -> str:
    """`text` with the characters Markdown (or Streamlit's emoji and colours) would read as markup backslash-escaped."""
    return BLOCK.sub(r"\1\\\2", INLINE.sub(r"\\\1", str(text)))
