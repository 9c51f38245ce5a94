"""A ground truth for next-word attributions: number agreement (Ding and Koehn 2021, "Evaluating Saliency Methods for
Neural Language Models").

    python -m families.language.number_agreement [--model NAME] [--limit N] [--methods ...] [--out FILE.md]
        [--explain number|top-pair] [--subset N --subset-methods ...]

Each of the 1,448 Penn Treebank prefixes stops right before a verb whose number its subject decides; "attractor"
nouns of the other number stand between. F is the model's preference for a singular verb over a plural one,
F = log sum P(singular forms) - log sum P(plural forms) over VERB_PAIRS (the softmax's normaliser cancels: a
difference of logsumexps of the logits). Every method the language family offers explains F through the family
(parse, engine_input, attribute), and random scores give the floor. A word's score is the sum of its tokens' scores;
the data's spans count whitespace words, which the tokenizer may split (punctuation) or drop, so tokens are mapped back
to the words they came from. A prefix passes when the model prefers the right number and the subject's best word
outscores every attractor's best word, or prefers the wrong one and an attractor's outscores the subject's ("best"
with the scores signed toward the number the model prefers). Writes a Markdown results file and a CSV of the rows.
--explain top-pair explains instead what a user would pick on the Language page: the likeliest verb pair's singular
rather than its plural form, a contrast of the family; the model's preference and the pass rule stay F's.
"""
from __future__ import annotations

import argparse
import ast
import shlex
import sys
import time
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path, PurePath

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from families.config import data_dir
from families.contract import EngineInput, FamilyError, LoadedModel
from families.language import TokenizedText
from families.language.baselines import LABELS, ZEROS
from families.language.family import FAMILY
from families.machine import machine_description
from families.trust import write_table
from ig_core import METHODS, AttributionEngine, Contrast, ScanSettings

DATA = Path("attribution_benchmarks") / "number_agreement_ptb"
RANDOM = "random"
COMMAND = "python -m families.language.number_agreement"
STACKED_ITEMS = 8  # prefixes of one length explained in one engine call (integrated gradients only)
PUBLISHED = ("Ding and Koehn (2021), as the data README gives it: \"Their Transformer with SmoothGrad passed 0.907 "
             "of their synthetic set; their PTB-set tables are in the paper.\"")

# Third-person singular present (Penn Treebank tag VBZ) and the other present form (VBP) of one verb each, after the
# tag definitions of Santorini (1990), "Part-of-Speech Tagging Guidelines for the Penn Treebank Project"; chosen by
# hand among the verbs of PTB's 10k vocabulary. Left out: verbs whose forms are mostly nouns in the Wall Street
# Journal ("plans", "costs", "shares", "needs", "works", "moves", "pay", ...), since the probability of a noun going
# on with the subject's noun phrase would count as a verb's.
VERB_PAIRS = (
    ("is", "are"), ("was", "were"), ("has", "have"), ("does", "do"),
    ("says", "say"), ("makes", "make"), ("expects", "expect"), ("wants", "want"), ("owns", "own"), ("seems", "seem"),
    ("continues", "continue"), ("believes", "believe"), ("comes", "come"), ("holds", "hold"), ("takes", "take"),
    ("provides", "provide"), ("appears", "appear"), ("includes", "include"), ("remains", "remain"), ("gives", "give"),
    ("gets", "get"), ("sells", "sell"), ("represents", "represent"), ("reflects", "reflect"), ("follows", "follow"),
    ("operates", "operate"), ("suggests", "suggest"), ("thinks", "think"), ("intends", "intend"),
    ("contends", "contend"), ("knows", "know"), ("requires", "require"), ("seeks", "seek"), ("sees", "see"),
    ("indicates", "indicate"), ("begins", "begin"), ("becomes", "become"), ("happens", "happen"), ("tells", "tell"),
    ("argues", "argue"), ("allows", "allow"), ("asks", "ask"), ("produces", "produce"), ("admits", "admit"),
    ("depends", "depend"), ("explains", "explain"), ("finds", "find"), ("insists", "insist"), ("agrees", "agree"),
    ("involves", "involve"), ("employs", "employ"), ("creates", "create"), ("describes", "describe"),
    ("feels", "feel"), ("grows", "grow"), ("keeps", "keep"), ("reduces", "reduce"), ("writes", "write"),
    ("brings", "bring"), ("considers", "consider"), ("receives", "receive"), ("warns", "warn"),
    ("contains", "contain"), ("spends", "spend"), ("maintains", "maintain"), ("occurs", "occur"),
    ("opposes", "oppose"), ("owes", "owe"), ("tends", "tend"), ("decides", "decide"), ("earns", "earn"),
    ("recommends", "recommend"), ("relies", "rely"), ("belongs", "belong"), ("exists", "exist"),
    ("understands", "understand"), ("deserves", "deserve"), ("prevents", "prevent"), ("refuses", "refuse"),
    ("acknowledges", "acknowledge"), ("anticipates", "anticipate"), ("assumes", "assume"), ("concedes", "concede"),
    ("concludes", "conclude"), ("predicts", "predict"), ("denies", "deny"), ("develops", "develop"),
    ("enjoys", "enjoy"), ("improves", "improve"), ("prefers", "prefer"), ("proposes", "propose"), ("tries", "try"),
    ("manages", "manage"), ("serves", "serve"), ("applies", "apply"), ("buys", "buy"), ("adds", "add"),
)


