"""``RequestHandler``: the base of every service, and the dispatch rules DIRAC clients rely on.

A service ``System/Service`` is a subclass ``<Service>Handler`` whose ``export_<name>``
methods are callable remotely, with positional arguments only.  :func:`dispatch`
is the single place that decides what a request may reach and what comes back:

* only ``export_<name>`` where ``name`` is a public identifier -> else
  ``S_ERROR("Unknown method <name>")``;
* ``types_<name>`` checked against the arguments, with DIRAC's messages;
* ``auth_<name>`` checked against the caller's credentials (:func:`authorize`);
* an exception in the handler -> ``S_ERROR("Server error while serving <name>: <e>")``;
* a return value that is not S_OK/S_ERROR -> DIRAC's "does not return a S_OK/S_ERROR!".

Beyond DIRAC: ``atMostOnce_<name> = True`` on a handler makes the worker acknowledge
the request *before* running it, so a worker crash loses it rather than running it
again elsewhere (docs/reliability.md says when to want that).

Nothing here touches AMQP: workers/server.py feeds it decoded requests.
"""

from __future__ import annotations

import dataclasses
import datetime
import logging
import os
import socket
import time
from collections.abc import Sequence
from typing import Any, ClassVar, NamedTuple

from diracmq.broker.derrno import ENOAUTH
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType, isReturnStructure

__all__ = ["Export", "Request", "RequestHandler", "authorize", "check_types", "dispatch",
           "find_export"]

log = logging.getLogger(__name__)

_START = time.time()
_VERSION = "diracmq 0.1.0"


@dataclasses.dataclass(frozen=True)
class Request:
    """One decoded request, as a handler sees it."""

    service: str
    method: str
    args: tuple[Any, ...]
    request_id: str = ""
    #: The caller's identity: ``username``, ``group``, ``properties`` (and ``DN``).
    credentials: dict[str, Any] = dataclasses.field(default_factory=dict)
    #: True when the broker delivers this request for the second time or more.
    redelivered: bool = False


class RequestHandler:
    """Base class of service handlers.

    Subclass it as ``<Service>Handler`` in ``<ext>.<System>System.Service.<Service>Handler``
    and write ``export_<name>`` methods returning ``S_OK``/``S_ERROR``.  A handler
    object is made for every request, so instance attributes never leak between calls;
    process-wide state belongs on the class, set up in :meth:`initializeHandler`.
    """

    #: Set by the worker before :meth:`initializeHandler`: service name, System, etc.
    serviceInfoDict: ClassVar[dict[str, Any]] = {}

    @classmethod
    def initializeHandler(cls, serviceInfoDict: dict[str, Any]) -> DReturnType:
        """Run once per worker process before the first request; S_ERROR stops the worker."""
        return S_OK()

    def __init__(self, request: Request) -> None:
        self.request = request

    def initializeRequest(self) -> DReturnType | None:
        """Run before every request; an S_ERROR here is the request's reply."""
        return None

    def getRemoteCredentials(self) -> dict[str, Any]:
        """The caller's identity (a copy): username, group, properties and DN where known."""
        return dict(self.request.credentials)

    # -------------------------------------------------------- built-in methods
    types_ping: ClassVar[list[Any]] = []
    auth_ping: ClassVar[list[Any]] = ["all"]

    def export_ping(self) -> DReturnType:
        """Liveness and basic facts about the serving process."""
        now = time.time()
        try:
            with open("/proc/uptime") as fh:
                host_uptime = int(float(fh.read().split()[0]))
        except OSError:
            host_uptime = None
        return S_OK({
            "version": _VERSION,
            "time": datetime.datetime.now(datetime.UTC),
            "service uptime": int(now - self.serviceInfoDict.get("startTime", _START)),
            "host uptime": host_uptime,
            "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
            "name": self.request.service,
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            # this worker process's request counters (requests, replies, malformed,
            # no_reply_to, expired, errors, ...): what a log line alone would hide
            "counters": dict(self.serviceInfoDict.get("counters", {})),
        })

    types_echo: ClassVar[list[Any]] = [None]

    def export_echo(self, data: Any) -> DReturnType:
        """Return ``data`` unchanged: a round trip through the codec."""
        return S_OK(data)

    types_whoami: ClassVar[list[Any]] = []
    auth_whoami: ClassVar[list[Any]] = ["all"]

    def export_whoami(self) -> DReturnType:
        """The caller's credentials, as the worker established them (not as claimed)."""
        return S_OK(self.getRemoteCredentials())


def _is_public_name(name: Any) -> bool:
    return isinstance(name, str) and name.isidentifier() and not name.startswith("_")


