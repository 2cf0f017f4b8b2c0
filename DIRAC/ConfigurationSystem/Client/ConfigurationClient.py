"""``ConfigurationClient``: DIRAC's ``gConfig`` API over the process's configuration tree.

Paths are DIRAC's: slash-separated from the root, ``/Registry/Users/alice/DN``.
A section is a TOML table; an option is any other value, returned with its TOML type
(a TOML array comes back as a list).  :meth:`getValue` converts to the type of its
default, as DIRAC does: ``getValue(path, [])`` also splits a comma-separated string,
``getValue(path, 0)`` parses a number, ``getValue(path, False)`` reads yes/no/true/false.

Reading never raises and never blocks on a refresh: the first read of a process may
load the configuration (see :mod:`DIRAC.ConfigurationSystem.Client.ConfigurationData`).
"""

from __future__ import annotations

import copy
from typing import Any

from diracmq.broker.derrno import ESECTION
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

from DIRAC.ConfigurationSystem.Client.ConfigurationData import (
    ConfigurationData,
    gConfigurationData,
)
from DIRAC.ConfigurationSystem.Client.ConfigurationFile import as_list

__all__ = ["ConfigurationClient", "convert_value", "split_path"]

_MISSING = object()
_TRUE = {"y", "yes", "true", "on", "1"}
_FALSE = {"n", "no", "false", "off", "0"}


def split_path(path: str) -> list[str]:
    """``/Registry/Users/alice`` -> ``["Registry", "Users", "alice"]`` (empty parts dropped)."""
    return [part.strip() for part in str(path).split("/") if part.strip()]


def lookup(tree: dict[str, Any], path: str) -> Any:
    """The node at ``path`` in ``tree`` (a section dict or an option value), or ``_MISSING``."""
    node: Any = tree
    for part in split_path(path):
        if not isinstance(node, dict) or part not in node:
            return _MISSING
        node = node[part]
    return node


def convert_value(value: Any, like: Any) -> Any:
    """``value`` converted to the type of ``like`` (DIRAC's getValue rules); ``like`` if it
    cannot be."""
    if like is None:
        return copy.deepcopy(value) if isinstance(value, (list, dict)) else value
    if isinstance(like, (list, tuple)):
        if isinstance(value, (list, tuple)):
            items = [item.strip() if isinstance(item, str) else copy.deepcopy(item)
                     for item in value if not (isinstance(item, str) and not item.strip())]
        elif isinstance(value, str):
            items = as_list(value) or []
        elif isinstance(value, dict):
            return like
        else:
            items = [value]
        return tuple(items) if isinstance(like, tuple) else items
    if isinstance(like, bool):
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        return True if text in _TRUE else False if text in _FALSE else like
    if isinstance(like, int):
        if isinstance(value, bool) or isinstance(value, (list, dict)):
            return like
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            try:
                return int(float(value))
            except (TypeError, ValueError, OverflowError):
                return like
    if isinstance(like, float):
        if isinstance(value, (bool, list, dict)):
            return like
        try:
            return float(value)
        except (TypeError, ValueError):
            return like
    if isinstance(like, str):
        if isinstance(value, str):
            return value
        if isinstance(value, (list, tuple)):
            return ", ".join(str(item) for item in value)
        if isinstance(value, dict):
            return like
        return str(value)
    if isinstance(like, dict):
        return value if isinstance(value, dict) else like
    return value


class ConfigurationClient:
    """DIRAC's configuration reader (``gConfig`` is the process's instance)."""

    def __init__(self, data: ConfigurationData | None = None) -> None:
        self._data = data or gConfigurationData

    @property
    def data(self) -> ConfigurationData:
        """The :class:`ConfigurationData` read (version, source, state, refresher)."""
        return self._data

    # -------------------------------------------------------------- options
    def getValue(self, optionPath: str, defaultValue: Any = None) -> Any:
        """The option at ``optionPath`` converted to ``defaultValue``'s type, else the default."""
        value = lookup(self._data.getTree(), optionPath)
        if value is _MISSING or isinstance(value, dict):
            return defaultValue
        return convert_value(value, defaultValue)

    def getOption(self, optionPath: str, typeValue: Any = None) -> DReturnType:
        """S_OK(value) (converted to ``typeValue``'s type when given) or S_ERROR."""
        value = lookup(self._data.getTree(), optionPath)
        if value is _MISSING or isinstance(value, dict):
            return S_ERROR(f"Path {optionPath} does not exist or it's not an option")
        if typeValue is None:
            return S_OK(value)
        converted = convert_value(value, typeValue)
        if converted is typeValue and value != typeValue:
            return S_ERROR(f"Value of {optionPath} ({value!r}) cannot be converted to "
                           f"{type(typeValue).__name__}")
        return S_OK(converted)

    # -------------------------------------------------------------- sections
    def _section(self, sectionPath: str) -> tuple[dict[str, Any] | None, DReturnType]:
        """(the section at ``sectionPath``, S_OK) or (None, S_ERROR(ESECTION))."""
        node = lookup(self._data.getTree(), sectionPath)
        if not isinstance(node, dict):
            return None, S_ERROR(ESECTION, f"Path {sectionPath} does not exist or it's not "
                                           f"a section")
        return node, S_OK()

    def getSections(self, sectionPath: str, listOrdered: bool = True) -> DReturnType:
        """S_OK([names of the subsections of ``sectionPath``]) (file order) or S_ERROR."""
        del listOrdered  # always in file order
        node, result = self._section(sectionPath)
        if node is None:
            return result
        return S_OK([key for key, value in node.items() if isinstance(value, dict)])

    def getOptions(self, sectionPath: str, listOrdered: bool = True) -> DReturnType:
        """S_OK([names of the options of ``sectionPath``]) or S_ERROR."""
        del listOrdered
        node, result = self._section(sectionPath)
        if node is None:
            return result
        return S_OK([key for key, value in node.items() if not isinstance(value, dict)])

    def getOptionsDict(self, sectionPath: str) -> DReturnType:
        """S_OK({option: value}) for the options (not subsections) of ``sectionPath``."""
        node, result = self._section(sectionPath)
        if node is None:
            return result
        return S_OK({key: copy.deepcopy(value) for key, value in node.items()
                     if not isinstance(value, dict)})

    def getOptionsDictRecursively(self, sectionPath: str) -> DReturnType:
        """S_OK(the whole subtree of ``sectionPath`` as nested dicts, a copy)."""
        node, result = self._section(sectionPath)
        if node is None:
            return result
        return S_OK(copy.deepcopy(node))

    def getConfigurationTree(self) -> DReturnType:
        """S_OK(a copy of the whole tree)."""
        return self.getOptionsDictRecursively("/")

    # -------------------------------------------------------------- freshness
    def getVersion(self) -> str:
        """The configuration's version (a content hash; "" when none was loaded)."""
        return self._data.getVersion()

    def forceRefresh(self) -> DReturnType:
        """Ask for a newer configuration now (instead of waiting for the refresher)."""
        self._data.ensureLoaded()
        return self._data.refresh()

    def __repr__(self) -> str:
        return (f"<ConfigurationClient version={self._data.version or '-'} "
                f"source={self._data.source or '-'} state={self._data.state}>")
