from __future__ import annotations

from DIRAC.Core.Base.Script import Script
from DIRAC.Interfaces.scripts.common import job_control_help, job_control_main_script, run_command

SUMMARY = """\
Reschedule jobs: send them back to Received to run again. A job in a state that
does not allow it (e.g. Received) is refused; beyond the maximum number of
reschedulings the job is Failed instead.
Only your own jobs, unless your group has the JobAdministrator property."""

# The help shown by -h (Script reads the module's docstring).
__doc__ = job_control_help("dirac-wms-job-reschedule", SUMMARY, "Rescheduled")


@Script()
@run_command
def main() -> int:
    return job_control_main_script("rescheduleJob", "Rescheduled")


if __name__ == "__main__":
    main()
