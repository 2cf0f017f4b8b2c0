"""``dirac-wms-job-delete JOBID...``: delete jobs (one JobManager call for all)."""

from __future__ import annotations

from DIRAC.Interfaces.scripts.common import job_control_main, run_command

PROG = "dirac-wms-job-delete"

DESCRIPTION = """\
Delete jobs: their status becomes Deleted (a job that may not go there directly,
e.g. a running one, is Killed first).
Only your own jobs, unless your group has the JobAdministrator property.

Example:
  dirac-wms-job-delete 12 13 14
  dirac-wms-job-delete --file ids.txt
"""


@run_command
def main() -> int:
    return job_control_main(PROG, "deleteJob", "Deleted", DESCRIPTION)


if __name__ == "__main__":
    main()
