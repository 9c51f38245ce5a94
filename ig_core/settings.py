"""The scan settings a user picks once and every page shares."""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

from .quadrature import RULES


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
