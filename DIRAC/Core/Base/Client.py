"""DIRAC's ``Client`` base class, served over RabbitMQ (see client/base.py)."""

from diracmq.client.base import Client, RemoteMethod

__all__ = ["Client", "RemoteMethod"]
