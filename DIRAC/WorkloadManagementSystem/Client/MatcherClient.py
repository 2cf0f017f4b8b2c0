"""Client of ``WorkloadManagement/Matcher``: job agents ask it for jobs."""

from __future__ import annotations

from typing import Any

from diracmq.broker.returnvalues import DReturnType
from diracmq.client.base import Client

__all__ = ["MatcherClient"]


class MatcherClient(Client):
    """``requestJob(resourceDescription)``, ``requestJobs(resourceDescription, count)``,
    ``getActiveTaskQueues()``,
    ``getMatchingTaskQueues(resourceDescription)`` (callers with ``GenericPilot``)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.setServer("WorkloadManagement/Matcher")

    def requestJob(self, resourceDescription: dict, timeout: float | None = None
                   ) -> DReturnType:
        """A job for this resource, or ``S_ERROR(EWMSNOMATCH)`` when there is none."""
        return self.executeRPC("requestJob", resourceDescription, timeout=timeout)

    def requestJobs(self, resourceDescription: dict, count: int,
                    timeout: float | None = None) -> DReturnType:
        """Up to ``count`` jobs for this resource in one call: ``S_OK([match, ...])``
        (empty: none to run)."""
        return self.executeRPC("requestJobs", resourceDescription, count, timeout=timeout)
