"""Analysts' own Hugging Face causal language models: a `save_pretrained` folder (config.json, *.safetensors, the
tokenizer's files) in the models folder's language/, read through its token embeddings as the family reads the LSTM.

A folder is checked before transformers reads any of it: no code of its own (`auto_map` in config.json or
tokenizer_config.json asks for remote code), weights in safetensors (pickled weights, `pytorch_model.bin`, are never
read: unpickling can run code), and a model type and architectures the installed transformers knows as a causal
language model. Then AutoModelForCausalLM and AutoTokenizer load it from local files, without remote code. Messages
name the folder by its name under the models folder, never its place on the server.

`HuggingFaceLanguageModel` has the interface the family uses of the LSTM's `families.language.LanguageModel`:
tokenize -> PieceText (the tokenizer's pieces, each with the word it belongs to), embed(ids) -> [1, L, D],
forward(emb [K, L, D]) -> the next-token logits [K, V] at the last position, vocab.words (the pieces' readable names),
name, metrics and training (from the folder's ig_card.json, where there is one).
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import inspect
import json
import pathlib
from typing import ClassVar, Sequence

import torch

from families.contract import FamilyError, ModelSource
from families.language.ptb import (
    DEFAULT_MAX_CHARS,
    DEFAULT_MAX_TOKENS,
    EOS,
    UNK,
    TextError,
    Token,
    TokenizedText,
    Vocabulary,
    WordMapping,
    tokenize,
)

CONFIG = "config.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
CARD = "ig_card.json"  # metrics and training record, as families.language.train_transformer writes them
PTB_TEXT_RULES = "penn-treebank"  # the card's training.text_rules of a model that reads text by families.language.ptb
PICKLED_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")
# what starts a word's first piece: byte-level BPE (GPT-2) writes the space before a word as "Ġ", SentencePiece as "▁"
WORD_MARKERS = ("Ġ", "▁")
SPACE = "▁"  # how a piece's leading space shows in its name, for every tokenizer


def model_folders(root: pathlib.Path) -> list[pathlib.Path]:
    """The Hugging Face model folders under root, at any depth."""
    return sorted(config.parent for config in root.rglob(CONFIG)) if root.is_dir() else []


def folder_files(folder: pathlib.Path) -> list[pathlib.Path]:
    """The folder's files, in a stable order; hidden ones (a download tool's locks and metadata) left out."""
    return sorted(path for path in folder.rglob("*") if path.is_file()
                  and not any(part.startswith(".") for part in path.relative_to(folder).parts))


@functools.lru_cache(maxsize=1024)
def _content_digest(path: str, size: int, modified_ns: int, inode: int) -> str:
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def file_digest(path: pathlib.Path) -> str:
    """The sha256 of a file's content, computed once per version of the file (its size, time and inode): the pages
    ask for a model's digest on every run, and weights run to gigabytes."""
    stat = path.stat()
    return _content_digest(str(path), stat.st_size, stat.st_mtime_ns, stat.st_ino)


@dataclasses.dataclass(frozen=True)
class ModelFolder(ModelSource):
    """A model folder as a model source: its digest covers every file's name and content, so that changed weights
    or a changed tokenizer make another model for the caches and the results store."""

    @property
    def digest(self) -> str:
        digest = hashlib.sha256()
        for path in folder_files(self.path):
            digest.update(f"{path.relative_to(self.path).as_posix()}\0{file_digest(path)}\0".encode())
        digest.update(repr(self.options).encode())
        return digest.hexdigest()


# --- checks before transformers reads the folder -----------------------------------------------------------------

def _json_object(path: pathlib.Path, name: str) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FamilyError(f"The folder {name}: {path.name} is not readable JSON ({type(exc).__name__}).") from None
    if not isinstance(value, dict):
        raise FamilyError(f"The folder {name}: {path.name} is not a JSON object.")
    return value


def _known_to_transformers(class_name) -> bool:
    import transformers

    return isinstance(class_name, str) and hasattr(transformers, class_name)


