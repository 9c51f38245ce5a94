"""Language: a word-level LSTM's next word, explained word by word of the context (paper Section 3.2).

A text is tokenized as the model's training text was (TokenizedText; TextError, an InputError, for a text with
no usable words). The inputs are the context's embedding vectors [1, L, D], all scaled together towards the
all-zero embeddings (the baseline); F is the softmax probability of a target word (a vocabulary id) after the
context. The explanation gives each context word's integrated gradients, the saturation curve and the interior
gradients at the probe alphas (families.language.explanation.NextWordExplanation).
"""
from __future__ import annotations

import pathlib
from typing import Sequence

import torch

from families.config import LANGUAGE_CHECKPOINT
from families.contract import EngineInput, LoadedModel, ModelFamily, ModelSource
from families.language import DEFAULT_CHECKPOINT, LanguageModel, TokenizedText, language_model
from families.language.collection import TextWindows
from families.language.explanation import NextWordExplanation
from families.language.next_words import as_context, top_k_next_words
from ig_core import Attribution, ScanSettings


def loaded_language_model(lm: LanguageModel, key: str | None = None) -> LoadedModel:
    """A language model in memory as the family's LoadedModel; without a key, keyed by the model object (a
    script's or a test's model, whose weights may differ from its file's)."""
    return LoadedModel(key=key or f"language:object:{id(lm.model)}", name=lm.name, target_names=lm.vocab.words,
                       module=lm.model, card={"metrics": lm.metrics, "training": lm.training}, extra=lm)


def model_key_of(source: ModelSource) -> str:
    """The key of the model loaded from source: the family, its name and its content digest."""
    return f"language:{source.name}:{source.digest[:16]}"


class LanguageFamily(ModelFamily):
    name, input_name = "language", "text"
    collections = (TextWindows,)
    # other contexts of the same length would do as references, but a checkpoint ships no text to draw them from
    no_references = "a language model's checkpoint ships no texts to draw other contexts of this length from"

    @staticmethod
    def default_checkpoint() -> pathlib.Path:
        return LANGUAGE_CHECKPOINT.path() or DEFAULT_CHECKPOINT

    def shipped(self) -> list[ModelSource]:
        default = self.default_checkpoint()
        return [ModelSource(f"{default.name} (default)", path=default)]

    def sources(self) -> list[ModelSource]:
        """The default model, then the models folder's (without the default once more, when it lies there)."""
        default = self.default_checkpoint().resolve()
        return [source for source in super().sources()
                if source.name.endswith("(default)") or source.path.resolve() != default]

    def load(self, source: ModelSource, device: torch.device) -> LoadedModel:
        lm = language_model(source.read(), source.name, device)
        return loaded_language_model(lm, model_key_of(source))

    def parse(self, model: LoadedModel, raw) -> TokenizedText:
        """A text (its last MAX_CONTEXT tokens), or a TokenizedText already made; TextError (an InputError)."""
        return as_context(model.extra, raw)

    def engine_input(self, model: LoadedModel, item: TokenizedText) -> EngineInput:
        lm: LanguageModel = model.extra
        embeddings = lm.embed(item.ids).float()  # [1, L, D]
        return EngineInput(forward=lm.forward, inputs=(embeddings,), baseline=(torch.zeros_like(embeddings),),
                           output="softmax", keep_all_gradients=True)  # a few words: every alpha's gradient

    def explanation(self, model: LoadedModel, item: TokenizedText, targets: Sequence[int], result: Attribution,
                    settings: ScanSettings) -> NextWordExplanation:
        lm: LanguageModel = model.extra
        return NextWordExplanation(result, targets, [lm.vocab.words[t] for t in targets], settings, model.key, item,
                                   lm.embed(item.ids), top_k_next_words(lm, item))


FAMILY = LanguageFamily()
