"""``dirac-wms-job-kill JOBID...``: kill jobs (one JobManager call for all)."""

from __future__ import annotations

from DIRAC.Interfaces.scripts.common import job_control_main, run_command

PROG = "dirac-wms-job-kill"

DESCRIPTION = """\
Kill jobs: their status becomes Killed (minor status 'Marked for termination').
Only your own jobs, unless your group has the JobAdministrator property.

Example:
  dirac-wms-job-kill 12 13 14
  dirac-wms-job-kill --file ids.txt
"""


@run_command
def main() -> int:
    return job_control_main(PROG, "killJob", "Killed", DESCRIPTION)


if __name__ == "__main__":
    main()