def check_folder(folder: pathlib.Path, name: str) -> dict:
    """The folder's config, after the checks that need nothing of transformers but its tables of known models;
    FamilyError says why a folder is refused."""
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    config = _json_object(folder / CONFIG, name)
    configs = [(CONFIG, config)] + ([(TOKENIZER_CONFIG, _json_object(folder / TOKENIZER_CONFIG, name))]
                                    if (folder / TOKENIZER_CONFIG).is_file() else [])
    for file_name, values in configs:
        if "auto_map" in values:
            raise FamilyError(f"The folder {name} asks for code of its own (auto_map in its {file_name}): the "
                              "dashboard runs no code from a model folder (trust_remote_code=False).")
    files = [path.name for path in folder.iterdir() if path.is_file()]
    if not any(file.endswith(".safetensors") for file in files):
        pickled = sorted(file for file in files if file.endswith(PICKLED_SUFFIXES))
        if pickled:
            raise FamilyError(f"The folder {name} holds pickled weights only ({', '.join(pickled)}), which are not "
                              "read: unpickling can run code. Save the model with save_pretrained(folder, "
                              "safe_serialization=True) to write model.safetensors.")
        raise FamilyError(f"The folder {name} holds no weights (*.safetensors).")
    model_type = config.get("model_type")
    if model_type not in CONFIG_MAPPING_NAMES:
        raise FamilyError(f"The folder {name} names the model type {model_type!r} in its config.json, which the "
                          f"installed transformers does not know.")
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        raise FamilyError(f"The folder {name} holds a {model_type} model, which transformers has no causal language "
                          "model (next-token prediction) of.")
    architectures = config.get("architectures") or []
    unknown = [str(a) for a in architectures if not _known_to_transformers(a)] if isinstance(architectures, list) \
        else [repr(architectures)]
    if unknown:
        raise FamilyError(f"The folder {name} names architectures the installed transformers does not know in its "
                          f"config.json: {', '.join(unknown)}.")
    return config


# --- pieces and words ----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class PieceText(TokenizedText):
    """A subword tokenizer's reading of a text: the tokens are its pieces (Token.text a piece's readable name), and
    `words` the words they spell, in order (WordMapping.tokens a word's pieces); Token.word_index is its word's index
    there."""

    @property
    def context_words(self) -> list[str]:
        return [word.text for word in self.words]

    @property
    def word_of_token(self) -> list[int]:
        return [token.word_index for token in self.tokens]


class PieceVocabulary:
    """A tokenizer's pieces by id, named readably and uniquely (what Vocabulary is to the LSTM's words)."""

    def __init__(self, words: Sequence[str], corpus: str, unit: str):
        self.words = list(words)
        self.index = {word: i for i, word in enumerate(self.words)}
        self.corpus = corpus  # what text the model was trained on, for people
        self.unit = unit  # what one entry is called: "piece", or "word" for a word-level tokenizer

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index


