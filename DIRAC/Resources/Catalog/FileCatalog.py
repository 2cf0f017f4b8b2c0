"""``FileCatalog()``: DIRAC's front of the configured catalogues.

DIRAC dispatches every call over the catalogues the Configuration lists; diracmq has
one, ``DataManagement/FileCatalog``, so ``FileCatalog()`` is that catalogue's client
with DIRAC's extra methods (``isOK``, ``getMasterCatalogNames``...).
"""

from __future__ import annotations

from typing import Any

from diracmq.broker.returnvalues import S_OK, DReturnType

from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient

__all__ = ["FileCatalog"]


class FileCatalog(FileCatalogClient):
    """The file catalogue (DIRAC's ``FileCatalog(catalogs=None, vo=None)``)."""

    def __init__(self, catalogs: Any = None, vo: str | None = None, **kwargs: Any) -> None:
        del catalogs, vo  # one catalogue: nothing to choose
        super().__init__(**kwargs)

    def getMasterCatalogNames(self) -> DReturnType:
        """``S_OK(["FileCatalog"])``."""
        return S_OK(["FileCatalog"])

    def getCatalogs(self) -> DReturnType:
        """``S_OK([("FileCatalog", client, True)])`` (name, object, master)."""
        return S_OK([("FileCatalog", self, True)])
