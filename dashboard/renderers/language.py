"""Tables and charts for the Language page (paper Figures 8-10). Pure: pandas and altair, no Streamlit.

All functions take a next-word explanation (families.language.explanation.NextWordExplanation, read by its
attributes: arrays [target, alpha, word]).
Colours: the signed scale of dashboard.renderers.colours, red for words that raise the target's F (its probability,
or a contrast's difference of log-probabilities), blue for words that lower it, white for none, with its colour bar
under each chart.
"""
from __future__ import annotations

from typing import Sequence

import altair as alt
import numpy as np
import pandas as pd

from dashboard.renderers import colours
from families.language.baselines import LABELS
from families.language.explanation import INTERIOR_QUANTITIES, word_columns

IG_ROW = "Integrated gradients"
GRADIENT_ROW = "Gradient x input (alpha = 1)"
CELL_WIDTH = 96
PLOT_WIDTH = 720
# Width and height below are the plotting area; axes, legend and title come on top. (Streamlit's default,
# autosize "fit", would squeeze them all into the width and leave a few words no room at all.)
PAD = alt.AutoSizeParams(type="pad", contains="padding")


def _cell_width(n_words: int) -> int:
    """Cells shrink so that the whole context fits the page (about PLOT_WIDTH pixels of plot)."""
    return int(min(CELL_WIDTH, max(12, PLOT_WIDTH // max(n_words, 1))))


def _roomy(n_words: int) -> bool:
    return _cell_width(n_words) >= 56  # room for upright labels and printed values (up to 12 words)


def word_axis(n_words: int, orient: str = "top") -> alt.Axis:
    """Word labels without the position prefix ("1 the" shows as "the"), upright when they fit."""
    roomy = _roomy(n_words)
    return alt.Axis(orient=orient, labelAngle=0 if roomy else -60, labelOverlap=False,
                    labelLimit=_cell_width(n_words) - 4 if roomy else 90, labelFontSize=11 if roomy else 9,
                    labelExpr="substring(datum.label, indexof(datum.label, ' ') + 1)")


def view_width(n_words: int) -> int:
    return max(_cell_width(n_words) * n_words, 200)


def _unit(values: np.ndarray) -> tuple[float, str]:
    """A power of ten for printing small values, as Figure 10 prints "(*1e-3)"."""
    m = float(np.nanmax(np.abs(values))) if np.size(values) else 0.0
    if not np.isfinite(m) or m == 0 or m >= 0.01:
        return 1.0, ""
    exponent = int(np.floor(np.log10(m)))
    return 10.0 ** exponent, f" (values x 1e{exponent})"


def _symmetric(values: np.ndarray) -> float:
    """The signed scale's end: the largest |value| (1 where there is none)."""
    m = float(np.nanmax(np.abs(values))) if np.size(values) else 0.0
    return m if np.isfinite(m) and m > 0 else 1.0


# --- the token table of Figures 9 and 10 ---------------------------------------------------------------

def token_frame(result, targets: Sequence[str] | None = None) -> pd.DataFrame:
    """The token-score table as data (for the CSV): for each target a row of integrated gradients and a
    row of gradient x input, one column per context word, then the row's sum, what F is ("P(than | text)", or a
    contrast's "log P(is | text) - log P(are | text)"), F(text) and F(baseline)."""
    targets = list(targets) if targets is not None else result.target_names
    columns = word_columns(result.words)
    rows = []
    for target in targets:
        t = result.index(target)
        for name, values in ((IG_ROW, result.word_attributions[t]), (GRADIENT_ROW, result.gradient_x_input[t])):
            row = {"target": target, "row": name}
            row.update({c: float(v) for c, v in zip(columns, values)})
            row["sum over words"] = float(np.sum(values))
            row["F"] = result.explained_score(t)
            row["F(text)"] = float(result.probability[t])
            row["F(baseline)"] = float(result.baseline_probability[t])
            rows.append(row)
    return pd.DataFrame(rows)


def scores_frame(result) -> pd.DataFrame:
    """Every target's scores per token (a subword model's pieces) and per word, in long form (for the CSV and JSON
    downloads): a row per target and piece with its word's number, then a row per target and word with its pieces'
    integrated gradients and gradient x input summed (TokenizedText.per_word)."""
    tokenized = result.tokenized
    rows = []
    for t, target in enumerate(result.target_names):
        ig, gradient = result.word_attributions[t], result.gradient_x_input[t]
        rows += [{"target": target, "level": "piece", "position": k + 1, "text": text, "word": word + 1,
                  IG_ROW: float(ig[k]), GRADIENT_ROW: float(gradient[k])}
                 for k, (text, word) in enumerate(zip(result.words, tokenized.word_of_token))]
        word_ig, word_gradient = tokenized.per_word(ig), tokenized.per_word(gradient)
        rows += [{"target": target, "level": "word", "position": w + 1, "text": text, "word": w + 1,
                  IG_ROW: float(word_ig[w]), GRADIENT_ROW: float(word_gradient[w])}
                 for w, text in enumerate(tokenized.context_words)]
    return pd.DataFrame(rows)


def table_caption(result, target: str) -> str:
    """The line under Figures 9/10: "Prediction for than: P(than | text) = 0.5307, total integrated gradients: 0.5322"
    (a contrast's F: "log P(is | text) - log P(are | text) = 1.2")."""
    t = result.index(target)
    fmt = lambda x: f"{x:.4f}" if abs(x) >= 1e-3 else f"{x:.3e}"
    return (f"Prediction for {target}: {result.explained_score(t)} = {fmt(result.probability[t])}, total integrated "
            f"gradients: "
            f"{fmt(result.total_attribution[t])} (F({LABELS[result.tokenized.baseline]}) = "
            f"{result.baseline_probability[t]:.2e})")


def token_table_chart(result, target: str, shared_scale: bool = True, by_word: bool = False) -> alt.Chart:
    """Figures 9/10 as a heat map: a column per context token, a row of integrated gradients and a row of
    gradient x input, values printed in the cells, on a diverging scale centred on zero.

    shared_scale: one colour scale for both rows (shows how small the gradients are, the paper's point);
    False scales each row to its own largest magnitude (shows the gradients' pattern).
    by_word: a column per word of the text, its pieces' scores summed (the same chart where tokens are words).
    """
    t = result.index(target)
    rows = (result.word_attributions[t], result.gradient_x_input[t])
    if by_word:
        columns = word_columns(result.tokenized.context_words)
        rows = tuple(result.tokenized.per_word(values) for values in rows)
    else:
        columns = word_columns(result.words)
    frame = pd.DataFrame({
        "position": np.tile(np.arange(1, len(columns) + 1), 2),
        "word": columns * 2,
        "row": [IG_ROW] * len(columns) + [GRADIENT_ROW] * len(columns),
        "value": np.concatenate(rows).astype(float),
    })
    if shared_scale:
        frame["colour"] = frame["value"]
    else:
        frame["colour"] = frame.groupby("row")["value"].transform(lambda v: v / (np.abs(v).max() or 1.0))
    unit, unit_text = _unit(frame["value"].to_numpy())
    frame["label"] = (frame["value"] / unit).map(lambda v: f"{v:.4f}" if abs(v) >= 5e-4 or v == 0 else f"{v:.1e}")
    vmax = _symmetric(frame["colour"].to_numpy())
    x = alt.X("word:N", sort=columns, title=None, axis=word_axis(len(columns)))
    y = alt.Y("row:N", sort=[IG_ROW, GRADIENT_ROW], title=None, axis=alt.Axis(labelLimit=220))
    base = alt.Chart(frame).encode(x=x, y=y)
    cells = base.mark_rect(stroke="white").encode(
        color=colours.altair_colour("colour", vmax, "score" if shared_scale else "score / row max"),
        tooltip=["word", "row", alt.Tooltip("value:Q", format=".4g")])
    text = base.mark_text(fontSize=10).encode(
        text="label:N",
        color=alt.condition(f"abs(datum.colour) > {0.6 * vmax}", alt.value("white"), alt.value("black")))
    roomy = _roomy(len(columns))
    chart = cells + text if roomy else cells  # narrow cells: values in the tooltips only
    return chart.properties(
        title=alt.TitleParams(f"Next word '{target}'" + (unit_text if roomy else ""),
                              subtitle=[table_caption(result, target)], anchor="start"),
        width=view_width(len(columns)), height=90, autosize=PAD)


# --- Figure 8: saturation ---------------------------------------------------------------------------

def saturation_frame(result) -> pd.DataFrame:
    return pd.DataFrame([
        {"alpha": float(a), "target": target, "F": float(result.saturation[k, t])}
        for t, target in enumerate(result.target_names) for k, a in enumerate(result.alphas)])


def saturation_chart(result) -> alt.Chart:
    """Figure 8: the target's F (its softmax probability; in a scan with a contrast, log-probabilities) as all the
    context's embeddings are scaled by alpha."""
    title = "F: log P(target), a contrast's difference of two" if result.contrasted else "F: P(target)"
    return alt.Chart(saturation_frame(result)).mark_line(point=alt.OverlayMarkDef(size=16)).encode(
        x=alt.X("alpha:Q", scale=alt.Scale(domain=[0, 1]), title="alpha (scale of all the word embeddings)"),
        y=alt.Y("F:Q", title=title),
        color=alt.Color("target:N", title="target"),
        tooltip=["target", alt.Tooltip("alpha:Q", format=".4f"), alt.Tooltip("F:Q", format=".4g")],
    ).properties(height=260)  # no title: Streamlit's "fit" sizing clips it; the page heads the chart


# --- interior gradients -------------------------------------------------------------------------------

def interior_frame(result, target: str, quantity: str = "gradient x embedding") -> pd.DataFrame:
    """One row per (alpha, word): the word's interior gradient summed over the embedding dimensions
    (quantity "gradient") or of gradient x embedding (quantity "gradient x embedding"), with the
    band [alpha_lo, alpha_hi) each alpha stands for in a heat map of uneven alphas."""
    if quantity not in INTERIOR_QUANTITIES:
        raise ValueError(f"quantity must be one of {list(INTERIOR_QUANTITIES)}, got {quantity!r}")
    values = (result.interior_gradient_x_input if quantity == "gradient x embedding"
              else result.interior_gradient_sum)[:, result.index(target)]  # [K, L]
    alphas = np.asarray(result.alphas, dtype=float)
    mids = (alphas[1:] + alphas[:-1]) / 2
    lo = np.concatenate([[alphas[0]], mids])
    hi = np.concatenate([mids, [alphas[-1]]])
    columns = word_columns(result.words)
    n = len(columns)
    return pd.DataFrame({"alpha": np.repeat(alphas, n), "alpha_lo": np.repeat(lo, n), "alpha_hi": np.repeat(hi, n),
                         "word": columns * len(alphas), "value": np.asarray(values, dtype=float).reshape(-1)})


def interior_gradient_heatmap(result, target: str, quantity: str = "gradient x embedding") -> alt.Chart:
    """Each word's interior gradient against alpha (rows: alpha from 0 at the top to 1; columns: words)."""
    frame = interior_frame(result, target, quantity)
    columns = word_columns(result.words)
    return alt.Chart(frame).mark_rect().encode(
        x=alt.X("word:N", sort=columns, title=None, axis=word_axis(len(columns))),
        y=alt.Y("alpha_lo:Q", scale=alt.Scale(domain=[0, 1], reverse=True), title="alpha"),
        y2="alpha_hi:Q",
        color=colours.altair_colour("value", _symmetric(frame["value"].to_numpy()), quantity),
        tooltip=["word", alt.Tooltip("alpha:Q", format=".4f"), alt.Tooltip("value:Q", format=".4g")],
    ).properties(title=alt.TitleParams(f"Interior gradients for '{target}' ({quantity})",
                                       subtitle=[INTERIOR_QUANTITIES[quantity]], anchor="start"),
                 width=view_width(len(columns)), height=300, autosize=PAD)


# --- two targets side by side -------------------------------------------------------------------------

def comparison_frame(result, first: str, second: str) -> pd.DataFrame:
    """Integrated gradients per word for two targets (one scan), and their difference."""
    columns = word_columns(result.words)
    a, b = result.word_attributions[result.index(first)], result.word_attributions[result.index(second)]
    return pd.DataFrame({"word": columns, f"IG for '{first}'": a, f"IG for '{second}'": b,
                         "difference": a - b})


def comparison_chart(result, first: str, second: str, share: bool = False) -> alt.Chart:
    """Grouped bars: each word's integrated gradients for two targets, side by side.

    share: divide by each target's F(text) - F(baseline), so that targets of very different probability
    compare (each target's bars then add up to 1)."""
    columns = word_columns(result.words)
    pair = [result.index(first), result.index(second)]
    values = result.word_attributions[pair]  # [2, L]
    if share:
        gaps = result.probability[pair] - result.baseline_probability[pair]
        values = values / np.where(gaps != 0, gaps, 1.0)[:, None]
    frame = pd.DataFrame({"word": columns * 2, "target": np.repeat([first, second], len(columns)),
                          "IG": values.reshape(-1).astype(float)})
    subtitle = "; ".join(f"{result.explained_score(t)} = {result.probability[t]:.4g}, total IG = "
                         f"{result.total_attribution[t]:.4g}" for t in pair)
    return alt.Chart(frame).mark_bar().encode(
        x=alt.X("word:N", sort=columns, title=None, axis=word_axis(len(columns), "bottom")),
        xOffset=alt.XOffset("target:N", sort=[first, second]),
        y=alt.Y("IG:Q", title="share of F(text) - F(baseline)" if share else "integrated gradients"),
        color=alt.Color("target:N", sort=[first, second], scale=alt.Scale(range=["#1f77b4", "#ff7f0e"])),
        tooltip=["word", "target", alt.Tooltip("IG:Q", format=".4g")],
    ).properties(title=alt.TitleParams(f"'{first}' vs '{second}'", subtitle=[subtitle], anchor="start"),
                 width=view_width(len(columns)), height=260, autosize=PAD)


# --- small tables -------------------------------------------------------------------------------------

def tokenization_frame(tokenized) -> pd.DataFrame:
    """What became of each piece of the text: the PTB tokens, remarks, and whether the model reads it."""
    return pd.DataFrame([
        {"typed": w.text, "tokens": " ".join(w.tokens) or "(removed)", "remarks": "; ".join(w.notes),
         "in context": w.used}
        for w in tokenized.words])


def top_k_frame(top: Sequence[tuple[str, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"rank": i + 1, "word": w, "probability": p} for i, (w, p) in enumerate(top)])


def model_summary(lm) -> str:
    """One line on a loaded language model (families.language.LanguageModel or a Hugging Face folder's): its text,
    vocabulary and perplexity (no folders)."""
    metrics = lm.metrics
    split = "test" if "test_ppl" in metrics else "validation"
    ppl = metrics.get("test_ppl", metrics.get("valid_ppl"))
    return (f"Trained on {lm.vocab.corpus}; {len(lm.vocab):,}-{lm.vocab.unit} vocabulary"
            + ("" if ppl is None else f"; {split} perplexity {ppl:.2f}"))
