"""Print the status of jobs, one line per job, as DIRAC does:
  JobID=1 Status=Waiting; MinorStatus=Pilot Agent Submission; Site=ANY;

At least one job ID is needed: as arguments (several, separated by blanks or commas),
in files given with --file, or the jobs of --JobGroup.
--json prints {"<JobID>": {"Status": ..., "MinorStatus": ..., "Site": ...}}.
Exit status: 0 all jobs found, 1 any job unknown (or no answer), 2 usage error.

Usage:
  dirac-wms-job-status [options] ... [JobID ...]

Example:
  $ dirac-wms-job-status 1 2 3
  $ dirac-wms-job-status --file ids.txt --json
  $ dirac-wms-job-status --JobGroup my-group
"""

from __future__ import annotations

from DIRAC.Core.Base.Script import Script
from DIRAC.Interfaces.scripts.common import (
    EXIT_FAILED,
    EXIT_OK,
    Options,
    error,
    format_value,
    job_id_command_line,
    job_ids_from,
    print_json,
    run_command,
    setup,
    value_or_fail,
)

FIELDS = ("Status", "MinorStatus", "Site")


@Script()
@run_command
def main() -> int:
    options = Options()
    Script.registerSwitch("g:", "JobGroup=", "also the jobs of this job group")
    switches, arguments, files = job_id_command_line()
    group = next((value for name, value in reversed(switches)
                  if name in ("g", "JobGroup")), None)
    job_ids = job_ids_from(arguments, files, required=not group)
    setup(options)

    from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import JobMonitoringClient

    monitor = JobMonitoringClient()
    failed = False
    if group:
        group_ids = value_or_fail(monitor.getJobs({"JobGroup": group}),
                                  f"cannot select the jobs of group {group}")
        if not group_ids:
            error(f"No jobs in job group {group}")
            failed = True
        job_ids = list(dict.fromkeys([*job_ids, *group_ids]))
    if not job_ids:
        return EXIT_FAILED

    summary = value_or_fail(monitor.getJobsSummary(job_ids), "cannot get the job status")
    found = {job_id: {f: summary[job_id].get(f) for f in FIELDS}
             for job_id in job_ids if job_id in summary}
    if options.json:
        print_json(found)
    else:
        for job_id, status in found.items():
            print(f"JobID={job_id} " + " ".join(f"{k}={format_value(v)};"
                                                for k, v in status.items()))
    for job_id in job_ids:
        if job_id not in found:
            error(f"Job {job_id} not found")
            failed = True
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    main()
