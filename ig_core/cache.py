"""The engine's cache of results: keyed by an exact digest of the tensors and of every option that decides a
result, bounded by a count and by bytes, the least recently used result out first."""
from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import torch

from .inputs import AttributionProblem
from .path.options import PathOptions
from .result import Attribution


@dataclass(frozen=True)
class ScanRequest:
    """What decides a result besides the tensors: the cache key is derived from every field (and the path's), so an
    option added to `attribute` must be added here or to PathOptions (a test checks it) and cannot be left out of
    the key."""

    model_key: str
    path: PathOptions
    output: str
    layer: int  # id() of the observed module; the cache holds the module, so the id is not reused
    amp: str | None
    method: str
    method_options: tuple  # sorted (name, value) pairs
    forward_args: tuple | None  # per argument: a tensor's (dtype, shape) (its bytes are digested) or the value itself
    single_target: bool
    tuple_inputs: bool


def forward_args_key(args: tuple) -> tuple | None:
    """The forward args in the cache key: a tensor's dtype and shape (its bytes go into the digest), a plain value
    itself; None when an argument's repr need not tell its contents (a module, a callable): no caching."""
    key = []
    for a in args:
        if isinstance(a, torch.Tensor):
            key.append(("tensor", str(a.dtype), tuple(a.shape)))
        elif _plain(a):
            key.append(a)
        else:
            return None
    return tuple(key)


def _plain(value) -> bool:
    """A value its repr tells exactly: numbers, strings, None, and lists, tuples and dicts of them."""
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        return True
    if isinstance(value, (tuple, list)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(_plain(k) and _plain(v) for k, v in value.items())
    return False


def _digest(problem: AttributionProblem, request: ScanRequest) -> str:
    h = hashlib.sha256()
    arg_tensors = [a for a in problem.forward_args if isinstance(a, torch.Tensor)]
    for t in (*problem.inputs, *problem.baselines, problem.targets, *arg_tensors):
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())  # any dtype
    if problem.rather_than is not None:  # a contrast explains another score than its target alone
        h.update(b"rather_than")
        h.update(problem.rather_than.cpu().contiguous().numpy().tobytes())
    h.update(repr(request).encode())  # every field of the frozen request
    if problem.untargeted:  # target=None reads like target=0 but refuses a forward with several outputs
        h.update(b"target=None")
    return h.hexdigest()


class ResultCache:
    """Results by key, at most `size` of them and `max_bytes` in all (Attribution.nbytes), the oldest out first."""

    def __init__(self, size: int, max_bytes: int):
        self.size, self.max_bytes = size, max_bytes
        self._results: OrderedDict[str, tuple[Attribution, object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def key(self, problem: AttributionProblem, request: ScanRequest) -> str | None:
        """The request's key; None (not cached) when the cache is off or a forward argument cannot be keyed."""
        if self.size <= 0 or request.forward_args is None:
            return None
        return _digest(problem, request)

    def get(self, key: str | None) -> Attribution | None:
        if key is None:
            return None
        with self._lock:
            if key in self._results:
                self._results.move_to_end(key)
                return self._results[key][0]
        return None

    def put(self, key: str | None, result: Attribution, owners) -> None:
        """Keep the result, and its owners (the forward and the layer, whose ids are in the key) alive with it."""
        if key is None:
            return
        size = result.nbytes()
        with self._lock:
            if key in self._results:
                self._bytes -= self._results.pop(key)[2]
            self._results[key] = (result, owners, size)
            self._bytes += size
            while len(self._results) > self.size or (self._bytes > self.max_bytes and len(self._results) > 1):
                self._bytes -= self._results.popitem(last=False)[1][2]

    def clear(self) -> None:
        with self._lock:
            self._results.clear()
            self._bytes = 0