def printable(text: str) -> str:
    """A piece's text as a name: its spaces as "▁", other whitespace and control characters escaped ("\\n")."""
    return "".join(SPACE if ch == " " else ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class HuggingFaceForward(torch.nn.Module):
    """forward(emb [K, L, D]) -> the next-token logits [K, V] after the last position: what the engine differentiates
    with respect to the alpha-scaled token embeddings."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model
        # only the last position's logits: all of them would take K x L x V floats (GBs for a large vocabulary)
        self.last_only = ({"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters
                          else {})

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        mask = torch.ones(emb.shape[:2], dtype=torch.long, device=emb.device)
        return self.model(inputs_embeds=emb, attention_mask=mask, use_cache=False, **self.last_only).logits[:, -1]


class HuggingFaceLanguageModel:
    """A loaded folder: the model (eval mode, frozen, float32), its tokenizer and their readable vocabulary."""

    BASELINE_ROLES: ClassVar[tuple[str, ...]] = ("eos", "pad", "unk")  # tokens whose embedding may be the baseline

    def __init__(self, model, tokenizer, name: str, metrics: dict, training: dict):
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.metrics, self.training = metrics, training
        self.forward = HuggingFaceForward(model)
        self.specials = set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}  # <unk> stands inside a word
        vocabulary = tokenizer.get_vocab()
        markers = {marker: sum(token.startswith(marker) for token in vocabulary) for marker in WORD_MARKERS}
        best = max(markers, key=markers.get)
        self.word_marker = best if markers[best] else None  # None: a word-level tokenizer, every piece a word
        corpus = training.get("corpus")
        description = corpus.get("description") if isinstance(corpus, dict) else None
        size = model.get_input_embeddings().weight.shape[0]
        self.vocab = PieceVocabulary(
            self.piece_names(size),
            str(description or f"its own text (a Hugging Face {model.config.model_type} model; its folder does not "
                               "say which)"),
            "word" if self.word_marker is None else "piece")
        # a word-level model of Penn Treebank text reads a user's text by the rules its corpus was made with (lower
        # case, numbers -> N, unknown words -> <unk>), as the LSTM does; its card says so
        self.ptb_vocabulary = (Vocabulary(self.vocab.words, corpus=self.vocab.corpus)
                               if training.get("text_rules") == PTB_TEXT_RULES and self.word_marker is None else None)

    def piece_names(self, size: int) -> list[str]:
        """Unique readable names of the model's ids: byte-level pieces decoded ("Ġthe" -> "▁the"), SentencePiece and
        word-level pieces as they are; an id the tokenizer lacks as "<id N>"."""
        names, taken = [], set()
        for i, token in enumerate(self.tokenizer.convert_ids_to_tokens(list(range(size)))):
            if token is None:
                name = f"<id {i}>"
            elif self.word_marker == "Ġ" and i not in self.specials:
                text = self.tokenizer.convert_tokens_to_string([token])
                name = printable(text) if text and "\ufffd" not in text else token  # a part of a character: as is
            else:
                name = printable(token)
            while name in taken:  # two ids that read alike (bytes of a character, say) keep their own names
                name = f"{name} #{i}"
            taken.add(name)
            names.append(name)
        return names

    def encode(self, text: str) -> list[int]:
        return list(self.tokenizer(text)["input_ids"])

    def starts_word(self, ids: Sequence[int], k: int) -> bool:
        """Whether the k-th piece begins a word: the first, a special token and the piece after one, a piece with the
        tokenizer's word marker, every piece of a word-level tokenizer."""
        if k == 0 or self.word_marker is None or ids[k] in self.specials or ids[k - 1] in self.specials:
            return True
        return self.tokenizer.convert_ids_to_tokens(ids[k]).startswith(self.word_marker)

    def pieces(self, ids: Sequence[int], max_tokens: int, notices: Sequence[str] = ()) -> PieceText:
        """The pieces' PieceText: the last max_tokens pieces, from the start of a word."""
        if not ids:
            raise TextError("The tokenizer reads no pieces in the text: type a few words.")
        starts = [self.starts_word(ids, k) for k in range(len(ids))]
        first = max(0, len(ids) - max_tokens)
        while first < len(ids) - 1 and not starts[first]:
            first += 1  # a word cut at the start goes whole
        notices = list(notices)
        if first:
            notices.append(f"The text has {len(ids):,} pieces; the model reads only the last {len(ids) - first} "
                           f"(whole words; the first {first:,} were left out).")
        groups: list[list[int]] = []  # each word's piece ids
        for i, start in zip(ids[first:], starts[first:]):
            if start or not groups:
                groups.append([])
            groups[-1].append(i)
        tokens, words = [], []
        for word, group in enumerate(groups):
            names = tuple(self.vocab.words[i] for i in group)
            tokens += [Token(name, i, word, "special" if i in self.specials else "piece" if k else "word")
                       for k, (name, i) in enumerate(zip(names, group))]
            text = self.tokenizer.convert_tokens_to_string(self.tokenizer.convert_ids_to_tokens(group)).strip()
            unknown = self.tokenizer.unk_token_id in group
            words.append(WordMapping(text=text or "".join(names), tokens=names, used=True,
                                     notes=("a piece not in the vocabulary -> <unk>",) if unknown else ()))
        unknown = sum(i == self.tokenizer.unk_token_id for i in ids[first:])
        if unknown:
            notices.append(f"{unknown} piece(s) are not in the tokenizer's vocabulary and became "
                           f"{self.tokenizer.unk_token}.")
        return PieceText(tokens=tuple(tokens), words=tuple(words), notices=tuple(notices), dropped_tokens=first)

    def tokenize(self, text: str, max_tokens: int = DEFAULT_MAX_TOKENS, max_chars: int = DEFAULT_MAX_CHARS
                 ) -> PieceText:
        """The text's pieces as the tokenizer reads it (special tokens it adds included, a Llama's <s> say)."""
        if not isinstance(text, str):
            raise TextError("The text must be a string.")
        if self.ptb_vocabulary is not None:
            return tokenize(text, self.ptb_vocabulary, max_tokens=max_tokens, max_chars=max_chars)
        notices = []
        if len(text) > max_chars:
            text = text[-max_chars:]
            notices.append(f"The text is very long; only its last {max_chars:,} characters were read.")
        return self.pieces(self.encode(text), max_tokens, notices)

    def corpus_text(self, words: Sequence[str]) -> str:
        """A corpus's words written with spaces between, its <eos> and <unk> as the tokenizer's own end and unknown
        tokens where it has them (the corpus marks line ends and unknown words so)."""
        own = {EOS: self.tokenizer.eos_token, UNK: self.tokenizer.unk_token}
        return " ".join(own.get(word) or word for word in words)

    def window_tokens(self, words: Sequence[str]) -> PieceText:
        """A dataset run's window of corpus words as the model reads them (all their pieces)."""
        ids = self.encode(self.corpus_text(words))
        return self.pieces(ids, len(ids))

    def next_token_id(self, words: Sequence[str], next_word: str) -> int | None:
        """The piece that the next word starts with after the window's words; None where the tokenizer reads the
        window differently once the word follows it."""
        before, after = self.encode(self.corpus_text(words)), self.encode(self.corpus_text([*words, next_word]))
        return after[len(before)] if len(after) > len(before) and after[:len(before)] == before else None

    def baseline_tokens(self) -> dict[str, int]:
        """The tokens whose embedding, at every position, may be the baseline, by role: each token once."""
        ids = {role: getattr(self.tokenizer, f"{role}_token_id") for role in self.BASELINE_ROLES}
        offered: dict[str, int] = {}
        for role, token in ids.items():
            if token is not None and token not in offered.values():
                offered[role] = token
        return offered

    def embed(self, ids) -> torch.Tensor:
        """Piece ids -> their token embeddings [1, L, D] (no gradient: the parameters are frozen)."""
        table = self.model.get_input_embeddings()
        return table(torch.as_tensor(list(ids), dtype=torch.long, device=table.weight.device)).unsqueeze(0).detach()

    def to(self, device) -> "HuggingFaceLanguageModel":
        self.model.to(device)
        return self


def _card(folder: pathlib.Path, name: str) -> tuple[dict, dict]:
    """(metrics, training) of the folder's ig_card.json; empty where it has none."""
    if not (folder / CARD).is_file():
        return {}, {}
    card = _json_object(folder / CARD, name)
    training = card.get("training")
    return ({key: value for key, value in card.items() if key != "training"},
            training if isinstance(training, dict) else {})


def load_model_folder(folder: pathlib.Path, name: str, device="cpu") -> HuggingFaceLanguageModel:
    """The folder's model and tokenizer (check_folder first); FamilyError names the folder by `name` only."""
    check_folder(folder, name)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(folder, use_safetensors=True, trust_remote_code=False,
                                                     local_files_only=True, dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False, local_files_only=True)
    except Exception as exc:  # transformers raises many kinds; its messages may name the folder's path
        detail = str(exc).splitlines()[0][:300].replace(str(folder), name) if str(exc) else ""
        raise FamilyError(f"The folder {name} could not be loaded by transformers ({type(exc).__name__}: "
                          f"{detail}).") from None
    size = model.get_input_embeddings().weight.shape[0]
    if len(tokenizer) > size:
        raise FamilyError(f"The folder {name}'s tokenizer has {len(tokenizer):,} pieces, more than the model's "
                          f"{size:,} embeddings.")
    model.eval().requires_grad_(False).to(device)
    return HuggingFaceLanguageModel(model, tokenizer, name, *_card(folder, name))
