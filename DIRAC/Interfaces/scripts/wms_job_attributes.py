"""Print the attributes of jobs (JobID, JobName, Owner, OwnerGroup, Site, Status,
MinorStatus, ApplicationStatus, SubmissionTime, LastUpdateTime, ...) as the dict
DIRAC prints, values as text (times in UTC, to the second):

  {'ApplicationStatus': 'Unknown',
   'JobID': '12',
   ...}

At least one job ID is needed, as arguments (several, separated by blanks or commas) or
in files given with --file.  --json prints {"<JobID>": {attribute: value}} with native
values (numbers, null, ISO 8601 times with their offset).
Exit status: 0 every job found, 1 any job unknown (or no answer), 2 usage error.

Usage:
  dirac-wms-job-attributes [options] ... [JobID ...]

Example:
  $ dirac-wms-job-attributes 12
  $ dirac-wms-job-attributes 12 --json
"""

from __future__ import annotations

import pprint

from DIRAC.Core.Base.Script import Script
from DIRAC.Interfaces.scripts.common import (
    EXIT_FAILED,
    EXIT_OK,
    Options,
    fetch_per_job,
    format_value,
    job_id_command_line,
    job_ids_from,
    print_json,
    run_command,
    setup,
)


@Script()
@run_command
def main() -> int:
    options = Options()
    _, arguments, files = job_id_command_line()
    job_ids = job_ids_from(arguments, files)
    setup(options)

    from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import JobMonitoringClient

    found, failed = fetch_per_job(job_ids, JobMonitoringClient().getJobAttributes,
                                  lambda job_id: f"Job {job_id} not found")
    if options.json:
        print_json(found)
    else:
        for attributes in found.values():
            print(pprint.pformat({k: format_value(v, 'None') for k, v in attributes.items()}))
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    main()
