"""DIRAC's ``Client`` base class (served over RabbitMQ: see client/base.py) and
``createClient``, DIRAC's class decorator that gives a client one method per
``export_`` function of its service's handler::

    @createClient("WorkloadManagement/JobMonitoring")
    class JobMonitoringClient(Client):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.setServer("WorkloadManagement/JobMonitoring")

The handler is found as DIRAC finds it: module
``<extension>.<System>System.Service.<Service>Handler`` in every extension
(``DIRAC.Core.Utilities.Extensions``), then DIRAC; its source is read, not imported
(a handler may need server-side packages a client does not have).  A method the
class already has (its own, or one from an extension found earlier) is kept.
"""

from __future__ import annotations

import ast
import importlib.resources
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from diracmq.broker.returnvalues import DReturnType
from diracmq.client.base import Client, RemoteMethod

from DIRAC.Core.Utilities.Extensions import extensionsByPriority

__all__ = ["Client", "RemoteMethod", "createClient"]

_C = TypeVar("_C", bound=type)


def _remoteMethod(name: str, arguments: list[str], doc: str, where: str
                  ) -> Callable[..., DReturnType]:
    """A client method calling ``export_<name>`` with positional arguments.

    Keywords, as DIRAC's: ``timeout`` (seconds, this call), ``url`` (another
    ``System/Service``), ``rpc`` (a client to send the call through instead).
    """

    def method(self: Client, *args: Any, rpc: Any = None, timeout: float | None = None,
               url: str | None = None) -> DReturnType:
        if rpc is not None and hasattr(rpc, "executeRPC"):
            return rpc.executeRPC(name, *args, timeout=timeout)
        if url:
            other = Client(url=url, timeout=self.timeout, settings=self._settings)
            return other.executeRPC(name, *args, timeout=timeout)
        return self.executeRPC(name, *args, timeout=timeout)

    method.__name__ = method.__qualname__ = name
    text = f"{name}({', '.join(arguments)}, **kwargs)\n\n{doc}".rstrip()
    text += f"\n\nAutomatically created for the service function {where}.export_{name}"
    if arguments and ":param " not in doc:
        text += "\n\n" + "\n".join(f":param {a}: {a}" for a in arguments)
    method.__doc__ = text
    keyword = inspect.Parameter.KEYWORD_ONLY
    positional = inspect.Parameter.POSITIONAL_ONLY
    method.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter("self", positional)]
        + [inspect.Parameter(a, positional) for a in arguments]
        + [inspect.Parameter(k, keyword, default=None) for k in ("rpc", "timeout", "url")])
    return method


def _exports(source: str, className: str) -> list[tuple[str, list[str], str]]:
    """``(name, arguments, docstring)`` of each ``export_`` function of the handler class."""
    found = []
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.ClassDef) and node.name.startswith(className)):
            continue
        for member in node.body:
            if (isinstance(member, (ast.FunctionDef, ast.AsyncFunctionDef))
                    and member.name.startswith("export_")):
                arguments = [a.arg for a in member.args.args]
                if arguments and arguments[0] in ("self", "cls"):
                    arguments = arguments[1:]
                found.append((member.name[len("export_"):], arguments,
                              ast.get_docstring(member) or ""))
    return found


def createClient(serviceName: str) -> Callable[[_C], _C]:
    """Class decorator: one method per ``export_`` function of ``serviceName``'s handler.

    Each generated method takes the handler's positional arguments and the keywords
    ``rpc``, ``timeout`` and ``url``, and carries the handler function's docstring.
    """
    system, _, service = serviceName.strip("/").partition("/")
    if not system or not service or "/" in service:
        raise ValueError(f"createClient: {serviceName!r} is not 'System/Service'")
    handler = f"{service}Handler"

    def addFunctions(clientCls: _C) -> _C:
        for extension in extensionsByPriority():
            package = f"{extension}.{system}System.Service"
            try:
                source = (importlib.resources.files(package) / f"{handler}.py").read_text(
                    encoding="utf-8")
            except (ImportError, OSError, TypeError):
                continue
            try:
                exports = _exports(source, handler)
            except SyntaxError:
                continue
            for name, arguments, doc in exports:
                if hasattr(clientCls, name):
                    continue
                setattr(clientCls, name,
                        _remoteMethod(name, arguments, doc, f"{package}.{handler}.{handler}"))
        return clientCls

    return addFunctions
