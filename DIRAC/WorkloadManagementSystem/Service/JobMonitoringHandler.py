"""``WorkloadManagement/JobMonitoring``: read-only queries about jobs (placeholder store)."""

from __future__ import annotations

from typing import Any, ClassVar

from broker.returnvalues import S_OK, DReturnType
from workers.handler import RequestHandler


class JobMonitoringHandler(RequestHandler):
    """Answers queries about jobs."""

    jobs: ClassVar[dict[int, dict[str, Any]]] = {}

    types_getJobs: ClassVar[list] = []

    def export_getJobs(self, attrDict: dict | None = None, cutDate: Any = None) -> DReturnType:
        """IDs of the jobs matching ``attrDict`` (scalar: equal; list: any of)."""
        conditions = {str(k).lower(): v for k, v in (attrDict or {}).items()}
        ids = []
        for job_id, job in self.jobs.items():
            row = {k.lower(): v for k, v in job.items()}
            if all(row.get(k) in (v if isinstance(v, list) else [v])
                   for k, v in conditions.items()):
                ids.append(job_id)
        return S_OK(ids)
