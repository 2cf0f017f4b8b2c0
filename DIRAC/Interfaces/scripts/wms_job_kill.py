"""Kill jobs: their status becomes Killed (minor status 'Marked for termination').
Only your own jobs, unless your group has the JobAdministrator property.

At least one job ID is needed, as arguments (several, separated by blanks or commas) or
in files given with --file.  Prints 'Killed jobs 1,2,3' for the jobs done and one
'ERROR: ...' line on stderr per job that was not (unknown, not yours, or not in a state
that allows it).  --json prints {"Successful": [...], "Failed": {"<JobID>": "why"}}.
Exit status: 0 all done, 1 any job failed (or no answer), 2 usage error.

Usage:
  dirac-wms-job-kill [options] ... [JobID ...]

Example:
  $ dirac-wms-job-kill 12 13 14
  $ dirac-wms-job-kill --file ids.txt
"""

from __future__ import annotations

from DIRAC.Core.Base.Script import Script
from DIRAC.Interfaces.scripts.common import (
    Options,
    job_control,
    job_id_files,
    job_ids_from,
    run_command,
)


@Script()
@run_command
def main() -> int:
    options = Options()
    files = job_id_files()
    Script.registerArgument(["JobID: DIRAC job ID (or several: 1,2,3)"], mandatory=False)
    _, arguments = Script.parseCommandLine()
    return job_control(options, job_ids_from(arguments, files), "killJob", "Killed")


if __name__ == "__main__":
    main()