class SpanError(ValueError):
    """A prefix whose words cannot be matched with the model's tokens, or whose span has no word the model reads."""


@dataclass(frozen=True)
class AgreementPrefix:
    """One prefix of the data: its text, the verb's number and the whitespace words of its subject and attractors."""

    index: int  # line in the data files
    text: str
    plural: bool  # tag 1: the verb must be plural
    subject: tuple[int, ...]
    attractors: tuple[int, ...]


def span_words(spans: str) -> tuple[int, ...]:
    """The words of "[(2, 2), (6, 8)]" (0-based, inclusive): (2, 6, 7, 8)."""
    return tuple(word for first, last in ast.literal_eval(spans.strip()) for word in range(first, last + 1))


def read_prefixes(folder: Path | None = None) -> list[AgreementPrefix]:
    """The data's prefixes, in order (default folder: the data directory's)."""
    folder = folder or data_dir() / DATA
    texts, tags, spans = ((folder / name).read_text().splitlines()
                          for name in ("all.prefx.txt", "all.tag.txt", "all.subjs.txt"))
    if not len(texts) == len(tags) == len(spans):
        raise ValueError(f"{folder}: {len(texts)} prefixes, {len(tags)} tags and {len(spans)} span lines")
    prefixes = []
    for index, (text, tag, line) in enumerate(zip(texts, tags, spans)):
        subject, attractors = line.split("|||")
        prefixes.append(AgreementPrefix(index, text, tag.strip() == "1", span_words(subject), span_words(attractors)))
    return prefixes


def verb_ids(model: LoadedModel) -> tuple[list[int], list[int]]:
    """The vocabulary ids of VERB_PAIRS' singular and plural forms, for the pairs whose both forms the model knows."""
    index = {word: i for i, word in enumerate(model.target_names)}
    kept = [(index[one], index[other]) for one, other in VERB_PAIRS if one in index and other in index]
    if not kept:
        raise FamilyError(f"{model.name}: its vocabulary holds no singular/plural verb pair (is/are, ...)")
    return [one for one, _ in kept], [other for _, other in kept]


class NumberPreference(torch.nn.Module):
    """F = log sum P(singular verbs) - log sum P(plural verbs) after the context, [N, 1], from the family's forward
    of next-word logits [N, V]: a difference of logsumexps, where the softmax's normaliser cancels."""

    def __init__(self, logits: torch.nn.Module, singular: list[int], plural: list[int]):
        super().__init__()
        self.logits = logits
        self.register_buffer("singular", torch.tensor(singular))
        self.register_buffer("plural", torch.tensor(plural))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        logits = self.logits(*inputs)
        return (logits[:, self.singular].logsumexp(-1) - logits[:, self.plural].logsumexp(-1)).unsqueeze(-1)


EXPLAINED = {  # what a scan explains: F itself, or the contrast a user would pick on the Language page
    "number": "F itself: all the verb pairs' forms of one number rather than of the other",
    "top-pair": "the pair most probable after the prefix, its singular rather than its plural form (\"is rather than "
                "are\"): a contrast of the family (explained on log-probabilities), as on the Language page",
}


def top_pair(request: EngineInput, singular: list[int], plural: list[int]) -> Contrast:
    """The verb pair whose two forms are most probable after the context, as a contrast singular rather than plural."""
    with torch.no_grad():
        probabilities = torch.softmax(request.forward(*request.inputs)[0].double(), -1)
    k = int((probabilities[singular] + probabilities[plural]).argmax())
    return Contrast(singular[k], plural[k])


