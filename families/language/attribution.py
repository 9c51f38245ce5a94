"""Which earlier words drive the LSTM's next-word prediction (paper Section 3.2, Figures 8-10).

No Streamlit here: the Language page calls this and draws the result with dashboard.renderers.language.

    lm = load_language_model()
    result = explain_next_word(engine, lm, "the shareholders claimed more", ["than"])
    result.word_attributions[0]     # integrated gradients per context word (Figure 9, first row)
    result.top_words                # the most probable next words

One forward pass gives the most probable next words (and the default target); one engine scan of the Language
family (families.language.family) serves every target asked for and gives a NextWordExplanation
(families.language.explanation).
"""
from __future__ import annotations

from typing import Callable, Sequence

from families.language import LanguageModel, TextError, TokenizedText
from families.language.explanation import NextWordExplanation
from families.language.family import FAMILY, loaded_language_model
from families.language.next_words import (
    MAX_CONTEXT,
    TOP_K,
    as_context,
    most_probable_words,
    next_word_probabilities,
    resolve_targets,
)
from ig_core import AttributionEngine, Contrast, ScanSettings


def explain_next_word(
    engine: AttributionEngine,
    lm: LanguageModel,
    text: str | TokenizedText,
    targets: str | Sequence[str | int | None] | None = None,
    settings: ScanSettings | None = None,
    progress: Callable[[float], None] | None = None,
    max_tokens: int = MAX_CONTEXT,
    top_k: int = TOP_K,
    model_key: str | None = None,
    partial: Callable[[NextWordExplanation], bool | None] | None = None,
    rather_than: str | int | None = None,
) -> NextWordExplanation:
    """Integrated and interior gradients of P(target | text) with respect to the context's words.

    text: user text, or the TokenizedText of tokenize_text (not tokenized again).
    targets: None -> the most probable next word; else one or several vocabulary words (one scan),
    where a None entry stands for the most probable word. One forward pass gives the top_k next words
    (result.top_words) and that default target; one engine scan of the Language family gives the attributions.
    model_key: the loaded model's content key where the caller has one, so that its other scans of the same model
    (a comparison of methods) share the engine's cache; by default the model object keys it.
    partial: called with the explanation so far after each round of the adaptive rule (ModelFamily.explain).
    rather_than: a vocabulary word (or id) the first target is explained rather than, "is rather than are": its F is
    log P(first | text) - log P(rather_than | text), and every target of the scan is explained on log-probabilities.
    Raises TextError (a ValueError) for text or targets that cannot be used; the message is for people.
    """
    tokenized = as_context(lm, text, max_tokens)
    probs = next_word_probabilities(lm, tokenized.ids)
    _, target_ids = resolve_targets(lm, targets, int(probs.argmax()))
    explained: list[int | Contrast] = list(target_ids)
    if rather_than is not None:
        [other], [other_id] = resolve_targets(lm, rather_than)
        if other_id == target_ids[0]:
            raise TextError(f"{other!r} rather than {other!r} explains nothing (F is 0): pick another word for "
                            "\"rather than\".")
        explained[0] = Contrast(target_ids[0], other_id)
    engine.prepare(lm.model)  # on the engine's device, eval, frozen (a no-op the second time)
    top_words = most_probable_words(lm, probs, top_k)

    def with_top_words(explanation: NextWordExplanation) -> NextWordExplanation:
        explanation.top_words = top_words
        return explanation

    so_far = None if partial is None else (lambda explanation: partial(with_top_words(explanation)))
    return with_top_words(FAMILY.explain(engine, loaded_language_model(lm, model_key), tokenized, explained, settings,
                                         progress, so_far))
