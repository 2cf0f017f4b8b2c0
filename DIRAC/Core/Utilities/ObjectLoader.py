"""DIRAC's ``ObjectLoader``: load modules and objects from extensions, then DIRAC.

``ObjectLoader().loadObject("WorkloadManagementSystem.Client.JobMonitoringClient")``
imports ``<root>.WorkloadManagementSystem.Client.JobMonitoringClient`` from the first
root that has it (extensions first, then ``DIRAC``, then the name as given) and returns
``S_OK(the object named like the module's last part)``.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from typing import Any

from diracmq.broker.derrno import EIMPERR
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

from DIRAC.Core.Utilities.Extensions import extensionsByPriority

__all__ = ["ObjectLoader"]


def _import(name: str) -> DReturnType:
    """``S_OK(module)``, ``S_OK(None)`` when ``name`` does not exist, S_ERROR when it
    exists but fails to import."""
    try:
        return S_OK(importlib.import_module(name))
    except ModuleNotFoundError as exc:
        if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
            return S_OK(None)
        return S_ERROR(EIMPERR, f"cannot import {name}: {exc}")
    except Exception as exc:  # the module itself is broken: say so, do not hide it
        return S_ERROR(EIMPERR, f"cannot import {name}: {exc!r}")


class ObjectLoader:
    """Loads modules and objects by DIRAC-relative import strings (one per process)."""

    _instance: ObjectLoader | None = None

    def __new__(cls, baseModules: list[str] | None = None) -> ObjectLoader:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
            cls._instance._roots = []
        return cls._instance

    def __init__(self, baseModules: list[str] | None = None) -> None:
        self._base = list(baseModules or ["DIRAC"])
        self.reloadRootModules()

    def reloadRootModules(self) -> None:
        """Compute the roots again (extensions first, then the base modules, then "")."""
        roots = [r for r in extensionsByPriority() if r not in self._base]
        self._roots = [*roots, *self._base, ""]

    def _rootImport(self, name: str) -> DReturnType:
        for root in self._roots:
            full = f"{root}.{name}" if root else name
            result = _import(full)
            if not result["OK"] or result["Value"] is not None:
                return result if not result["OK"] else S_OK((full, result["Value"]))
        return S_OK(None)

    def loadModule(self, importString: str, hideExceptions: bool = False) -> DReturnType:
        """``S_OK(module)`` for a DIRAC-relative import string, S_ERROR(EIMPERR) if none."""
        del hideExceptions
        result = self._rootImport(importString)
        if not result["OK"]:
            return result
        if result["Value"] is None:
            return S_ERROR(EIMPERR, f"No module {importString} found")
        return S_OK(result["Value"][1])

    def loadObject(self, importString: str, objName: str = "",
                   hideExceptions: bool = False) -> DReturnType:
        """``S_OK(object)`` named ``objName`` (default: the last part of the import
        string) in that module; the result's ``ModuleFile`` is the module's file."""
        objName = objName or importString.split(".")[-1]
        result = self.loadModule(importString, hideExceptions)
        if not result["OK"]:
            return result
        module = result["Value"]
        if not hasattr(module, objName):
            return S_ERROR(EIMPERR, f"{importString} does not contain a {objName} object")
        found = S_OK(getattr(module, objName))
        found["ModuleFile"] = getattr(module, "__file__", None)
        return found

    def getObjects(self, modulePath: str, reFilter: str | re.Pattern[str] | None = None,
                   parentClass: type | None = None, recurse: bool = False,
                   continueOnError: bool = False) -> DReturnType:
        """``S_OK({"<modulePath>.<module>": object})`` for the modules under
        ``modulePath`` in every root (an extension's wins) whose name matches
        ``reFilter``; each module's object of the same name, kept when it is a subclass
        of ``parentClass`` (when given)."""
        pattern = re.compile(reFilter) if isinstance(reFilter, str) else reFilter
        found: dict[str, Any] = {}
        for root in self._roots:
            base = f"{root}.{modulePath}" if root else modulePath
            result = _import(base)
            if not result["OK"]:
                return result
            package = result["Value"]
            if package is None or not hasattr(package, "__path__"):
                continue
            for info in pkgutil.iter_modules(package.__path__):
                if pattern and not pattern.match(info.name):
                    continue
                key = f"{modulePath}.{info.name}"
                if info.ispkg:
                    if recurse:
                        inner = self.getObjects(key, pattern, parentClass, recurse,
                                                continueOnError)
                        if not inner["OK"]:
                            return inner
                        for name, obj in inner["Value"].items():
                            found.setdefault(name, obj)
                    continue
                if key in found:
                    continue
                loaded = _import(f"{base}.{info.name}")
                if not loaded["OK"] or loaded["Value"] is None:
                    if continueOnError:
                        continue
                    return loaded if not loaded["OK"] else S_ERROR(
                        EIMPERR, f"cannot import {base}.{info.name}")
                obj = getattr(loaded["Value"], info.name, None)
                if obj is None:
                    continue
                if parentClass is not None and not (isinstance(obj, type)
                                                    and issubclass(obj, parentClass)
                                                    and obj is not parentClass):
                    continue
                found[key] = obj
        return S_OK(found)
