"""Print the logging records of jobs (every status change), oldest first, as DIRAC's
table:

  Status    MinorStatus   ApplicationStatus  DateTime             Source
  ======================================================================
  Received  Job accepted  Unknown            2024-05-01 12:00:00  JobManager

DateTime is UTC. With several jobs, each table follows a 'JobID = N' line.
At least one job ID is needed, as arguments (several, separated by blanks or commas) or
in files given with --file.  --json prints {"<JobID>": [{"Status", "MinorStatus",
"ApplicationStatus", "DateTime" (ISO 8601 with its offset), "Source"}, ...]}.
Exit status: 0 records for every job, 1 any job unknown (or no answer), 2 usage error.

Usage:
  dirac-wms-job-logging-info [options] ... [JobID ...]

Example:
  $ dirac-wms-job-logging-info 12
  $ dirac-wms-job-logging-info 12 --json
"""

from __future__ import annotations

from typing import Any

from DIRAC.Core.Base.Script import Script
from DIRAC.Interfaces.scripts.common import (
    EXIT_FAILED,
    EXIT_OK,
    Options,
    fetch_per_job,
    job_id_command_line,
    job_ids_from,
    print_json,
    print_table,
    run_command,
    setup,
)

HEADERS = ("Status", "MinorStatus", "ApplicationStatus", "DateTime", "Source")


def _no_records(monitor: Any, job_id: int) -> str:
    """Why a job has no logging records: it does not exist, or (rarely) none were written."""
    status = monitor.getJobAttribute(job_id, "Status")
    if status["OK"] and status["Value"] is not None:
        return f"No logging information for job {job_id}"
    return f"Job {job_id} not found"


@Script()
@run_command
def main() -> int:
    options = Options()
    _, arguments, files = job_id_command_line()
    job_ids = job_ids_from(arguments, files)
    setup(options)

    from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import JobMonitoringClient

    monitor = JobMonitoringClient()
    found, failed = fetch_per_job(job_ids, monitor.getJobLoggingInfo,
                                  lambda job_id: _no_records(monitor, job_id))
    records = {job_id: [tuple(r) for r in rows] for job_id, rows in found.items()}
    if options.json:
        print_json({job_id: [dict(zip(HEADERS, r, strict=True)) for r in rows]
                    for job_id, rows in records.items()})
    else:
        for index, (job_id, rows) in enumerate(records.items()):
            if len(job_ids) > 1:
                print(("\n" if index else "") + f"JobID = {job_id}")
            print_table(HEADERS, rows)
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    main()
