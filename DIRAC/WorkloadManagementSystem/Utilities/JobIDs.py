"""Job ID arguments as DIRAC accepts them: an int, a numeric string or a list of those."""

from __future__ import annotations

from typing import Any

__all__ = ["parseJobIDs"]


def _one(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit() and text.isascii():
            number = int(text)
            return number if number > 0 else None
    return None


def parseJobIDs(value: Any) -> tuple[list[int], list[Any]]:
    """``(valid IDs, invalid items)`` from an int, a numeric string or a list/tuple/set.

    Valid IDs keep their first-seen order and appear once; anything that is not a
    positive integer (or its decimal text) is returned, as given, among the invalid.
    A string may also hold several IDs separated by commas or blanks (``"1, 2"``).
    """
    if isinstance(value, str) and any(sep in value for sep in ", \t\n"):
        value = [part for part in value.replace(",", " ").split() if part]
    items = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
    valid: list[int] = []
    invalid: list[Any] = []
    seen: set[int] = set()
    for item in items:
        number = _one(item)
        if number is None:
            invalid.append(item)
        elif number not in seen:
            seen.add(number)
            valid.append(number)
    return valid, invalid
