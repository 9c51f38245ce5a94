"""User text (a SMILES, a file name, a word) inside Markdown: shown as typed, never read as markup."""
from __future__ import annotations

import re

# links ("[N+](=O)" reads as one), emphasis, code, HTML, LaTeX ($), strikethrough and table cells
MARKUP = re.compile(r"([\\`*_\[\]<>$~|])")


def escape_markdown(text: str) -> str:
    """`text` with every character Markdown (or Streamlit's LaTeX) would read as markup backslash-escaped."""
    return MARKUP.sub(r"\\\1", str(text))
