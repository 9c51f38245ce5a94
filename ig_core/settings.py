"""The scan settings a user picks once and every page shares."""
from __future__ import annotations

from dataclasses import asdict, dataclass

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

    def __post_init__(self):
        if self.rule not in RULES:
            raise ValueError(f"unknown rule {self.rule!r}; choose one of {', '.join(RULES)}")

    def options(self) -> dict:
        """Keyword arguments for AttributionEngine.attribute."""
        return asdict(self)
