"""Finding a System's handlers, DIRAC's way.

A service ``System/Service`` is served by class ``<Service>Handler`` in module
``<package>.<System>System.Service.<Service>Handler``.  ``DIRAC`` is always searched;
extensions given with ``--extension`` are searched first, so an extension can add
services to a System or replace one of DIRAC's.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable

from diracmq.workers.handler import RequestHandler

__all__ = ["HandlerNotFound", "load_handlers", "system_name"]


class HandlerNotFound(LookupError):
    """No handler could be found for a System or a requested service."""


def system_name(name: str) -> str:
    """``WorkloadManagement`` from ``WorkloadManagement`` or ``WorkloadManagementSystem``."""
    name = name.strip().strip("/")
    return name[: -len("System")] if name.endswith("System") and name != "System" else name


def load_handlers(system: str, extensions: Iterable[str] = (),
                  services: Iterable[str] = ()) -> dict[str, type[RequestHandler]]:
    """Map ``System/Service`` to handler class for every service of ``system``.

    ``services`` (names without the System) restricts the result; asking for one
    that does not exist raises :class:`HandlerNotFound`, as does a System with none.
    """
    system = system_name(system)
    roots = [*extensions, "DIRAC"]
    for root in extensions:
        try:
            importlib.import_module(root)
        except ImportError as exc:
            raise HandlerNotFound(f"cannot import extension {root!r}: {exc} (run dirac-worker "
                                  f"from the folder that contains it, or install it)") from None
    found: dict[str, type[RequestHandler]] = {}
    for root in roots:
        package_name = f"{root}.{system}System.Service"
        try:
            package = importlib.import_module(package_name)
        except ModuleNotFoundError as exc:
            if exc.name and package_name.startswith(exc.name):
                continue  # this root has no such System
            raise
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.endswith("Handler") or info.name == "Handler":
                continue
            service = f"{system}/{info.name[: -len('Handler')]}"
            if service in found:
                continue  # an extension earlier in the list wins
            module = importlib.import_module(f"{package_name}.{info.name}")
            cls = getattr(module, info.name, None)
            if isinstance(cls, type) and issubclass(cls, RequestHandler):
                found[service] = cls
        # A System may also make services that are not one module each (DataManagement's
        # storage elements, one per configured SE): its package's dynamicServices(system).
        dynamic = getattr(package, "dynamicServices", None)
        if callable(dynamic):
            for service, cls in dynamic(system).items():
                if isinstance(cls, type) and issubclass(cls, RequestHandler):
                    found.setdefault(service, cls)
    if not found:
        raise HandlerNotFound(f"no handlers for System {system!r} in {', '.join(roots)} "
                              f"(looked for <package>.{system}System.Service.*Handler)")
    wanted = {f"{system}/{s.split('/')[-1]}" for s in services}
    if wanted:
        missing = wanted - found.keys()
        if missing:
            raise HandlerNotFound(f"no handler for {', '.join(sorted(missing))}; "
                                  f"{system} has {', '.join(sorted(found))}")
        found = {k: v for k, v in found.items() if k in wanted}
    return found
