from __future__ import annotations

from DIRAC.Core.Base.Script import Script
from DIRAC.Interfaces.scripts.common import job_control_help, job_control_main_script, run_command

SUMMARY = """\
Delete jobs: their status becomes Deleted (a job that may not go there directly,
e.g. a running one, is Killed first).
Only your own jobs, unless your group has the JobAdministrator property."""

# The help shown by -h (Script reads the module's docstring).
__doc__ = job_control_help("dirac-wms-job-delete", SUMMARY, "Deleted")


@Script()
@run_command
def main() -> int:
    return job_control_main_script("deleteJob", "Deleted")


if __name__ == "__main__":
    main()
