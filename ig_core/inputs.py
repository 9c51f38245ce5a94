"""What a caller hands the engine, checked and placed on its device: the input batches, their baselines or a
reference set, the targets and the extra forward arguments; and the AttributionProblem they make."""
from __future__ import annotations

import numbers
from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import torch

HALF_DTYPES = (torch.float16, torch.bfloat16)  # inputs in these are scanned in float32


@dataclass
class AttributionProblem:
    """One attribution request, already on the engine's device."""

    forward: Callable[..., torch.Tensor]
    inputs: tuple[torch.Tensor, ...]  # each [N, ...]
    baselines: tuple[torch.Tensor, ...]  # same shapes (a method that takes a reference set gets [R, ...])
    targets: torch.Tensor  # long [N, T]
    output: str = "identity"
    amp_dtype: torch.dtype | None = None
    layer: torch.nn.Module | None = None
    forward_args: tuple = ()  # passed to forward after the points, not scaled; tensors are [N, ...] per example
    untargeted: bool = False  # target=None: the forward must return one score per example
    # long [N, T]: the class each target is explained rather than (F = score[target] - score[rather_than]), -1 for a
    # plain target; None: no target is a contrast
    rather_than: torch.Tensor | None = None

    def __post_init__(self):
        named = self.targets if self.rather_than is None else torch.where(self.rather_than < 0, self.targets,
                                                                          self.rather_than)
        # every class the scores are read from, checked once, not per chunk
        self.target_range = (min(int(self.targets.min()), int(named.min())),
                             max(int(self.targets.max()), int(named.max())))

    def rather_than_array(self) -> np.ndarray:
        """What each target is explained rather than, as a result records it: int64 [N, T], -1 for a plain target."""
        if self.rather_than is None:
            return np.full(tuple(self.targets.shape), -1, dtype=np.int64)
        return self.rather_than.cpu().numpy()

    @property
    def n_examples(self) -> int:
        return self.inputs[0].shape[0]

    @property
    def n_targets(self) -> int:
        return self.targets.shape[1]

    def with_examples(self, inputs, baselines, rows) -> "AttributionProblem":
        """The same request on other examples; `rows` [M] picks each new example's targets, forward args and, for a
        forward whose batch rows are bound to its examples (a packed graph per molecule), its forward: such a
        forward offers for_examples(rows), the forward of those examples in that order."""
        rows = torch.as_tensor(rows, device=self.targets.device)
        args = tuple(a.index_select(0, rows.to(a.device)) if per_example(a, self.n_examples) else a
                     for a in self.forward_args)
        bound = getattr(self.forward, "for_examples", None)
        return replace(self, forward=self.forward if bound is None else bound(rows.tolist()), inputs=tuple(inputs),
                       baselines=tuple(baselines), targets=self.targets.index_select(0, rows), forward_args=args,
                       rather_than=None if self.rather_than is None else self.rather_than.index_select(0, rows))


def per_example(arg, n: int) -> bool:
    """Whether a forward argument holds one row per example (and so follows its example through the batches)."""
    return isinstance(arg, torch.Tensor) and arg.dim() > 0 and arg.shape[0] == n


def as_batches(inputs, device) -> tuple[torch.Tensor, ...]:
    """A tensor or a tuple of them, each [N, ...] with the same N, detached on `device`, dtypes kept."""
    xs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    if not xs:
        raise ValueError("inputs is empty")
    out = []
    for x in xs:
        x = torch.as_tensor(x)
        if x.dim() == 0:
            raise ValueError("each input needs a leading batch dimension, e.g. x.unsqueeze(0)")
        out.append(x.detach().to(device))
    if len({x.shape[0] for x in out}) != 1:
        raise ValueError(f"all inputs must share the batch dimension, got {[tuple(x.shape) for x in out]}")
    return tuple(out)


def path_inputs(inputs, device) -> tuple[torch.Tensor, ...]:
    """Inputs on the device, floating point to be scaled along the path; float64 stays float64, half precision is
    scanned in float32."""
    xs = as_batches(inputs, device)
    for x in xs:
        if not x.is_floating_point():
            raise ValueError(f"inputs must be floating point to be scaled along the path, got {x.dtype}")
    return tuple(x.float() if x.dtype in HALF_DTYPES else x for x in xs)


