"""The attribution methods by name: filled by methods/__init__.py, one line a method, in the order the pages list
them, and read wherever a method is chosen by name (SmoothGrad's base method included)."""
from __future__ import annotations

from .base import AttributionMethod

METHODS: dict[str, type[AttributionMethod]] = {}


def register(*classes: type[AttributionMethod]) -> None:
    """Add the classes to METHODS under their names, in order."""
    for cls in classes:
        METHODS[cls.name] = cls


def method(name: str, **options) -> AttributionMethod:
    """The registered method `name` with its options, or a ValueError listing the methods."""
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose one of {', '.join(METHODS)}")
    return METHODS[name](**options)
