"""Numbers read from environment variables, with an error that names the variable.

``int(os.environ["X"])`` fails with "invalid literal for int() with base 10: 'abc'",
which tells an operator nothing about which of a worker's settings is wrong; and a
number that parses but cannot work (a batch of 0 jobs, a negative lease) must be refused
as clearly, not turn into a loop that never ends or a queue never served.
"""

from __future__ import annotations

import os
from typing import TypeVar

__all__ = ["envNumber"]

N = TypeVar("N", int, float)


def envNumber(name: str, default: N, minimum: N | None = None) -> N:
    """The value of environment variable ``name`` as ``type(default)``, else ``default``.

    Unset or empty: ``default``.  Raises ValueError naming the variable when the value is
    not a number of that type or is below ``minimum``.
    """
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    kind = type(default)
    try:
        value = kind(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: not {'an integer' if kind is int else 'a number'}"
                         ) from None
    if value != value or value in (float("inf"), float("-inf")):  # nan, inf
        raise ValueError(f"{name}={raw!r}: not a finite number")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}={raw!r}: must be at least {minimum}")
    return value