def explained_input(model: LoadedModel, item, preference: NumberPreference,
                    explain: str) -> tuple[EngineInput, int | Contrast]:
    """The family's engine input of the item and its target: F = the number preference ("number", output
    "identity"), or the family's own next-word scores with the top pair's contrast ("top-pair")."""
    request = replace(FAMILY.engine_input(model, item), keep_all_gradients=False)
    if request.output != "softmax":
        raise FamilyError(f"{model.name}: the number preference needs a forward of next-word logits (output "
                          f"softmax), not output {request.output!r}")
    if explain == "top-pair":
        return request, top_pair(request, [int(i) for i in preference.singular], [int(i) for i in preference.plural])
    return replace(request, forward=preference, output="identity"), 0


# -- from tokens to the data's words ----------------------------------------------------------------------------

def token_words(item: TokenizedText, text: str) -> list[int]:
    """The whitespace word of `text` that each of the item's tokens came from (-1: none, a tokenizer's start token).
    The tokenizer cuts a word into pieces (a punctuation mark apart) that spell it again in order, and a token records
    its piece. Matched from the end, where the context always ends: a long text's first words may be cut."""
    words, piece_word = text.split(), []
    word, spelled = len(words) - 1, ""
    for piece in reversed(item.words):
        if word < 0:  # before the text's first word: a piece the tokenizer adds
            piece_word.append(-1)
            continue
        spelled = piece.text + spelled
        if not words[word].endswith(spelled):
            raise SpanError(f"the tokenizer's pieces do not spell the words of {text!r}")
        piece_word.append(word)
        if spelled == words[word]:
            word, spelled = word - 1, ""
    if spelled:
        raise SpanError(f"the tokenizer's pieces do not spell the words of {text!r}")
    piece_word.reverse()
    return [piece_word[token.word_index] for token in item.tokens]


def word_scores(token_scores: np.ndarray, words_of_tokens: list[int], n_words: int) -> np.ndarray:
    """[n_words] the sum of each word's tokens' scores; NaN for a word without a token (removed punctuation, or cut
    from a context longer than the model reads). Tokens of no word (-1) are left out."""
    scores, has_token = np.zeros(n_words), np.zeros(n_words, bool)
    words = np.asarray(words_of_tokens)
    of_a_word = words >= 0
    np.add.at(scores, words[of_a_word], np.asarray(token_scores, dtype=np.float64)[of_a_word])
    has_token[words[of_a_word]] = True
    return np.where(has_token, scores, np.nan)


def best_score(scores: np.ndarray, words: tuple[int, ...], what: str) -> float:
    """The largest score among the words (those without a token left out); SpanError when none has one."""
    values = scores[list(words)]
    values = values[~np.isnan(values)]
    if not values.size:
        raise SpanError(f"no word of the {what} is among the tokens the model reads")
    return float(values.max())


@dataclass(frozen=True)
class Verdict:
    correct: bool  # the model prefers the verb number the tag asks for
    subject_best: float  # the subject's best word score, signed toward the number the model prefers
    attractor_best: float
    passes: bool


def verdict(scores: np.ndarray, prefix: AgreementPrefix, preference: float) -> Verdict:
    """The pass rule on word scores [words] and F(text): the subject's best word outscores every attractor's best
    word where the model prefers the right number, the reverse where it prefers the wrong one; ties fail. SpanError
    where a span has no word the model reads."""
    prefers_singular = preference > 0
    toward = 1.0 if prefers_singular else -1.0  # a score for the number the model prefers counts up
    subject = best_score(toward * scores, prefix.subject, "subject")
    attractor = best_score(toward * scores, prefix.attractors, "attractors")
    correct = prefers_singular != prefix.plural
    return Verdict(correct, subject, attractor, subject > attractor if correct else attractor > subject)


# -- explaining ------------------------------------------------------------------------------------------------

@dataclass
class Explained:
    """One prefix's token scores [L] by a method, with completeness."""

    token_scores: np.ndarray
    relative_delta: float = float("nan")
    completeness_defined: bool = False
    seconds: float = 0.0


@dataclass
class ReadPrefix:
    """A prefix as the model reads it: its item, engine input and target, F(text), and the word of each token (None
    with the reason where its words cannot be matched)."""

    prefix: AgreementPrefix
    item: object
    request: EngineInput
    target: int | Contrast
    preference: float
    words_of_tokens: list[int] | None
    unmapped: str = ""


