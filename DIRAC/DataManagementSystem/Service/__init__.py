"""The DataManagement System's services.

``FileCatalogHandler`` serves ``DataManagement/FileCatalog``.  Storage elements are
not one module each: :func:`dynamicServices` (called by the worker's loader) makes a
``StorageElement_<name>`` service for every storage element of the Configuration.
"""

from __future__ import annotations

from typing import Any

__all__ = ["dynamicServices"]


def dynamicServices(system: str) -> dict[str, type]:
    """``{"DataManagement/StorageElement_<name>": handler class}`` for every configured SE."""
    from DIRAC.DataManagementSystem.Service.StorageElementService import StorageElementHandler
    from DIRAC.DataManagementSystem.Utilities.DMSUtilities import seServiceName
    from DIRAC.Resources.Storage.StorageElement import getStorageElementOptions

    services: dict[str, type] = {}
    for name, options in getStorageElementOptions().items():
        service = seServiceName(name)
        attributes: dict[str, Any] = {"seName": name, "seOptions": options,
                                      "__doc__": f"Storage element {name}."}
        cls = type(f"{service.split('/')[1]}Handler", (StorageElementHandler,), attributes)
        services[f"{system}/{service.split('/')[1]}"] = cls
    return services
