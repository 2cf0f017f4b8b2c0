"""``dirac-wms-select-jobs``: the IDs of the jobs matching conditions."""

from __future__ import annotations

import argparse
import datetime as dt

from DIRAC.Interfaces.scripts.common import (
    EXIT_OK,
    make_parser,
    print_json,
    run_command,
    setup,
    value_or_fail,
)

PROG = "dirac-wms-select-jobs"

DEFAULT_MAXIMUM = 100

DESCRIPTION = f"""\
Select jobs by status, owner, site, job group and date, and print their IDs as DIRAC
does:

  ==> Selected 3 jobs with conditions: Date = 2024-05-01, Status = Waiting
  12,13,14

Every condition may list several values separated by commas (any of them matches).
Only jobs updated on or after --Date (default: today, UTC) are selected, as in DIRAC.
At most --Maximum IDs are printed ({DEFAULT_MAXIMUM}; 0 means all): the lowest, with
'(first N shown)' in the heading.

Example:
  dirac-wms-select-jobs --Status Waiting,Running --Owner alice
  dirac-wms-select-jobs --JobGroup mc-2024 --Date 2024-01-01 --Maximum 0 --json
"""

EPILOG = ("--json prints {\"JobIDs\": [...], \"Total\": N, \"Conditions\": {...}, \"Date\": "
          "\"YYYY-MM-DD\"}.\n"
          "Exit status: 0 (also when no job matches), 1 the selection failed (or no answer), "
          "2 usage error.")

#: option -> job attribute
CONDITIONS = {
    "Status": "Status",
    "MinorStatus": "MinorStatus",
    "ApplicationStatus": "ApplicationStatus",
    "Site": "Site",
    "Owner": "Owner",
    "OwnerGroup": "OwnerGroup",
    "JobGroup": "JobGroup",
}


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date in YYYY-MM-DD format: {text!r}") from None


def _maximum(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 (all) or more: {text!r}")
    return value


def _values(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


@run_command
def main() -> int:
    from DIRAC.WorkloadManagementSystem.Client.JobStatus import JOB_STATES, normalizeStatus

    parser = make_parser(PROG, DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--Status", metavar="STATUS",
                        help=f"primary status ({', '.join(JOB_STATES)})")
    parser.add_argument("--MinorStatus", metavar="TEXT", help="secondary status")
    parser.add_argument("--ApplicationStatus", metavar="TEXT", help="application status")
    parser.add_argument("--Site", metavar="SITE", help="execution site")
    parser.add_argument("--Owner", metavar="USER", help="owner (DIRAC user name)")
    parser.add_argument("--OwnerGroup", metavar="GROUP", help="owner's DIRAC group")
    parser.add_argument("--JobGroup", metavar="GROUP", help="job group")
    parser.add_argument("--Date", type=_date, metavar="YYYY-MM-DD",
                        help="jobs updated on or after this day (default: today, UTC)")
    parser.add_argument("--Maximum", type=_maximum, default=DEFAULT_MAXIMUM, metavar="N",
                        help=f"print at most N job IDs (default {DEFAULT_MAXIMUM}; 0: all)")
    args = parser.parse_args()

    conditions: dict[str, list[str]] = {}
    for option, attribute in CONDITIONS.items():
        text = getattr(args, option)
        if text is None:
            continue
        values = _values(text)
        if not values:
            parser.error(f"--{option} needs a value")
        if option == "Status":
            canonical = [normalizeStatus(v) for v in values]
            unknown = [v for v, c in zip(values, canonical, strict=True) if c is None]
            if unknown:
                parser.error(f"unknown job status {', '.join(unknown)}; "
                             f"known: {', '.join(JOB_STATES)}")
            values = [c for c in canonical if c]
        conditions[attribute] = values
    date = args.Date or dt.datetime.now(dt.UTC).date()
    setup(args)

    from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import JobMonitoringClient

    selection = {k: v[0] if len(v) == 1 else v for k, v in conditions.items()}
    jobs = value_or_fail(JobMonitoringClient().getJobs(selection, date.isoformat()),
                         "cannot select jobs")
    jobs = [int(j) for j in jobs or []]
    shown = jobs if args.Maximum == 0 else jobs[:args.Maximum]
    if args.json:
        print_json({"JobIDs": shown, "Total": len(jobs), "Conditions": selection,
                    "Date": date.isoformat()})
        return EXIT_OK
    described = ", ".join([f"Date = {date.isoformat()}",
                           *(f"{k} = {', '.join(v)}" for k, v in conditions.items())])
    constrained = f" (first {len(shown)} shown) " if len(shown) < len(jobs) else " "
    print(f"==> Selected {len(jobs)} jobs{constrained}with conditions: {described}")
    if shown:
        print(",".join(map(str, shown)))
    return EXIT_OK


if __name__ == "__main__":
    main()
