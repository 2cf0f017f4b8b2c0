"""DIRAC's ``ClassAd(jdlText)``: a job description parsed from its JDL text.

Built on this project's JDL parser (DIRAC/WorkloadManagementSystem/Utilities/JDL.py),
so values are typed (strings, numbers, lists, nested ClassAds, expressions) while the
methods answer as DIRAC's text-based ClassAd does: ``getAttributeString`` gives a
string without its quotes, ``get_expression`` the value's JDL text, ``isOK()`` whether
the text was a non-empty, well-formed ``[ ... ]`` description.
"""

from __future__ import annotations

from typing import Any

from DIRAC.WorkloadManagementSystem.Utilities.JDL import ClassAd as _TypedClassAd
from DIRAC.WorkloadManagementSystem.Utilities.JDL import JDLError, parseJDL

__all__ = ["ClassAd"]


class ClassAd(_TypedClassAd):
    """``ClassAd(jdl)``: parsed from JDL text (or a dict of attributes).

    Text that is not a bracketed JDL, or does not parse, gives an empty ClassAd whose
    :meth:`isOK` is False (``parseError`` says why), as DIRAC's.
    """

    def __init__(self, jdl: str | dict[str, Any] | None = None) -> None:
        super().__init__()
        self.parseError = ""
        if isinstance(jdl, dict):
            for name, value in jdl.items():
                self[name] = value
            return
        text = (jdl or "").strip()
        if not text.startswith("["):
            self.parseError = "a JDL description is enclosed in [ ]"
            return
        try:
            parsed = parseJDL(text)
        except JDLError as exc:
            self.parseError = str(exc)
            return
        for name, value in parsed.items():
            self[name] = value

    def isOK(self) -> bool:
        """Whether the description parsed and has at least one attribute."""
        return not self.parseError and len(self) > 0

    def copy(self) -> ClassAd:
        """A deep copy."""
        new = ClassAd()
        for name, value in super().copy().items():
            new[name] = value
        return new
