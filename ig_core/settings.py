"""The scan settings a user picks once and every page and command line shares."""
from __future__ import annotations

import argparse
import ast
from dataclasses import asdict, dataclass, replace

from .path.quadrature import RULES


@dataclass(frozen=True)
class ScanSettings:
    """Defaults reach 1% completeness on real networks: the adaptive rule follows the measured error."""

    rule: str = "adaptive"
    steps: int = 16  # fixed rules: gradient evaluations; adaptive: the starting grid
    tolerance: float = 0.01  # adaptive: relative completeness error to reach
    max_steps: int = 512  # adaptive: budget of path points
    max_batch: int | None = None  # path points per batch; None: the engine's default for its device
    amp: str | None = None  # "bf16" or "fp16" autocast on the GPU
    method: str = "integrated_gradients"  # ig_core.METHODS
    method_options: tuple = ()  # the method's options as sorted (name, value) pairs (hashable: a cache key)

    def __post_init__(self):
        from .methods import method

        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}; choose one of {', '.join(RULES)}")
        if isinstance(self.method_options, dict):
            object.__setattr__(self, "method_options", tuple(sorted(self.method_options.items())))
        method(self.method, **dict(self.method_options))  # refuses an unknown method or option now, not mid-scan

    def options(self) -> dict:
        """Keyword arguments for AttributionEngine.attribute."""
        return {**asdict(self), "method_options": dict(self.method_options)}

    def with_method(self, name: str, **options) -> "ScanSettings":
        """The same scan settings with another method."""
        return replace(self, method=name, method_options=tuple(sorted(options.items())))

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """The scan's command-line flags, with this class's defaults: --rule, --steps, --tolerance, --max-steps,
        --max-batch, --amp, and --option METHOD.NAME=VALUE for any method's options. Which method runs is the
        command's own flag: a dataset run explains with one, an evaluation compares several."""
        defaults = cls()
        group = parser.add_argument_group("scan settings")
        group.add_argument("--rule", default=defaults.rule, choices=RULES)
        group.add_argument("--steps", type=int, default=defaults.steps,
                           help=f"fixed rules: path points; adaptive: the starting grid (default {defaults.steps})")
        group.add_argument("--tolerance", type=float, default=defaults.tolerance,
                           help=f"adaptive: the relative completeness error to reach (default {defaults.tolerance})")
        group.add_argument("--max-steps", type=int, default=defaults.max_steps,
                           help=f"adaptive: the budget of path points (default {defaults.max_steps})")
        group.add_argument("--max-batch", type=int, default=defaults.max_batch,
                           help="path points per batch (default: the engine's for its device)")
        group.add_argument("--amp", default=defaults.amp, choices=("bf16", "fp16"), help="mixed precision on the GPU")
        group.add_argument("--option", action=MethodOptions, default={}, metavar="METHOD.NAME=VALUE",
                           help="a method's option, e.g. smoothgrad.samples=25 (the value read as a Python literal, "
                                "else as text); repeatable")

    @classmethod
    def from_arguments(cls, args: argparse.Namespace, method: str | None = None) -> "ScanSettings":
        """The settings that add_arguments' flags chose, for `method` (default: this class's) with the --option
        values that name it."""
        method = method or cls.method
        return cls(rule=args.rule, steps=args.steps, tolerance=args.tolerance, max_steps=args.max_steps,
                   max_batch=args.max_batch, amp=args.amp, method=method, method_options=args.option.get(method, {}))


class MethodOptions(argparse.Action):
    """--option METHOD.NAME=VALUE, gathered as {method: {name: value}}; the value a Python literal (3, 0.5, True,
    (1, 2)) or else the text itself."""

    def __call__(self, parser, namespace, text, option_string=None):
        key, equals, value = text.partition("=")
        name, dot, option = key.strip().partition(".")
        if not (equals and dot and name and option):
            raise argparse.ArgumentError(self, f"expected METHOD.NAME=VALUE, got {text!r}")
        chosen = {method: dict(options) for method, options in getattr(namespace, self.dest).items()}
        chosen.setdefault(name, {})[option] = literal(value.strip())
        setattr(namespace, self.dest, chosen)


def literal(text: str):
    """A Python literal read from the text, or else the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text