def baseline_tensors(baseline, xs) -> tuple[torch.Tensor, ...]:
    """One baseline per input, shaped and typed like it, from None (zeros), a number, or per input a number or a
    tensor that broadcasts to the input: [N, ...], [1, ...] or the input's shape without the batch dimension."""
    if baseline is None:
        baseline = 0.0
    parts = tuple(baseline) if isinstance(baseline, (tuple, list)) else (baseline,) * len(xs)
    if len(parts) != len(xs):
        raise ValueError(f"{len(xs)} inputs but {len(parts)} baselines")
    out = []
    for i, (x, b) in enumerate(zip(xs, parts)):
        if isinstance(b, numbers.Real):
            out.append(torch.full_like(x, float(b)))
            continue
        b = torch.as_tensor(b).detach().to(x.device, x.dtype)
        try:
            out.append(torch.broadcast_to(b, x.shape).contiguous())
        except RuntimeError:
            raise ValueError(f"baseline {i} of shape {tuple(b.shape)} does not fit input {i} of shape "
                             f"{tuple(x.shape)}: give a number, a tensor of the input's shape, [1, ...] for every "
                             "example, or the input's shape without the batch dimension") from None
    return tuple(out)


def reference_set(references, xs) -> tuple[torch.Tensor, ...]:
    """The baselines of a method that draws them from a set: per input [R, ...], shaped and typed like it."""
    if references is None or isinstance(references, (int, float)):
        raise ValueError("this method draws baselines from a reference set: pass baseline=tensor [R, ...] of "
                         "references shaped like the inputs (other photos, say)")
    rs = as_batches(references, xs[0].device)
    if len(rs) != len(xs) or any(r.shape[1:] != x.shape[1:] for r, x in zip(rs, xs)):
        raise ValueError(f"references {[tuple(r.shape) for r in rs]} must be [R, ...] shaped like the inputs "
                         f"{[tuple(x.shape) for x in xs]} after the first dimension")
    return tuple(r.to(x.dtype) for r, x in zip(rs, xs))


@dataclass(frozen=True)
class Contrast:
    """A contrastive target, "why `target` rather than `rather_than`": F = score[target] - score[rather_than]. Each side
    is a class index, or per example a tensor [N] or [N, T] (a side of one target pairs with every target of the
    other). Only for outputs where a difference of scores is a difference of the model's evidence: logits
    (output "identity") or log-probabilities ("log_softmax", whose normaliser cancels)."""

    target: object
    rather_than: object

    def __post_init__(self):
        if self.target is None or self.rather_than is None:
            raise ValueError("a contrast names a class on both sides: a forward with one output (target=None) has "
                             "nothing to contrast")
        if _is_index(self.target) and _is_index(self.rather_than) and int(self.target) == int(self.rather_than):
            raise ValueError(f"a target rather than itself explains nothing (F is 0): Contrast({self.target}, "
                             f"{self.rather_than}) needs two different classes")


def target_tensor(target, n: int, device) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
    """Targets [N, T] on `device`, what each is explained rather than ([N, T], -1 for a plain target; None where no
    target is a contrast) and whether one target was asked for (the result then has no target dimension). The forms
    are those of AttributionEngine.attribute's `target`."""
    if isinstance(target, Contrast):
        targets, single = _plain_targets(target.target, n, device)
        others, single_other = _plain_targets(target.rather_than, n, device)
        try:
            targets, others = (t.contiguous() for t in torch.broadcast_tensors(targets, others))
        except RuntimeError:
            raise ValueError(f"the two sides of {target!r} name {targets.shape[1]} and {others.shape[1]} targets per "
                             "example: give both as many, or one class for either side") from None
        every = torch.ones_like(targets, dtype=torch.bool)
        return targets, _checked_contrast(targets, others, every), single and single_other
    items = list(target) if isinstance(target, (list, tuple)) else []
    rows = None
    if items and all(_entry(t) for t in items):  # several targets for every example
        rows = [items] * n
    elif (len(items) == n and all(isinstance(t, (list, tuple)) and t for t in items)
          and len({len(t) for t in items}) == 1 and all(_entry(j) for t in items for j in t)):  # per example
        rows = items
    if rows is None or not any(isinstance(j, Contrast) for row in rows for j in row):
        targets, single = _plain_targets(target, n, device)
        return targets, None, single
    pairs = [[_entry(j) for j in row] for row in rows]
    targets = torch.tensor([[a for a, _ in row] for row in pairs], dtype=torch.long, device=device)
    others = torch.tensor([[b for _, b in row] for row in pairs], dtype=torch.long, device=device)
    contrasted = torch.tensor([[isinstance(j, Contrast) for j in row] for row in rows], device=device)
    return targets, _checked_contrast(targets, others, contrasted), False


