"""Client of ``WorkloadManagement/JobMonitoring``: read-only queries about jobs."""

from __future__ import annotations

from typing import Any

from client.base import Client

__all__ = ["JobMonitoringClient"]


class JobMonitoringClient(Client):
    """Query jobs, their attributes, states and logging records."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.setServer("WorkloadManagement/JobMonitoring")
