"""The ``Client`` class: any attribute is a remote procedure.

``Client(url="WorkloadManagement/JobMonitoring").getJobs({"owner": "alice"})``
sends ``getJobs`` with its positional arguments to the JobMonitoring service and
returns the handler's ``S_OK``/``S_ERROR`` dict.  Subclasses name their service
with ``self.setServer("System/Service")`` in ``__init__`` and may define explicit
methods (with defaults and docstrings) that call :meth:`Client.executeRPC`.
"""

from __future__ import annotations

import errno
import os
import re
from typing import Any

from diracmq.broker.config import Settings, default_settings
from diracmq.broker.returnvalues import S_ERROR, DReturnType
from diracmq.client.transport import RPCFuture, RPCTransport, get_transport

__all__ = ["Client", "RPCFuture", "RemoteMethod"]

_DIPS_URL = re.compile(r"^[a-z]+://[^/]*/(?P<service>[^/]+/[^/]+)/?$")


def _service_from_url(url: str) -> str:
    """``System/Service`` from ``System/Service`` or DIRAC's ``dips://host:port/System/Service``."""
    match = _DIPS_URL.match(url)
    return match.group("service") if match else url


class RemoteMethod:
    """A bound remote procedure: calling it performs the RPC."""

    __slots__ = ("_client", "_name")

    def __init__(self, client: Client, name: str) -> None:
        self._client = client
        self._name = name

    def __call__(self, *args: Any, timeout: float | None = None, **kwargs: Any) -> DReturnType:
        """Call the remote ``export_<name>`` with ``args``; ``timeout`` overrides the client's."""
        if kwargs:
            raise TypeError(
                f"{self._name}(): remote methods take positional arguments only "
                f"(and the keyword 'timeout'), got {sorted(kwargs)}")
        return self._client.executeRPC(self._name, *args, timeout=timeout)

    def __repr__(self) -> str:
        return f"<RemoteMethod {self._client.serverURL}.{self._name}>"


class Client:
    """Base class of every DIRAC client: a proxy for one service's exported methods.

    ``url`` is ``"System/Service"``; ``timeout`` (seconds) is the default for every
    call of this client, else the configured ``rpc_timeout`` (600 s, as DIRAC).
    ``settings`` picks another broker than the configured one (tests use it).
    """

    def __init__(self, url: str | None = None, timeout: float | None = None, *,
                 settings: Settings | None = None, **_ignored: Any) -> None:
        # DIRAC clients accept extra keywords (useCertificates, delegatedDN, ...);
        # they have no meaning here, so they are accepted and ignored.
        self.serverURL: str | None = _service_from_url(url) if url else None
        self.timeout = timeout
        self._settings = settings
        self._transport: RPCTransport | None = None  # cached: get_transport costs per call

    def setServer(self, url: str) -> None:
        """Set the service this client talks to (``System/Service``)."""
        self.serverURL = _service_from_url(url)

    def getServer(self) -> str | None:
        """The service this client talks to."""
        return self.serverURL

    def setTimeout(self, timeout: float) -> None:
        """Set the default timeout of this client's calls, in seconds."""
        self.timeout = timeout

    def executeRPC(self, method: str, *args: Any, timeout: float | None = None) -> DReturnType:
        """Run ``export_<method>(*args)`` on this client's service; return its S_OK/S_ERROR."""
        if not self.serverURL:
            return self._no_server()
        return self._get_transport().call(self.serverURL, method, args,
                                          timeout if timeout is not None else self.timeout)

    def submit(self, method: str, *args: Any, timeout: float | None = None) -> RPCFuture:
        """Send ``export_<method>(*args)`` now; return its future at once (not in DIRAC).

        For many calls in flight from one thread, without a thread per call::

            futures = [client.submit("getJobs", {"Site": site}) for site in sites]
            results = [f.result() for f in futures]   # each an S_OK/S_ERROR

        ``timeout`` is the call's deadline, as for a blocking call.  (A remote method
        that is itself named ``submit`` is reached with ``executeRPC("submit", ...)``.)
        """
        if not self.serverURL:
            return RPCFuture(self._get_transport(), None, self._no_server())
        return self._get_transport().submit(self.serverURL, method, args,
                                            timeout if timeout is not None else self.timeout)

    def _no_server(self) -> DReturnType:
        return S_ERROR(errno.EINVAL, f"{type(self).__name__}: no service set "
                                     f"(pass url= or call setServer())")

    def _get_transport(self) -> RPCTransport:
        settings = self._settings or default_settings()
        transport = self._transport
        if (transport is None or transport.settings is not settings or transport.closed
                or transport.pid != os.getpid()):
            transport = self._transport = get_transport(settings)
        return transport

    def __getattr__(self, name: str) -> RemoteMethod:
        if name.startswith("_"):
            raise AttributeError(name)
        return RemoteMethod(self, name)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.serverURL}>"
