"""The serving side: the worker process, handler dispatch and the ``dirac-worker`` command."""

from diracmq.workers.handler import Request, RequestHandler, dispatch

__all__ = ["Request", "RequestHandler", "dispatch"]
