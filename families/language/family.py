"""Language: a word-level LSTM's next word, explained word by word of the context (paper Section 3.2).

A text is tokenized as the model's training text was (TokenizedText; TextError, an InputError, for a text with
no usable words). The inputs are the context's embedding vectors [1, L, D], all scaled together towards the
all-zero embeddings (the baseline); F is the softmax probability of a target word (a vocabulary id) after the
context. The explanation gives each context word's integrated gradients, the saturation curve and the interior
gradients at the probe alphas (families.language.explanation.NextWordExplanation). A Hugging Face model folder of the
models folder is read the same way, through its token embeddings (families.language.hugging_face), from the baseline
the text names (families.language.baselines).
"""
from __future__ import annotations

import pathlib
from typing import Sequence

import torch

from families.config import LANGUAGE_CHECKPOINT, models_dir
from families.contract import EngineInput, LoadedModel, ModelFamily, ModelSource
from families.language import DEFAULT_CHECKPOINT, LanguageModel, TokenizedText, language_model
from families.language.baselines import baseline_embeddings
from families.language.collection import TextWindows
from families.language.explanation import NextWordExplanation
from families.language.hugging_face import ModelFolder, load_model_folder, model_folders
from families.language.next_words import as_context, top_k_next_words
from ig_core import Attribution, Contrast, ScanSettings

SHIPPED_TRANSFORMER = pathlib.Path(__file__).parent / "checkpoints" / "ptb_gpt2"  # families.language.train_transformer


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
    contrast_output = "log_softmax"  # "is rather than are": log P(is) - log P(are), the normaliser cancels
    trust_checks = {"number agreement": "python -m families.language.number_agreement --model small.pt"}
    # other contexts of the same length would do as references, but a checkpoint ships no text to draw them from
    no_references = "a language model's checkpoint ships no texts to draw other contexts of this length from"

    @staticmethod
    def default_checkpoint() -> pathlib.Path:
        return LANGUAGE_CHECKPOINT.path() or DEFAULT_CHECKPOINT

    def shipped(self) -> list[ModelSource]:
        """The default LSTM, then the transformer trained here on the same Penn Treebank (a model folder)."""
        default = self.default_checkpoint()
        transformer = [ModelFolder(f"shipped: {SHIPPED_TRANSFORMER.name}", path=SHIPPED_TRANSFORMER)
                       if (SHIPPED_TRANSFORMER / "config.json").is_file() else None]
        return [ModelSource(f"{default.name} (default)", path=default), *filter(None, transformer)]

    def sources(self) -> list[ModelSource]:
        """The default model, then the models folder's checkpoints and Hugging Face model folders (those holding a
        config.json) by name: not the default once more where it lies there, nor a file inside a model folder."""
        default = self.default_checkpoint().resolve()
        root = models_dir() / self.name
        folders = model_folders(root)
        shipped = self.shipped()
        files = [source for source in super().sources()[len(shipped):] if source.path.resolve() != default
                 and not any(folder in source.path.parents for folder in folders)]
        own = files + [ModelFolder(str(folder.relative_to(root)), path=folder) for folder in folders]
        return shipped + sorted(own, key=lambda source: source.name)

    def load(self, source: ModelSource, device: torch.device) -> LoadedModel:
        lm = (load_model_folder(source.path, source.name, device) if isinstance(source, ModelFolder)
              else language_model(source.read(), source.name, device))
        return loaded_language_model(lm, model_key_of(source))

    def parse(self, model: LoadedModel, raw) -> TokenizedText:
        """A text (its last MAX_CONTEXT tokens), or a TokenizedText already made; TextError (an InputError)."""
        return as_context(model.extra, raw)

    def engine_input(self, model: LoadedModel, item: TokenizedText) -> EngineInput:
        lm: LanguageModel = model.extra
        embeddings = lm.embed(item.ids).float()  # [1, L, D]
        baseline = baseline_embeddings(lm, item, embeddings)
        return EngineInput(forward=lm.forward, inputs=(embeddings,), baseline=(baseline,),
                           output="softmax", keep_all_gradients=True)  # a few words: every alpha's gradient

    def explanation(self, model: LoadedModel, item: TokenizedText, targets: Sequence[int | Contrast],
                    result: Attribution, settings: ScanSettings) -> NextWordExplanation:
        """The scan in words; a contrast's target is named "is rather than are" (families.contract.target_label)."""
        lm: LanguageModel = model.extra
        return NextWordExplanation(result, targets, lm.vocab.words, settings, model.key, item,
                                   self.embeddings_from_baseline(lm, item), top_k_next_words(lm, item))

    @staticmethod
    def embeddings_from_baseline(lm: LanguageModel, item: TokenizedText) -> torch.Tensor:
        """The embeddings minus their baseline [1, L, D]: what the interior gradients are multiplied by (the
        embeddings themselves from zero embeddings)."""
        embeddings = lm.embed(item.ids).float()
        return embeddings - baseline_embeddings(lm, item, embeddings)


FAMILY = LanguageFamily()
