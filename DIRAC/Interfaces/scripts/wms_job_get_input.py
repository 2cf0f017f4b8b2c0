"""``dirac-wms-job-get-input JOBID... [--dir D]``: download jobs' input sandboxes."""

from __future__ import annotations

from DIRAC.Interfaces.scripts.common import run_command, sandbox_main

PROG = "dirac-wms-job-get-input"

DESCRIPTION = """\
Download the input sandbox of jobs (the local files uploaded when they were submitted)
into DIR/InputSandbox<JobID>/ (DIR: the current directory by default).
Prints 'Job input sandbox retrieved in DIR/InputSandbox<JobID>/' per job.

Example:
  dirac-wms-job-get-input 12 --dir inputs
"""


@run_command
def main() -> int:
    return sandbox_main(PROG, DESCRIPTION, "Input")


if __name__ == "__main__":
    main()