def stacked_target(targets: list[int | Contrast]) -> int | Contrast:
    """One target for stacked items: F's own (0), or their contrasts as one contrast of per-example classes [N]."""
    if not isinstance(targets[0], Contrast):
        return targets[0]
    return Contrast(torch.tensor([t.target for t in targets]), torch.tensor([t.rather_than for t in targets]))


def explain_batch(engine, model: LoadedModel, batch: list[ReadPrefix], settings: ScanSettings) -> list[Explained]:
    """One engine call of the settings' method for prefixes of one stacking key (one prefix unless it stacks)."""
    start = time.perf_counter()
    items = [one.item for one in batch]
    request = batch[0].request if len(batch) == 1 else FAMILY.stacked_input(model, items, [r.request for r in batch])
    result = FAMILY.attribute(engine, model, items[0], request, stacked_target([one.target for one in batch]),
                              settings)
    scores = result.attributions_per_target[0][0].double().sum(-1).cpu().numpy()  # [N, L]
    seconds = (time.perf_counter() - start) / len(batch)
    return [Explained(scores[n], float(result.relative_delta[n, 0]), result.completeness_defined, seconds)
            for n in range(len(batch))]


def explain_all(engine, model: LoadedModel, read: list[ReadPrefix], method: str, settings: ScanSettings,
                seed: int) -> list[Explained]:
    """Every prefix's token scores by the method (random: seeded standard normal scores), in order; integrated
    gradients explain up to STACKED_ITEMS prefixes of one length per engine call."""
    if method == RANDOM:
        rng = np.random.default_rng(seed)
        return [Explained(rng.standard_normal(one.request.inputs[0].shape[1])) for one in read]
    chosen = settings.with_method(method) if method != settings.method else settings
    groups: dict = {}
    for k, one in enumerate(read):
        key = FAMILY.stacking_key(one.request) if METHODS[method].stackable else k
        groups.setdefault(key, []).append(k)
    batches = [group[i:i + STACKED_ITEMS] for group in groups.values() for i in range(0, len(group), STACKED_ITEMS)]
    explained: list = [None] * len(read)
    with tqdm(total=len(read), desc=method, unit="prefix", file=sys.stderr) as bar:
        for batch in batches:
            for k, one in zip(batch, explain_batch(engine, model, [read[k] for k in batch], chosen)):
                explained[k] = one
            bar.update(len(batch))
    return explained


def read_all(model: LoadedModel, prefixes: list[AgreementPrefix], preference: NumberPreference,
             explain: str, baseline: str = ZEROS) -> list[ReadPrefix]:
    read = []
    for prefix in prefixes:
        item = replace(FAMILY.parse(model, prefix.text), baseline=baseline)
        request, target = explained_input(model, item, preference, explain)
        with torch.no_grad():
            value = float(preference(*request.inputs)[0, 0])
        try:
            words, unmapped = token_words(item, prefix.text), ""
        except SpanError as exc:
            words, unmapped = None, str(exc)
        read.append(ReadPrefix(prefix, item, request, target, value, words, unmapped))
    return read


def prefix_rows(read: list[ReadPrefix], method: str, explained: list[Explained]) -> list[dict]:
    """One row per prefix: the model's preference, the verdict (or why there is none) and completeness."""
    rows = []
    for one, scores in zip(read, explained):
        prefix = one.prefix
        row = {"prefix": prefix.index, "method": method, "plural": prefix.plural, "F(text)": one.preference,
               "correct": (one.preference > 0) != prefix.plural, "unmapped": one.unmapped, "subject_best": np.nan,
               "attractor_best": np.nan, "passes": False, "relative_delta": scores.relative_delta,
               "completeness_defined": scores.completeness_defined, "seconds": scores.seconds}
        if not one.unmapped:
            words = word_scores(scores.token_scores, one.words_of_tokens, len(prefix.text.split()))
            try:
                judged = verdict(words, prefix, one.preference)
                row.update(subject_best=judged.subject_best, attractor_best=judged.attractor_best,
                           passes=judged.passes)
            except SpanError as exc:
                row["unmapped"] = str(exc)
        rows.append(row)
    return rows


