"""A clear ImportError for DIRAC modules this project does not provide.

Installed last on ``sys.meta_path`` by ``import DIRAC``, so it is asked only after the
normal import machinery found nothing: a script importing one of DIRAC's modules that
is not here gets ``ModuleNotFoundError`` saying so and pointing at the table of what is
provided (docs/compatibility.md), with what to use instead where there is something.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

__all__ = ["INSTEAD", "NotProvidedFinder", "install"]

TABLE = "docs/compatibility.md"

#: DIRAC modules scripts use that are not here, and what a script uses instead.
INSTEAD: dict[str, str] = {
    "DIRAC.Core.DISET.RPCClient": "DIRAC.Core.Base.Client.Client(url='System/Service')",
    "DIRAC.Core.Tornado": "dirac-worker serves every handler over RabbitMQ",
    "DIRAC.Core.Security.X509Chain": "the broker login is the identity "
                                     "(DIRAC.Core.Security.ProxyInfo.getProxyInfo)",
    "DIRAC.Core.Security.VOMS": "the Registry's groups and properties (getProxyInfo)",
    "DIRAC.FrameworkSystem.Client.ProxyManagerClient": "no proxies: the broker login is the "
                                                       "identity",
    "DIRAC.ConfigurationSystem.Client.CSAPI": "edit the configuration file served by "
                                              "dirac-worker Configuration",
    "DIRAC.ConfigurationSystem.Client.Helpers.Operations": "gConfig.getValue('/Operations/...')",
}


class NotProvidedFinder(importlib.abc.MetaPathFinder):
    """Raises a helpful ModuleNotFoundError for any ``DIRAC.*`` module not found."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> Any:
        """Never finds anything: either not a DIRAC module (None) or a clear error."""
        del path, target
        if not fullname.startswith("DIRAC."):
            return None
        instead = next((text for prefix, text in INSTEAD.items()
                        if fullname == prefix or fullname.startswith(prefix + ".")), "")
        message = (f"No module named {fullname!r}: this DIRAC module is not provided by "
                   f"diracmq (the table of DIRAC's modules and names in {TABLE} says what "
                   f"is)")
        if instead:
            message += f"; instead: {instead}"
        raise ModuleNotFoundError(message, name=fullname)


def install() -> None:
    """Append the finder to ``sys.meta_path`` once."""
    if not any(isinstance(f, NotProvidedFinder) for f in sys.meta_path):
        sys.meta_path.append(NotProvidedFinder())
