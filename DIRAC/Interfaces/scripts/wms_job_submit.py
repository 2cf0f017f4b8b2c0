"""Submit jobs to the WorkloadManagement System, one per JDL file (a parametric JDL,
with 'Parameters = ...', makes several jobs). Prints 'JobID = N' for every job made.

Local files the JDL's InputSandbox names (relative to the JDL file's folder; to the
current directory for stdin) are uploaded to WorkloadManagement/SandboxStore first,
as one sandbox, and replaced by its name (SB:...) in the JDL submitted.

Several files (or one parametric JDL) are a bulk submission: its progress goes to
stderr, one line per file ('[3/10] file.jdl -> JobID = 7'), then a summary. A file
that fails (unreadable, malformed JDL) does not stop the others; losing the broker,
no JobManager worker, or a refusal ('Unauthorized query') does: the rest is not tried.
--json prints {"Successful": {"<file>": [JobIDs]}, "Failed": {"<file>": "why"}}.
Exit status: 0 all submitted, 1 any file failed (or no answer), 2 usage error.

Usage:
  dirac-wms-job-submit [options] ... JDLFile [JDLFile ...]

Example:
  $ dirac-wms-job-submit job.jdl
  $ dirac-wms-job-submit jobs/*.jdl -f submitted.txt
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from DIRAC.Core.Base.Script import Script
from DIRAC.Interfaces.scripts.common import (
    EXIT_FAILED,
    EXIT_OK,
    CommandError,
    Options,
    error,
    print_json,
    run_command,
    setup,
    usage_error,
)


def _parametric_count(jdl: str) -> int | None:
    """How many jobs a parametric JDL describes (None: not parametric or not parseable)."""
    from DIRAC.WorkloadManagementSystem.Utilities.JDL import JDLError, parseJDL
    from DIRAC.WorkloadManagementSystem.Utilities.ParametricJob import (
        getParameterVectorLength,
    )

    try:
        result = getParameterVectorLength(parseJDL(jdl))
    except (JDLError, ValueError, TypeError):
        return None  # the service says what is wrong with it
    return result["Value"] if result["OK"] else None


def _read(name: str) -> str:
    if name == "-":
        return sys.stdin.read()
    return Path(name).read_text(encoding="utf-8")


@Script()
@run_command
def main() -> int:
    options = Options()
    Script.registerSwitch("f:", "file=", "also write the job IDs to this file, one per line")
    Script.registerSwitch("q", "quiet", "no progress lines on stderr")
    Script.registerArgument(["JDLFile: a file with a job description ('-': stdin)"])
    switches, jdl_files = Script.parseCommandLine()
    output = next((v for name, v in reversed(switches) if name in ("f", "file")), None)
    quiet = any(name in ("q", "quiet") for name, _ in switches)
    if jdl_files.count("-") > 1:
        usage_error("stdin ('-') can be given only once")
    setup(options)

    from DIRAC.WorkloadManagementSystem.Client.WMSClient import WMSClient

    manager = WMSClient()
    total = len(jdl_files)
    submitted: dict[str, list[int]] = {}
    failed: dict[str, str] = {}
    all_ids: list[int] = []
    for number, name in enumerate(jdl_files, 1):
        label = "<stdin>" if name == "-" else name
        prefix = f"[{number}/{total}] {label}"
        try:
            jdl = _read(name)
        except (OSError, UnicodeDecodeError) as exc:
            reason = f"cannot read it: {exc.strerror if isinstance(exc, OSError) else exc}"
            failed[label] = reason
            _report_failure(prefix if total > 1 and not quiet else None, label, reason)
            continue
        count = _parametric_count(jdl)
        bulk = total > 1 or count is not None
        show = bulk and not quiet
        if show and count is not None:
            print(f"{prefix}: submitting a parametric job of {count} jobs...", file=sys.stderr,
                  flush=True)
        base = Path.cwd() if name == "-" else Path(name).resolve().parent
        result = manager.submitJob(jdl, baseDir=base)
        if not result["OK"]:
            failed[label] = result["Message"]
            _report_failure(prefix if show else None, label, result["Message"])
            if result.get("Errno") in _FATAL:
                # no broker or no JobManager: the other files would fail the same way
                _skip_rest(jdl_files[number:], failed, result["Message"])
                break
            continue
        value: Any = result["Value"]
        ids = [int(v) for v in value] if isinstance(value, (list, tuple)) else [int(value)]
        submitted[label] = ids
        all_ids += ids
        if not options.json:
            for job_id in ids:
                print(f"JobID = {job_id}", flush=True)
        if show:
            shown = (f"JobID = {ids[0]}" if len(ids) == 1
                     else f"JobIDs = {', '.join(map(str, ids))} ({len(ids)} jobs)")
            print(f"{prefix} -> {shown}", file=sys.stderr, flush=True)

    if output and all_ids:
        try:
            Path(output).write_text("".join(f"{i}\n" for i in all_ids))
        except OSError as exc:
            raise CommandError(f"cannot write the job IDs to {output}: {exc}") from exc
    if options.json:
        print_json({"Successful": submitted, "Failed": failed})
    if total > 1 and not quiet:
        print(f"Submitted {len(all_ids)} job(s) from {len(submitted)} of {total} JDL files"
              + (f"; {len(failed)} failed" if failed else ""), file=sys.stderr)
    return EXIT_FAILED if failed else EXIT_OK


def _report_failure(progress: str | None, label: str, reason: str) -> None:
    """``[2/9] file.jdl -> ERROR: why`` in a bulk submission, else ``ERROR: file.jdl: why``."""
    if progress:
        print(f"{progress} -> ERROR: {reason}", file=sys.stderr, flush=True)
    else:
        error(f"{label}: {reason}")


def _skip_rest(names: list[str], failed: dict[str, str], why: str) -> None:
    for name in names:
        label = "<stdin>" if name == "-" else name
        failed.setdefault(label, f"not submitted: {why}")
    if names:
        error(f"{len(names)} more file(s) not submitted")


def _fatal_codes() -> frozenset[int]:
    from diracmq.broker.derrno import EMQCONN, EMQNOQUEUE, EMQNOWORKER, ENOAUTH

    return frozenset({EMQCONN, EMQNOQUEUE, EMQNOWORKER, ENOAUTH})


_FATAL = _fatal_codes()


if __name__ == "__main__":
    main()
