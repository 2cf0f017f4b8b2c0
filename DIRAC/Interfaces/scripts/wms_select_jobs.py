"""Select jobs by status, owner, site, job group and date, and print their IDs as DIRAC
does:

  ==> Selected 3 jobs with conditions: Date = 2024-05-01, Status = Waiting
  12,13,14

Every condition may list several values separated by commas (any of them matches).
Only jobs updated on or after --Date (default: today, UTC) are selected, as in DIRAC.
At most --Maximum IDs are printed (100; 0 means all): the lowest, with
'(first N shown)' in the heading.
--json prints {"JobIDs": [...], "Total": N, "Conditions": {...}, "Date": "YYYY-MM-DD"}.
Exit status: 0 (also when no job matches), 1 the selection failed (or no answer),
2 usage error.

Usage:
  dirac-wms-select-jobs [options] ...

Example:
  $ dirac-wms-select-jobs --Status Waiting,Running --Owner alice
  $ dirac-wms-select-jobs --JobGroup mc-2024 --Date 2024-01-01 --Maximum 0 --json
"""

from __future__ import annotations

import datetime as dt

from DIRAC.Core.Base.Script import Script
from DIRAC.Interfaces.scripts.common import (
    EXIT_OK,
    Options,
    print_json,
    run_command,
    setup,
    usage_error,
    value_or_fail,
)

DEFAULT_MAXIMUM = 100

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
        usage_error(f"--Date: not a date in YYYY-MM-DD format: {text!r}")


def _maximum(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        usage_error(f"--Maximum: not a number: {text!r}")
    if value < 0:
        usage_error(f"--Maximum: must be 0 (all) or more: {text!r}")
    return value


def _values(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


@Script()
@run_command
def main() -> int:
    from DIRAC.WorkloadManagementSystem.Client.JobStatus import JOB_STATES, normalizeStatus

    options = Options()
    helps = {"Status": f"primary status ({', '.join(JOB_STATES)})",
             "MinorStatus": "secondary status", "ApplicationStatus": "application status",
             "Site": "execution site", "Owner": "owner (DIRAC user name)",
             "OwnerGroup": "owner's DIRAC group", "JobGroup": "job group"}
    for option in CONDITIONS:
        Script.registerSwitch("", f"{option}=", helps[option])
    Script.registerSwitch("", "Date=", "jobs updated on or after this day, YYYY-MM-DD "
                                       "(default: today, UTC)")
    Script.registerSwitch("", "Maximum=", f"print at most N job IDs (default "
                                          f"{DEFAULT_MAXIMUM}; 0: all)")
    switches, arguments = Script.parseCommandLine()
    if arguments:
        usage_error(f"unexpected arguments: {' '.join(arguments)}")
    given = dict(switches)  # the last value of a repeated switch wins

    conditions: dict[str, list[str]] = {}
    for option, attribute in CONDITIONS.items():
        text = given.get(option)
        if text is None:
            continue
        values = _values(text)
        if not values:
            usage_error(f"--{option} needs a value")
        if option == "Status":
            canonical = [normalizeStatus(v) for v in values]
            unknown = [v for v, c in zip(values, canonical, strict=True) if c is None]
            if unknown:
                usage_error(f"unknown job status {', '.join(unknown)}; "
                            f"known: {', '.join(JOB_STATES)}")
            values = [c for c in canonical if c]
        conditions[attribute] = values
    maximum = _maximum(given["Maximum"]) if "Maximum" in given else DEFAULT_MAXIMUM
    date = _date(given["Date"]) if "Date" in given else dt.datetime.now(dt.UTC).date()
    setup(options)

    from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import JobMonitoringClient

    selection = {k: v[0] if len(v) == 1 else v for k, v in conditions.items()}
    jobs = value_or_fail(JobMonitoringClient().getJobs(selection, date.isoformat()),
                         "cannot select jobs")
    jobs = [int(j) for j in jobs or []]
    shown = jobs if maximum == 0 else jobs[:maximum]
    if options.json:
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