def run(engine, model: LoadedModel, prefixes: list[AgreementPrefix], methods: list[str], settings: ScanSettings,
        seed: int = 0, subset: int = 0, subset_methods: tuple[str, ...] = (), explain: str = "number",
        baseline: str = ZEROS) -> pd.DataFrame:
    """The rows of every method over the prefixes (the subset_methods over the first `subset` only), each scan
    explaining what EXPLAINED[explain] says from the baseline named (families.language.baselines)."""
    singular, plural = verb_ids(model)
    preference = NumberPreference(FAMILY.engine_input(model, FAMILY.parse(model, prefixes[0].text)).forward,
                                  singular, plural)
    model = replace(model, key=f"{model.key}|number-preference")  # F is no next word's: keep the engine's keys apart
    read = read_all(model, prefixes, preference, explain, baseline)
    rows = []
    for method in methods:
        chosen = read[:subset] if subset and method in subset_methods else read
        rows += prefix_rows(chosen, method, explain_all(engine, model, chosen, method, settings, seed))
    return pd.DataFrame(rows)


# -- the results ------------------------------------------------------------------------------------------------

def summary(rows: pd.DataFrame) -> pd.DataFrame:
    """Per method: prefixes, pass rate over all of them and over those the model gets right (a prefix whose spans
    cannot be mapped counts as not passing), completeness error (median, share within 1%) and time."""
    table = []
    for method, group in rows.groupby("method", sort=False):
        right = group[group["correct"]]
        law = bool(group["completeness_defined"].all())
        table.append({"method": method, "prefixes": len(group), "model right": len(right),
                      "unmapped": int((group["unmapped"] != "").sum()), "pass rate": group["passes"].mean(),
                      "pass rate where the model is right": right["passes"].mean(),
                      "completeness error, median": group["relative_delta"].median() if law else np.nan,
                      "within 1%": (group["relative_delta"] <= 0.01).mean() if law else np.nan,
                      "s per prefix": group["seconds"].mean()})
    return pd.DataFrame(table)


def _percent(share: float) -> str:
    return "n/a" if pd.isna(share) else f"{100 * share:.1f}%"


def trust_rows(rows: pd.DataFrame, explain: str, baseline: str = ZEROS) -> pd.DataFrame:
    """Each method's pass rates, for the Trust page (higher is better)."""
    table = summary(rows)
    what = ("" if explain == "number" else f", {explain}") + ("" if baseline == ZEROS else f", from {LABELS[baseline]}")
    return pd.concat([
        pd.DataFrame({"method": table["method"], "measure": f"pass rate where the model is right{what}",
                      "value": table["pass rate where the model is right"], "better": "higher",
                      "items": table["model right"]}),
        pd.DataFrame({"method": table["method"], "measure": f"pass rate{what}", "value": table["pass rate"],
                      "better": "higher", "items": table["prefixes"]})], ignore_index=True)