class Export(NamedTuple):
    """What a handler class declares about one of its ``export_`` methods."""

    #: The attribute to call: ``export_<method>``.
    attribute: str
    #: ``types_<method>``, or None when the handler does not check types.
    types: Sequence[Any] | None
    #: ``auth_<method>``, or None when the handler sets no rule of its own.
    auth: Sequence[str] | str | None
    #: ``atMostOnce_<method> is True``: acknowledge before running (docs/reliability.md).
    at_most_once: bool


_exports: dict[tuple[type, str], Export] = {}


def find_export(handler_cls: type[RequestHandler], method: Any) -> Export | None:
    """The export ``method`` of ``handler_cls``, or None if the name reaches none.

    Looked up once per class and method, then remembered: names a handler really
    exports are few, while the unknown names a caller may send are not remembered.
    Handler classes are expected to define their ``export_``/``types_``/``auth_``
    attributes in the class body or in ``initializeHandler``, before requests run.
    """
    key = (handler_cls, method)
    found = _exports.get(key)
    if found is None:
        if not _is_public_name(method) or \
                not callable(getattr(handler_cls, "export_" + method, None)):
            return None
        found = _exports[key] = Export(
            "export_" + method, getattr(handler_cls, "types_" + method, None),
            getattr(handler_cls, "auth_" + method, None),
            getattr(handler_cls, "atMostOnce_" + method, False) is True)
    return found


def check_types(method: str, types: Sequence[Any], args: Sequence[Any]) -> DReturnType:
    """Check ``args`` against a ``types_<method>`` list, with DIRAC's error messages.

    As DIRAC does: the types of the arguments given first, then their number.
    """
    for index, spec in enumerate(types[: len(args)]):
        if spec is None:
            continue
        allowed = tuple(spec) if isinstance(spec, (list, tuple)) else (spec,)
        try:
            ok = isinstance(args[index], allowed)
        except TypeError:  # a malformed types_ entry: the handler's bug, reported as such
            return S_ERROR(f"Invalid types_{method} entry {index}: {spec!r}")
        if not ok:
            return S_ERROR(f"Type mismatch in parameter {index} (starting with param 0) "
                           f"Received {type(args[index])}, expected {spec}")
    if len(args) < len(types):
        return S_ERROR(f"Function {method} expects at least {len(types)} arguments")
    return S_OK()


def authorize(rules: Sequence[str], credentials: dict[str, Any]) -> bool:
    """Whether a caller with ``credentials`` passes an ``auth_`` rule list (one match suffices).

    ``all``/``any``: anyone; ``authenticated``: any known user; ``group:<g>``: members
    of ``g``; anything else is a property name the caller's group must have.
    """
    username = credentials.get("username", "anonymous")
    properties = set(credentials.get("properties") or ())
    for rule in rules:
        rule = str(rule).strip()
        low = rule.lower()
        if low in ("all", "any"):
            return True
        if low == "authenticated" and username != "anonymous":
            return True
        if low.startswith("group:") and credentials.get("group") == rule[6:]:
            return True
        if rule in properties:
            return True
    return False


def dispatch(handler_cls: type[RequestHandler], request: Request,
             auth_rules: Sequence[str] | None = None) -> DReturnType:
    """Run ``request`` on a fresh ``handler_cls`` object; always returns S_OK/S_ERROR.

    ``auth_rules`` overrides the handler's ``auth_<method>`` (configuration does that);
    with neither, the method is open to all.
    """
    method = request.method
    export = find_export(handler_cls, method)
    if export is None:
        return S_ERROR(f"Unknown method {method}")

    # As DIRAC: who may call it first, so an unauthorized caller learns nothing more.
    rules = auth_rules if auth_rules is not None else export.auth
    if rules is not None and not authorize(rules, request.credentials):
        return S_ERROR(ENOAUTH, "Unauthorized query")

    if export.types is not None:
        checked = check_types(method, export.types, request.args)
        if not checked["OK"]:
            return checked

    try:
        handler = handler_cls(request)
        started = handler.initializeRequest()
        if isinstance(started, dict) and started.get("OK") is False:
            return started
        result = getattr(handler, export.attribute)(*request.args)
    except BaseException as exc:
        # SystemExit, KeyboardInterrupt or GeneratorExit raised by handler code end
        # this call, not the worker: left to propagate, they would leave the request
        # unanswered and unacknowledged, holding a prefetch slot for good.
        log.exception("%s.%s raised", request.service, method)
        detail = str(exc) if isinstance(exc, Exception) else f"{type(exc).__name__}({exc})"
        return S_ERROR(f"Server error while serving {method}: {detail}")
    if not isReturnStructure(result):
        log.error("%s.%s returned %s, not S_OK/S_ERROR", request.service, method,
                  type(result).__name__)
        return S_ERROR(f"Method {method} for action RPC does not return a S_OK/S_ERROR!")
    if "ExecInfo" in result:  # convertToReturnValue's exception: local, like CallStack
        result = {k: v for k, v in result.items() if k != "ExecInfo"}
    return dict(result)
