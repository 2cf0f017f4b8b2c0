"""DIRAC's ``RequestHandler`` base class, served over RabbitMQ (see workers/handler.py)."""

from diracmq.workers.handler import Request, RequestHandler

__all__ = ["Request", "RequestHandler"]
