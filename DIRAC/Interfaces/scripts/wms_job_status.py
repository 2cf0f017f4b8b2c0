"""``dirac-wms-job-status JOBID...``: status, minor status and site of jobs."""

from __future__ import annotations

from DIRAC.Interfaces.scripts.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_job_id_arguments,
    collect_job_ids,
    error,
    format_value,
    make_parser,
    print_json,
    run_command,
    setup,
    value_or_fail,
)

PROG = "dirac-wms-job-status"

DESCRIPTION = """\
Print the status of jobs, one line per job, as DIRAC does:
  JobID=1 Status=Waiting; MinorStatus=Pilot Agent Submission; Site=ANY;

Example:
  dirac-wms-job-status 1 2 3
  dirac-wms-job-status --file ids.txt --json
  dirac-wms-job-status --JobGroup my-group
"""

EPILOG = ("--json prints {\"<JobID>\": {\"Status\": ..., \"MinorStatus\": ..., \"Site\": ...}}.\n"
          "Exit status: 0 all jobs found, 1 any job unknown (or no answer), 2 usage error.")

FIELDS = ("Status", "MinorStatus", "Site")


@run_command
def main() -> int:
    parser = make_parser(PROG, DESCRIPTION, epilog=EPILOG)
    add_job_id_arguments(parser)
    parser.add_argument("-g", "--JobGroup", metavar="GROUP",
                        help="also the jobs of this job group")
    args = parser.parse_args()
    job_ids = collect_job_ids(parser, args, required=not args.JobGroup)
    setup(args)

    from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import JobMonitoringClient

    monitor = JobMonitoringClient()
    failed = False
    if args.JobGroup:
        group_ids = value_or_fail(monitor.getJobs({"JobGroup": args.JobGroup}),
                                  f"cannot select the jobs of group {args.JobGroup}")
        if not group_ids:
            error(f"No jobs in job group {args.JobGroup}")
            failed = True
        job_ids = list(dict.fromkeys([*job_ids, *group_ids]))
    if not job_ids:
        return EXIT_FAILED

    summary = value_or_fail(monitor.getJobsSummary(job_ids), "cannot get the job status")
    found = {job_id: {f: summary[job_id].get(f) for f in FIELDS}
             for job_id in job_ids if job_id in summary}
    if args.json:
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
