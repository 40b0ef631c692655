"""The constructors' value checks: a bad argument is one line naming it, its value and what is allowed.

Each value is checked once, by the constructor that takes it. The message names the argument
(``aux_weight=1.5: must be within [0, 1]``); the job names it by its full config key
(``model.aux_weight``: :func:`pairmnist.train.explain`).
"""

from __future__ import annotations

import math
from typing import Any

MAX_SEED = 2**32 - 1  # numpy's and Lightning's seed range


class BadValue(ValueError):
    """An argument that is not allowed.

    Attributes:
        key: the argument's name, dotted for a key inside a dict argument (``augment.shift``).
        value: the value given.
        allowed: what is allowed, e.g. ``must be within [0, 1]``.
    """

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        super().__init__(f"{key}={value}: {allowed}")
        self.key, self.value, self.allowed = key, value, allowed


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    """Raise :class:`BadValue` unless ``ok``."""
    if not ok:
        raise BadValue(key, value, allowed)


def number(value: Any, low: float = -math.inf, high: float = math.inf, integer: bool = False) -> bool:
    """Whether ``value`` is a finite number (an ``int`` when ``integer``; a bool is neither) in [low, high]."""
    kinds = int if integer else int | float
    return isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value) and low <= value <= high


def fraction(value: Any) -> bool:
    """Whether ``value`` is a number in [0, 1) (a probability that must leave something)."""
    return number(value, 0, 1) and value < 1


def only(given: dict[str, Any], allowed: tuple[str, ...], name: str) -> None:
    """Raise :class:`BadValue` for the first key of ``given`` that is not ``allowed`` (named ``<name>.<key>``)."""
    for key, value in given.items():
        require(key in allowed, f"{name}.{key}", value, f"unknown key; allowed: {', '.join(allowed)}")
