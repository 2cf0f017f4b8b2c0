"""``dirac-wms-job-attributes JOBID...``: every attribute of jobs (owner, times, states...)."""

from __future__ import annotations

import pprint

from DIRAC.Interfaces.scripts.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_job_id_arguments,
    collect_job_ids,
    fetch_per_job,
    format_value,
    make_parser,
    print_json,
    run_command,
    setup,
)

PROG = "dirac-wms-job-attributes"

DESCRIPTION = """\
Print the attributes of jobs (JobID, JobName, Owner, OwnerGroup, Site, Status,
MinorStatus, ApplicationStatus, SubmissionTime, LastUpdateTime, ...) as the dict
DIRAC prints, values as text (times in UTC, to the second):

  {'ApplicationStatus': 'Unknown',
   'JobID': '12',
   ...}

Example:
  dirac-wms-job-attributes 12
  dirac-wms-job-attributes 12 --json
"""

EPILOG = ("--json prints {\"<JobID>\": {attribute: value}} with native values (numbers, "
          "null, ISO 8601 times).\n"
          "Exit status: 0 every job found, 1 any job unknown (or no answer), 2 usage error.")


@run_command
def main() -> int:
    parser = make_parser(PROG, DESCRIPTION, epilog=EPILOG)
    add_job_id_arguments(parser)
    args = parser.parse_args()
    job_ids = collect_job_ids(parser, args)
    setup(args)

    from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import JobMonitoringClient

    found, failed = fetch_per_job(job_ids, JobMonitoringClient().getJobAttributes,
                                  lambda job_id: f"Job {job_id} not found")
    if args.json:
        print_json(found)
    else:
        for attributes in found.values():
            print(pprint.pformat({k: format_value(v, 'None') for k, v in attributes.items()}))
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    main()
