"""``dirac-wms-job-peek JOBID...``: the standard output of running jobs, so far."""

from __future__ import annotations

from DIRAC.Interfaces.scripts.common import (
    EXIT_FAILED,
    EXIT_OK,
    add_job_id_arguments,
    collect_job_ids,
    fetch_per_job,
    make_parser,
    print_json,
    run_command,
    setup,
)

PROG = "dirac-wms-job-peek"

DESCRIPTION = """\
Print the end (up to 16 KiB) of the standard output of jobs: what their job agent sent
with its last heartbeat while the job runs, the final output once it ended. A job that
has not started yet has none ('ERROR: job N: no output yet').

Example:
  dirac-wms-job-peek 12
"""

EPILOG = "Exit status: 0 output printed for every job, 1 any job failed, 2 usage error."


@run_command
def main() -> int:
    parser = make_parser(PROG, DESCRIPTION, epilog=EPILOG)
    add_job_id_arguments(parser)
    args = parser.parse_args()
    job_ids = collect_job_ids(parser, args)
    setup(args)

    from DIRAC.Interfaces.API.Dirac import Dirac

    dirac = Dirac()
    found, failed = fetch_per_job(job_ids, dirac.peekJob,
                                  lambda job_id: f"job {job_id}: no output yet")
    if args.json:
        print_json(found)
    else:
        for job_id, text in found.items():
            if len(job_ids) > 1:
                print(f"==> job {job_id} <==")
            print(text, end="" if text.endswith("\n") else "\n")
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    main()
