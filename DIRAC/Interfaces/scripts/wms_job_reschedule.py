"""``dirac-wms-job-reschedule JOBID...``: reschedule jobs (one JobManager call for all)."""

from __future__ import annotations

from DIRAC.Interfaces.scripts.common import job_control_main, run_command

PROG = "dirac-wms-job-reschedule"

DESCRIPTION = """\
Reschedule jobs: send them back to Received to run again. A job in a state that
does not allow it (e.g. Received) is refused; beyond the maximum number of
reschedulings the job is Failed instead.
Only your own jobs, unless your group has the JobAdministrator property.

Example:
  dirac-wms-job-reschedule 12 13 14
  dirac-wms-job-reschedule --file ids.txt
"""


@run_command
def main() -> int:
    return job_control_main(PROG, "rescheduleJob", "Rescheduled", DESCRIPTION)


if __name__ == "__main__":
    main()