def results_markdown(rows: pd.DataFrame, model: LoadedModel, settings: ScanSettings, baseline: str, explain: str,
                     command: str, minutes: float, note: str = "") -> str:
    singular, plural = verb_ids(model)
    first = rows.drop_duplicates("prefix")
    table = summary(rows)
    lines = [
        "# Number agreement (Ding and Koehn 2021): do next-word attributions find the subject?", "",
        f"Command: `{command}`", "",
        f"Date: {date.today().isoformat()}. Machine: {machine_description()}. Took {minutes:.1f} min.", "",
        f"Model: `{model.name}` (`{model.key}`). Prefixes: {len(first)} of the data's "
        f"`{DATA.as_posix()}`. The model prefers the right verb number on {int(first['correct'].sum())} of them: "
        f"agreement accuracy **{first['correct'].mean():.3f}**.", "",
        f"F = log sum P(singular verb) - log sum P(plural verb) over the {len(singular)} verb pairs of "
        f"`VERB_PAIRS` whose both forms the model knows; its sign is the model's preference. Each scan explains "
        f"{EXPLAINED[explain]}, from {LABELS[baseline]}{' (the default baseline)' if baseline == ZEROS else ''}. "
        f"Scan settings (the dashboard's defaults): rule {settings.rule}, steps {settings.steps}, tolerance "
        f"{settings.tolerance:g}, budget {settings.max_steps} points; every other method with its default options.",
        "",
        "A prefix passes when the model prefers the right number and the subject's best word outscores every "
        "attractor's best word, or prefers the wrong one and the reverse (scores signed toward the number the model "
        "prefers; a word's score is the sum of its tokens'). Pass rates count a prefix whose spans cannot be mapped "
        "to the model's tokens as not passing.", "",
        "| method | prefixes | unmapped | pass rate | pass rate where the model is right | completeness error, "
        "median | within 1% | s per prefix |", "| --- " * 8 + "|",
        *[f"| {r['method']} | {r['prefixes']} | {r['unmapped']} | {r['pass rate']:.3f} | "
          f"{r['pass rate where the model is right']:.3f} ({r['model right']}) | "
          f"{_percent(r['completeness error, median'])} | {_percent(r['within 1%'])} | {r['s per prefix']:.2f} |"
          for r in table.to_dict("records")], "",
    ]
    unmapped = first[first["unmapped"] != ""]
    if len(unmapped):
        lines += [f"Unmapped prefixes ({len(unmapped)}): "
                  + "; ".join(f"{r.prefix}: {r.unmapped}" for r in unmapped.itertuples()), ""]
    if note:
        lines += [note, ""]
    if explain == "number":
        lines += ["The contrast a user would pick on the Language page instead of F: `--explain top-pair` (its results "
                  "file ends in `-top-pair`).", ""]
    lines += [f"Published: {PUBLISHED} Theirs is another model (a Transformer) on another set (synthetic) with "
              "SmoothGrad; ours is the shipped LSTM on their PTB prefixes.", ""]
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="a language model by name (default: the family's default model)")
    parser.add_argument("--limit", type=int, default=0, help="explain the first N prefixes (0: all)")
    parser.add_argument("--methods", nargs="+",
                        help=f"attribution methods and {RANDOM!r} (default: every method the family offers, and "
                             f"{RANDOM!r})")
    parser.add_argument("--subset", type=int, default=0, help="the --subset-methods explain the first N prefixes only")
    parser.add_argument("--subset-methods", nargs="*", default=(), help="methods run on the --subset only")
    parser.add_argument("--out", help="the results file (.md; the rows go beside it as .csv); default "
                                      "bench/RESULTS-number-agreement-<model>[-top-pair].md")
    parser.add_argument("--explain", default="number", choices=list(EXPLAINED),
                        help="what each scan explains: " + "; ".join(f"{k}: {v}" for k, v in EXPLAINED.items()))
    parser.add_argument("--data", type=Path, help=f"the data folder (default: the data directory's {DATA})")
    parser.add_argument("--baseline", default=ZEROS, choices=list(LABELS),
                        help="what the prefixes' embeddings are scaled from: zero embeddings (default) or a special "
                             "token's embedding at every position, where the model has the token")
    parser.add_argument("--seed", type=int, default=0, help="the random floor's")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    parser.add_argument("--device", default="cpu")
    ScanSettings.add_arguments(parser)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    args.argv = argv
    return args


def main(argv=None) -> pd.DataFrame:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    source = FAMILY.source_named(args.model)
    model = FAMILY.load(source, torch.device(args.device))
    prefixes = read_prefixes(args.data)[:args.limit or None]
    first = replace(FAMILY.parse(model, prefixes[0].text), baseline=args.baseline)
    FAMILY.engine_input(model, first)  # refuses a baseline the model does not offer, before any work
    methods = args.methods or [*FAMILY.methods(model, first), RANDOM]
    settings = ScanSettings.from_arguments(args)
    stem = PurePath(source.name.removesuffix(" (default)").split(": ", 1)[-1]).stem
    # each variant of the check its own file and trust table: what is explained, and from which baseline
    variant = "".join(f"-{value}" for value, default in ((args.explain, "number"), (args.baseline, ZEROS))
                      if value != default)
    out = Path(args.out or f"bench/RESULTS-number-agreement-{stem}{variant}.md")
    print(f"number agreement: {len(prefixes)} prefixes, {', '.join(methods)}", file=sys.stderr, flush=True)
    start = time.time()
    rows = run(AttributionEngine(device=args.device, cache_size=0), model, prefixes, methods, settings, args.seed,
               args.subset, tuple(args.subset_methods), args.explain, args.baseline)
    note = (f"{', '.join(args.subset_methods)}: the first {args.subset} prefixes only, to bound the run's time (the "
            "rates in its row are over those prefixes)." if args.subset and args.subset_methods else "")
    command = f"{COMMAND} {shlex.join(args.argv)}"
    out.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(out.with_suffix(".csv"), index=False, float_format="%.6g")
    out.write_text(results_markdown(rows, model, settings, first.baseline, args.explain,
                                    command, (time.time() - start) / 60, note))
    trust = write_table(FAMILY.name, source.name, f"number agreement{variant}",
                        trust_rows(rows, args.explain, args.baseline), command)
    print(f"wrote {out} and {out.with_suffix('.csv')}; the summary in the trust table {trust}", file=sys.stderr)
    return rows


if __name__ == "__main__":
    main()
