"""``dirac-wms-job-logging-info JOBID...``: the status history of jobs, as a table."""

from __future__ import annotations

from typing import Any

from DIRAC.Interfaces.scripts.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_job_id_arguments,
    collect_job_ids,
    fetch_per_job,
    make_parser,
    print_json,
    print_table,
    run_command,
    setup,
)

PROG = "dirac-wms-job-logging-info"

DESCRIPTION = """\
Print the logging records of jobs (every status change), oldest first, as DIRAC's
table:

  Status    MinorStatus   ApplicationStatus  DateTime             Source
  ======================================================================
  Received  Job accepted  Unknown            2024-05-01 12:00:00  JobManager

DateTime is UTC. With several jobs, each table follows a 'JobID = N' line.

Example:
  dirac-wms-job-logging-info 12
  dirac-wms-job-logging-info 12 --json
"""

EPILOG = ("--json prints {\"<JobID>\": [{\"Status\", \"MinorStatus\", \"ApplicationStatus\", "
          "\"DateTime\" (ISO 8601, UTC), \"Source\"}, ...]}.\n"
          "Exit status: 0 records for every job, 1 any job unknown (or no answer), "
          "2 usage error.")

HEADERS = ("Status", "MinorStatus", "ApplicationStatus", "DateTime", "Source")


def _no_records(monitor: Any, job_id: int) -> str:
    """Why a job has no logging records: it does not exist, or (rarely) none were written."""
    status = monitor.getJobAttribute(job_id, "Status")
    if status["OK"] and status["Value"] is not None:
        return f"No logging information for job {job_id}"
    return f"Job {job_id} not found"


@run_command
def main() -> int:
    parser = make_parser(PROG, DESCRIPTION, epilog=EPILOG)
    add_job_id_arguments(parser)
    args = parser.parse_args()
    job_ids = collect_job_ids(parser, args)
    setup(args)

    from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import JobMonitoringClient

    monitor = JobMonitoringClient()
    found, failed = fetch_per_job(job_ids, monitor.getJobLoggingInfo,
                                  lambda job_id: _no_records(monitor, job_id))
    records = {job_id: [tuple(r) for r in rows] for job_id, rows in found.items()}
    if args.json:
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
