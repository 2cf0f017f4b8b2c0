"""The calling side: :class:`Client` and the per-process transport behind it."""

from diracmq.client.base import Client, RemoteMethod
from diracmq.client.transport import RPCTransport, get_transport

__all__ = ["Client", "RemoteMethod", "RPCTransport", "get_transport"]
