"""DIRAC's ``DIRAC.Core.Utilities.JDL``: JDL text to a configuration tree and back.

DIRAC returns a ``diraccfg.CFG``; here the tree is a plain ``dict`` (nested
descriptions are nested dicts, lists stay lists, numbers stay numbers), the form the
rest of this project's configuration uses.  ``jdlToBaseJobDescriptionModel`` (DIRAC's
pydantic job model) is not provided (docs/compatibility.md).
"""

from __future__ import annotations

from typing import Any

from diracmq.broker.derrno import EWMSJDL
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

from DIRAC.WorkloadManagementSystem.Utilities.JDL import (
    ClassAd,
    Expression,
    JDLError,
    formatValue,
    parseJDL,
)

__all__ = ["dumpCFGAsJDL", "loadJDLAsCFG"]


def _toTree(ad: ClassAd) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, value in ad.items():
        if isinstance(value, ClassAd):
            tree[name] = _toTree(value)
        elif isinstance(value, Expression):
            tree[name] = value.text
        else:
            tree[name] = value
    return tree


def loadJDLAsCFG(jdl: str) -> DReturnType:
    """``S_OK((tree, number of characters read))`` of a JDL, or ``S_ERROR(EWMSJDL)``."""
    try:
        return S_OK((_toTree(parseJDL(jdl)), len(jdl)))
    except JDLError as exc:
        return S_ERROR(EWMSJDL, str(exc))


def dumpCFGAsJDL(cfg: dict[str, Any], level: int = 1, tab: str = "  ") -> str:
    """The JDL text of a tree made by :func:`loadJDLAsCFG` (or any dict of values)."""
    pad = tab * level
    lines = []
    for name, value in cfg.items():
        if isinstance(value, dict):
            text = dumpCFGAsJDL(value, level + 1, tab)
            lines.append(f"{pad}{name} =\n{pad}{text};")
        else:
            lines.append(f"{pad}{name} = {formatValue(value)};")
    closing = tab * (level - 1)
    return "[\n" + "\n".join(lines) + f"\n{closing}]"


def __getattr__(name: str) -> Any:
    """DIRAC's names this module does not provide: an ImportError naming the table."""
    if name == "jdlToBaseJobDescriptionModel":
        raise ImportError(f"{name} (DIRAC's pydantic job model) is not provided by diracmq: "
                          f"see docs/compatibility.md; the services check a JDL when it is "
                          f"submitted")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
