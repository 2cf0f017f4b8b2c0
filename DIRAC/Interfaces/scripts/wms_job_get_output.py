"""``dirac-wms-job-get-output JOBID... [--dir D]``: download jobs' output sandboxes."""

from __future__ import annotations

from DIRAC.Interfaces.scripts.common import run_command, sandbox_main

PROG = "dirac-wms-job-get-output"

DESCRIPTION = """\
Download the output sandbox of jobs (stdout, stderr and the files their JDL's
OutputSandbox names) into DIR/<JobID>/ (DIR: the current directory by default).
Prints 'Job output sandbox retrieved in DIR/<JobID>/' per job.

Example:
  dirac-wms-job-get-output 12 13 --dir results
"""


@run_command
def main() -> int:
    return sandbox_main(PROG, DESCRIPTION, "Output")


if __name__ == "__main__":
    main()
