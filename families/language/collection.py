"""The texts a language dataset run explains: a text file cut into windows of words whose next word is the
ground truth. The model reads a window as its own tokens (LanguageModel.window_tokens): the LSTM each word as it is,
a Hugging Face model the words' pieces (so its windows differ in length), and the truth is the next word's first
token."""
from __future__ import annotations

import argparse
import dataclasses
import pathlib
from typing import Any, Mapping

from families.collection import Collection, Item
from families.language.baselines import LABELS, ZEROS
from families.language.ptb import read_text_tokens, read_words


class TextWindows(Collection):
    """A text file's tokens cut into windows of `window` tokens every `stride` tokens; the token after a window is
    its ground truth. text_format "plain": tokenized as the dashboard tokenizes a user's text, one sentence a line
    (families.language.ptb.read_text_tokens); "tokens": already tokenized, words separated by spaces, as Penn
    Treebank's files (read_words). Both put <eos> after every line. Every window is explained from `baseline`
    (families.language.baselines)."""

    kind, reads = "text file", "a text file"
    policies = ("predicted", "truth", "both", "next_word")
    TEXT_FORMATS = ("plain", "tokens")

    def __init__(self, path: pathlib.Path, window: int, stride: int, text_format: str = "plain",
                 baseline: str = ZEROS):
        if window < 1 or stride < 1:
            raise ValueError(f"window and stride must be at least 1, got {window} and {stride}")
        if text_format not in self.TEXT_FORMATS:
            raise ValueError(f"text format {text_format!r}: choose one of {', '.join(self.TEXT_FORMATS)}")
        super().__init__(path)
        self.window, self.stride, self.text_format, self.baseline = window, stride, text_format, baseline

    @classmethod
    def accepts(cls, path: pathlib.Path) -> bool:
        return path.is_file()

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--window", type=int, default=20, help="tokens per text window (default 20)")
        parser.add_argument("--stride", type=int, help="tokens between window starts (default: the window)")
        parser.add_argument("--text-format", default="plain", choices=cls.TEXT_FORMATS,
                            help="plain: a text as people write it; tokens: tokenized already (Penn Treebank's files)")
        parser.add_argument("--baseline", default=ZEROS, choices=list(LABELS),
                            help="what a text window's embeddings are scaled from: zero embeddings (default) or a "
                                 "special token's embedding at every position, where the model's tokenizer has it")

    @classmethod
    def open(cls, path: pathlib.Path, options: Mapping[str, Any]) -> "TextWindows":
        window = options["window"]
        baseline = options.get("baseline", ZEROS)  # a run made before the option: zero embeddings
        return cls(path, window, options["stride"] or window, options["text_format"], baseline)

    def items(self) -> list[Item]:
        tokens = (read_text_tokens if self.text_format == "plain" else read_words)(self.path)
        return [Item(k, f"tokens {start}-{start + self.window}", " ".join(tokens[start:start + self.window]),
                     tuple(tokens[start:start + self.window]), tokens[start + self.window])
                for k, start in enumerate(range(0, len(tokens) - self.window, self.stride))]

    def parse(self, family, model, item: Item):
        """The window's tokens as the model reads a corpus (for the LSTM each word as it is: tokenizing them as a
        user's text again would turn <eos> into <unk>), from the run's baseline."""
        return family.parse(model, dataclasses.replace(model.extra.window_tokens(item.raw), baseline=self.baseline))

    def truth_target(self, model, item: Item) -> int | None:
        return model.extra.next_token_id(item.raw, item.truth)
