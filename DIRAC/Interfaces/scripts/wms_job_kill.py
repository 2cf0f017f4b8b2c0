from __future__ import annotations

from DIRAC.Core.Base.Script import Script
from DIRAC.Interfaces.scripts.common import job_control_help, job_control_main_script, run_command

SUMMARY = """\
Kill jobs: their status becomes Killed (minor status 'Marked for termination').
Only your own jobs, unless your group has the JobAdministrator property."""

# The help shown by -h (Script reads the module's docstring).
__doc__ = job_control_help("dirac-wms-job-kill", SUMMARY, "Killed")


@Script()
@run_command
def main() -> int:
    return job_control_main_script("killJob", "Killed")


if __name__ == "__main__":
    main()