def _plain_targets(target, n: int, device) -> tuple[torch.Tensor, bool]:
    """Targets [N, T] of a form without contrasts, and whether one target was asked for."""
    if target is None:  # the forward's only output; the evaluator refuses several
        return torch.zeros((n, 1), dtype=torch.long, device=device), True
    if _is_index(target):
        return torch.full((n, 1), int(target), dtype=torch.long, device=device), True
    if isinstance(target, (torch.Tensor, np.ndarray)):
        t = torch.as_tensor(target)
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise ValueError(f"targets must be integers, got a tensor of {t.dtype}")
        t = t.to(device, torch.long)
        if t.dim() == 1 and t.shape[0] == n:
            return t.view(n, 1), True
        if t.dim() == 2 and t.shape[0] == n and t.shape[1] > 0:
            return t, False
        if t.numel() == 1:  # 0-d or one element: every example's target
            return t.reshape(1, 1).expand(n, 1).contiguous(), True
        raise ValueError(f"a tensor of targets must have shape [{n}] or [{n}, T] (per example) or hold one "
                         f"target for all, got {tuple(t.shape)}")
    items = list(target) if isinstance(target, (list, tuple)) else []
    if items and all(_is_index(t) for t in items):
        return torch.tensor([[int(t) for t in items]] * n, dtype=torch.long, device=device), False
    if (len(items) == n and all(isinstance(t, (list, tuple)) for t in items)
            and len({len(t) for t in items}) == 1 and all(_is_index(j) for t in items for j in t) and items[0]):
        return torch.tensor([[int(j) for j in t] for t in items], dtype=torch.long, device=device), False
    raise ValueError(f"target must be an int (every example), a list of ints (several targets for every "
                     f"example), a list of {n} lists of T ints or a tensor [{n}] or [{n}, T] (per example), "
                     f"None (a forward with one output), or a Contrast(target, rather_than) of these or in place of "
                     f"an int of a list; got {target!r}")


def _entry(value) -> tuple[int, int] | None:
    """(target, rather_than) of one entry of a list of targets: an int (rather than -1: none) or a Contrast of two
    ints; None for anything else."""
    if _is_index(value):
        return int(value), -1
    if isinstance(value, Contrast) and _is_index(value.target) and _is_index(value.rather_than):
        return int(value.target), int(value.rather_than)
    return None


def _checked_contrast(targets: torch.Tensor, others: torch.Tensor, contrasted: torch.Tensor) -> torch.Tensor:
    """What each target is explained rather than, -1 where it is no contrast (`contrasted` False); refused where a
    contrast names a negative class or a target rather than itself."""
    if bool((contrasted & (others < 0)).any()):
        raise ValueError(f"a contrast names classes by their index, 0 or more; got rather than "
                         f"{others[contrasted].tolist()}")
    if bool((contrasted & (others == targets)).any()):
        raise ValueError("a target rather than itself explains nothing (F is 0): a contrast needs two different "
                         f"classes; got targets {targets.tolist()} rather than {others.tolist()}")
    return torch.where(contrasted, others, torch.full_like(others, -1))


def _is_index(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def as_forward_args(forward_args, device) -> tuple:
    """forward_args as a tuple (None: none; anything but a tuple: one argument), tensors detached on `device`."""
    args = () if forward_args is None else forward_args if isinstance(forward_args, tuple) else (forward_args,)
    return tuple(a.detach().to(device) if isinstance(a, torch.Tensor) else a for a in args)


def check_precision(forward, xs) -> None:
    """A module whose weights are all of one precision gets inputs of that precision: float64 inputs into a float32
    model would fail inside its forward with a message about matrices, not about the inputs."""
    module = forward if isinstance(forward, torch.nn.Module) else getattr(forward, "__self__", None)
    if not isinstance(module, torch.nn.Module):
        return
    weights = {p.dtype for p in module.parameters() if p.is_floating_point()}
    if len(weights) == 1:
        weight = weights.pop()
        for i, x in enumerate(xs):
            if {x.dtype, weight} == {torch.float32, torch.float64}:
                raise ValueError(f"input {i} is {x.dtype} but the model's weights are {weight}: pass inputs of the "
                                 f"model's precision (x.to({weight})) or convert the model (model.to({x.dtype}))")
