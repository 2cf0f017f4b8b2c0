"""What every ``dirac-*`` command shares: options, set-up, output and exit status.

The commands are written with DIRAC's ``Script`` (``@Script()`` on ``main``, switches and
arguments registered on ``Script``, help from the module docstring); :class:`Options`
registers the switches they share.  (:func:`make_parser` and the argparse helpers stay
for commands written before, in the argparse style.)

* ``-h``/``--help`` in DIRAC's layout; exit status 2 for a usage error (bad switch, bad
  job ID...), after DIRAC's ``Error when parsing command line arguments: ...`` and the
  help.
* Exit status 0 when everything worked, 1 when anything failed (:data:`EXIT_OK`,
  :data:`EXIT_FAILED`); errors go to stderr as ``ERROR: ...`` lines.
* ``--json``: machine-readable output on stdout (job IDs as object keys become text,
  datetimes ISO 8601 text with their UTC offset, ``+00:00``, tuples lists).
* ``--timeout SECONDS``: the time each call may take.  Without it: the configured
  ``rpc_timeout`` (``DIRAC_RPC_TIMEOUT`` or the ``[broker]`` table of the config file)
  when there is one, else the command's own default (60 s; 10 s for a ping), not
  DIRAC's 600 s: an interactive command should not sit for ten minutes on a queue
  nobody consumes.
* Reaching the broker: for the configured ``connect_timeout`` when there is one, else
  5 s (not 10 s): one ``WARNING: broker ... unreachable ...; retrying`` line, then
  ``ERROR: cannot reach the broker: ...`` and exit 1.
* ``-d``/``--debug``: log what the client does (to stderr); ``-ddd`` also gLogger's
  DEBUG messages, with headers.

:func:`setup` is DIRAC's ``parseCommandLine``/``initialize`` step: it loads the
settings, opens the broker connection *first* (so an unreachable broker is one clear
error after ``connect_timeout`` seconds, never a hang and never a traceback), then
calls ``DIRAC.initialize(require_auth=False)`` which loads the configuration where
a Configuration service runs.  Identity is not demanded up front: the services
refuse what the caller may not do, and the commands report that refusal.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import functools
import json
import logging
import os
import re
import sys
import tomllib
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

__all__ = [
    "EXIT_FAILED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CommandError",
    "Context",
    "Options",
    "job_control",
    "job_control_help",
    "job_control_main_script",
    "job_id_command_line",
    "job_id_files",
    "job_ids_from",
    "usage_error",
    "add_job_id_arguments",
    "collect_job_ids",
    "configure_logging",
    "error",
    "format_value",
    "initialize_without_auth",
    "job_control_main",
    "load_settings",
    "make_parser",
    "print_json",
    "print_table",
    "run_command",
    "sandbox_main",
    "setup",
    "to_jsonable",
    "value_or_fail",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2  # argparse's own status for usage errors

#: Seconds a call may take when neither ``--timeout`` nor the configuration says.
DEFAULT_TIMEOUT = 60.0
#: Seconds to keep trying to reach the broker when the configuration does not say.
DEFAULT_CONNECT_TIMEOUT = 5.0

log = logging.getLogger("dirac-command")


class CommandError(Exception):
    """A failure that ends the command: its text is printed as ``ERROR: ...``, exit 1."""


# --------------------------------------------------------------------- parser
class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keep the line breaks of the description and epilog (examples, output formats)."""


def make_parser(prog: str, description: str, *, epilog: str | None = None,
                json_output: bool = True, default_timeout: float = DEFAULT_TIMEOUT
                ) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with the options every command has."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, epilog=epilog, formatter_class=_Formatter)
    if json_output:
        parser.add_argument("--json", action="store_true",
                            help="print machine-readable JSON on stdout instead of text")
    parser.add_argument("--timeout", type=_positive_float, default=None, metavar="SECONDS",
                        help=f"seconds each call may take (default: the configured "
                             f"rpc_timeout, else {default_timeout:g})")
    parser.add_argument("-d", "--debug", action="store_true",
                        help="log what the client does to stderr")
    parser.set_defaults(default_timeout=default_timeout)
    return parser


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive: {text!r}")
    return value


_ID_SEPARATORS = re.compile(r"[\s,]+")


def _parse_ids(text: str, where: str) -> list[int]:
    ids = []
    for token in _ID_SEPARATORS.split(text.strip()):
        if not token:
            continue
        if not (token.isascii() and token.isdigit() and int(token) > 0):
            raise ValueError(f"invalid job ID {token!r}{where}: expected a positive integer")
        ids.append(int(token))
    return ids


def add_job_id_arguments(parser: argparse.ArgumentParser, *, with_file: bool = True) -> None:
    """Positional ``JOBID...`` (``1 2 3`` or ``1,2,3``) and ``-f/--file`` with more IDs."""
    parser.add_argument("job_ids", nargs="*", metavar="JOBID",
                        help="job IDs (several, separated by blanks or commas)")
    if with_file:
        parser.add_argument("-f", "--file", metavar="FILE", action="append", default=[],
                            help="read job IDs from FILE (blanks, commas or new lines between "
                                 "them; '-' is stdin); repeatable")


def collect_job_ids(parser: argparse.ArgumentParser, args: argparse.Namespace, *,
                    required: bool = True) -> list[int]:
    """The job IDs of the command line and ``--file``s, in order, each once.

    Anything that is not a positive integer, or an unreadable file, is a usage error
    (exit 2).
    """
    ids: list[int] = []
    try:
        for text in args.job_ids:
            ids += _parse_ids(text, "")
        for name in getattr(args, "file", []) or []:
            try:
                content = sys.stdin.read() if name == "-" else Path(name).read_text()
            except (OSError, UnicodeDecodeError) as exc:
                parser.error(f"cannot read job IDs from {name}: {exc}")
            ids += _parse_ids(content, f" in {name}")
    except ValueError as exc:
        parser.error(str(exc))
    if required and not ids:
        parser.error("no job ID given")
    return list(dict.fromkeys(ids))


# ----------------------------------------------------------------- set-up
@dataclasses.dataclass
class Context:
    """What :func:`setup` established: the settings every client of the command uses."""

    settings: Any  # broker.config.Settings
    timeout: float


def _configured(option: str, env: str) -> bool:
    """Whether the user set broker ``option`` (environment or config file) themselves."""
    if env in os.environ:
        return True
    from diracmq.broker.config import config_file_path

    try:
        path = config_file_path()
        if path is None:
            return False
        with path.open("rb") as fh:
            return option in (tomllib.load(fh).get("broker") or {})
    except (OSError, tomllib.TOMLDecodeError):
        return False  # Settings.load() reports the problem


class _FirstOnly(logging.Filter):
    """Let the first record through (``broker ... unreachable; retrying``), not the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.seen = False

    def filter(self, record: logging.LogRecord) -> bool:
        if self.seen:
            return False
        self.seen = True
        return True


#: The loggers of this project and its libraries that a command shows on stderr.  Not
#: the root logger: there gLogger would send its records too (they belong on stdout).
_COMMAND_LOGGERS = ("diracmq", "DIRAC", "pika", "dirac-command")


class _StderrHandler(logging.StreamHandler):
    """Writes to the current ``sys.stderr`` (looked up at each record)."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def configure_logging(debug: bool) -> None:
    """Warnings (or everything with ``--debug``) to stderr; pika's own noise off."""
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(name)s: %(message)s" if debug
                                           else "%(levelname)s: %(message)s"))
    for name in _COMMAND_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
            logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if debug else logging.WARNING)
        logger.propagate = False
    if not debug:
        # pika's connect errors, and every retry after the first, would repeat line after
        # line what the one ERROR line says at the end.
        logging.getLogger("pika").setLevel(logging.CRITICAL)
        logging.getLogger("diracmq.broker.connection").addFilter(_FirstOnly())


def load_settings(args: argparse.Namespace) -> tuple[Any, dict[str, Any]]:
    """``(Settings, broker overrides)`` for this command line; CommandError if invalid."""
    from diracmq.broker.config import Settings

    overrides: dict[str, Any] = {}
    if getattr(args, "timeout", None) is not None:
        overrides["rpc_timeout"] = args.timeout
    elif not _configured("rpc_timeout", "DIRAC_RPC_TIMEOUT"):
        overrides["rpc_timeout"] = getattr(args, "default_timeout", DEFAULT_TIMEOUT)
    if not _configured("connect_timeout", "DIRAC_BROKER_CONNECT_TIMEOUT"):
        overrides["connect_timeout"] = DEFAULT_CONNECT_TIMEOUT
    try:
        settings = Settings.load(**overrides)
        settings.validate()
    except (ValueError, TypeError, OSError, tomllib.TOMLDecodeError) as exc:
        raise CommandError(f"bad DIRAC configuration: {exc}") from exc
    return settings, overrides


def setup(args: Any) -> Context:
    """Connect to the broker and initialize DIRAC; CommandError (exit 1) when impossible.

    ``args``: :class:`Options` (or an argparse namespace with ``timeout``/``debug``).
    """
    from diracmq.client.transport import get_transport

    configure_logging(getattr(args, "debug", False))
    settings, overrides = load_settings(args)
    connected = get_transport(settings).connect_now()
    if not connected["OK"]:
        raise CommandError(f"cannot reach the broker: {connected['Message']}")
    initialize_without_auth(overrides)
    return Context(settings=settings, timeout=settings.rpc_timeout)


def initialize_without_auth(overrides: dict[str, Any]) -> None:
    """``DIRAC.initialize(require_auth=False)`` with the command line's ``-o`` options and
    ``--cfg`` files (Script's) and the command's broker ``overrides``; CommandError if bad."""
    import DIRAC
    from DIRAC.Core.Base.Script import Script

    options, files = Script.localConfiguration()
    try:
        DIRAC.initialize(require_auth=False, extra_config={**options, **overrides},
                         extra_config_files=files)
    except DIRAC.DIRACInitError as exc:
        raise CommandError(str(exc)) from exc


# ------------------------------------------------------- Script-based commands
def usage_error(message: str) -> NoReturn:
    """A usage error, as DIRAC reports one (the message, then the help), exit 2."""
    from DIRAC import gLogger
    from DIRAC.Core.Base.Script import Script

    gLogger.fatal(f"Error when parsing command line arguments: {message}")
    Script.showHelp(exitCode=EXIT_USAGE)
    raise SystemExit(EXIT_USAGE)  # showHelp exits; this line is for type checkers


class Options:
    """The switches every command has, registered on ``Script``: ``--json`` (unless
    ``json_output=False``) and ``--timeout=SECONDS``; ``-d`` is DIRAC's own.

    Attributes ``json``, ``timeout`` (None: not given), ``default_timeout`` and
    ``debug`` are what :func:`setup` reads.  Creating it also makes every usage error
    of the command exit with 2 (:data:`EXIT_USAGE`), this project's status for it.
    """

    def __init__(self, *, json_output: bool = True,
                 default_timeout: float = DEFAULT_TIMEOUT) -> None:
        from DIRAC.Core.Base.Script import Script

        self.json = False
        self.timeout: float | None = None
        self.default_timeout = default_timeout
        Script.usageErrorExitCode = EXIT_USAGE
        if json_output:
            Script.registerSwitch("", "json", "print machine-readable JSON on stdout instead "
                                              "of text", self._set_json)
        Script.registerSwitch("", "timeout=", f"seconds each call may take (default: the "
                                              f"configured rpc_timeout, else "
                                              f"{default_timeout:g})", self._set_timeout)

    @property
    def debug(self) -> bool:
        """Whether ``-d`` was given."""
        from DIRAC.Core.Base.Script import Script

        return Script.getDebugMode() > 0

    def _set_json(self, value: str) -> dict[str, Any]:
        del value
        self.json = True
        return {"OK": True, "Value": None}

    def _set_timeout(self, value: str) -> dict[str, Any]:
        try:
            self.timeout = _positive_float(value)
        except argparse.ArgumentTypeError as exc:
            usage_error(f"--timeout: {exc}")
        return {"OK": True, "Value": None}


def job_id_files() -> list[str]:
    """Register ``-f/--file=FILE`` (job IDs in a file; repeatable); the list it fills."""
    from DIRAC.Core.Base.Script import Script

    files: list[str] = []

    def add(value: str) -> dict[str, Any]:
        files.append(value)
        return {"OK": True, "Value": None}

    Script.registerSwitch("f:", "file=", "read job IDs from this file (blanks, commas or new "
                                         "lines between them; '-' is stdin); repeatable", add)
    return files


def job_id_command_line() -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """Register ``-f/--file`` and the optional ``JobID`` list argument, then parse the
    command line: ``(unprocessed switches, arguments, files)`` (see :func:`job_ids_from`)."""
    from DIRAC.Core.Base.Script import Script

    files = job_id_files()
    Script.registerArgument(["JobID: DIRAC job ID (or several: 1,2,3)"], mandatory=False)
    switches, arguments = Script.parseCommandLine()
    return switches, arguments, files


def job_ids_from(arguments: Iterable[str], files: Iterable[str] = (), *,
                 required: bool = True) -> list[int]:
    """The job IDs of the arguments and files (``-`` is stdin), in order, each once.

    Anything that is not a positive integer, or an unreadable file, is a usage error.
    """
    ids: list[int] = []
    try:
        for text in arguments:
            ids += _parse_ids(text, "")
        for name in files:
            try:
                content = sys.stdin.read() if name == "-" else Path(name).read_text()
            except (OSError, UnicodeDecodeError) as exc:
                usage_error(f"cannot read job IDs from {name}: {exc}")
            ids += _parse_ids(content, f" in {name}")
    except ValueError as exc:
        usage_error(str(exc))
    if required and not ids:
        usage_error("no job ID given")
    return list(dict.fromkeys(ids))


# ---------------------------------------------------------------- results
def value_or_fail(result: dict[str, Any], what: str = "") -> Any:
    """The Value of an S_OK, else :class:`CommandError` with the S_ERROR's message."""
    if result.get("OK"):
        return result.get("Value")
    message = result.get("Message", "unknown error")
    raise CommandError(f"{what}: {message}" if what else message)


def fetch_per_job(job_ids: Iterable[int], fetch: Callable[[int], dict[str, Any]],
                  missing: Callable[[int], str]) -> tuple[dict[int, Any], bool]:
    """Call ``fetch(job_id)`` for each job: ({job_id: Value}, whether any failed).

    An S_ERROR is reported as ``job N: message``; an empty Value as ``missing(job_id)``
    (the job is unknown); both count as failures, and the other jobs are still asked.
    """
    found: dict[int, Any] = {}
    failed = False
    for job_id in job_ids:
        result = fetch(job_id)
        if not result["OK"]:
            error(f"job {job_id}: {result['Message']}")
            failed = True
        elif not result["Value"]:
            error(missing(job_id))
            failed = True
        else:
            found[job_id] = result["Value"]
    return found, failed


# ----------------------------------------------------------------- output
def error(message: str) -> None:
    """``ERROR: message`` on stderr."""
    print(f"ERROR: {message}", file=sys.stderr, flush=True)


def to_jsonable(obj: Any) -> Any:
    """``obj`` with what JSON cannot hold made plain (datetimes, tuples, sets, bytes)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, dt.datetime):
        # one form everywhere: ISO 8601 with its offset; a naive time is UTC, as every
        # time the services send
        aware = obj if obj.tzinfo is not None else obj.replace(tzinfo=dt.UTC)
        return aware.isoformat()
    if isinstance(obj, (dt.date, dt.time)):
        return obj.isoformat()
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return obj


def print_json(obj: Any) -> None:
    """``obj`` as indented JSON on stdout."""
    print(json.dumps(to_jsonable(obj), indent=2, default=str))


def format_value(value: Any, none: str = "") -> str:
    """A value as DIRAC prints it: datetimes to the second (UTC), None as ``none``, the
    rest as text."""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return none if value is None else str(value)


def print_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """A table as DIRAC's ``printTable``: left-aligned columns, a ``=`` rule under the head."""
    cells = [[format_value(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    print(line(headers))
    print("=" * (sum(widths) + 2 * (len(widths) - 1)))
    for row in cells:
        print(line(row))


# ---------------------------------------------------------------- running
def run_command(func: Callable[[], int]) -> Callable[[], NoReturn]:
    """Make ``func`` (returning an exit status) a console-script ``main``."""

    @functools.wraps(func)
    def main() -> NoReturn:
        try:
            code = func()
            sys.stdout.flush()
        except CommandError as exc:
            error(str(exc))
            code = EXIT_FAILED
        except KeyboardInterrupt:
            print("Interrupted", file=sys.stderr)
            code = 130
        except BrokenPipeError:  # `dirac-... | head`: not an error of ours
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            code = EXIT_OK
        sys.exit(code)

    return main


# ---------------------------------------------------- kill/delete/reschedule
_FAILED_JOB = re.compile(r"job (\d+): (.*?)(?=; job \d+: |$)")


def _failures(result: dict[str, Any]) -> dict[int, str]:
    """Per job, why a JobManager call failed for it (from a partial-failure S_ERROR)."""
    reasons: dict[int, str] = {}
    for job_id in result.get("InvalidJobIDs") or []:
        reasons[job_id] = f"Job {job_id} not found"
    for job_id in result.get("NonauthorizedJobIDs") or []:
        reasons[job_id] = f"job {job_id}: not authorized (you are not its owner)"
    failed = result.get("FailedJobIDs") or []
    if failed:
        said = {int(m.group(1)): m.group(2) for m in
                _FAILED_JOB.finditer(result.get("Message", ""))}
        for job_id in failed:
            reasons[job_id] = f"job {job_id}: {said.get(int(job_id), result.get('Message'))}"
    return reasons


def job_control_help(prog: str, summary: str, done_verb: str) -> str:
    """The help (module docstring) of a kill/delete/reschedule command."""
    return f"""{summary}

At least one job ID is needed, as arguments (several, separated by blanks or commas) or
in files given with --file.  Prints '{done_verb} jobs 1,2,3' for the jobs done and one
'ERROR: ...' line on stderr per job that was not (unknown, not yours, or not in a state
that allows it).  --json prints {{"Successful": [...], "Failed": {{"<JobID>": "why"}}}}.
Exit status: 0 all done, 1 any job failed (or no answer), 2 usage error.

Usage:
  {prog} [options] ... [JobID ...]

Example:
  $ {prog} 12 13 14
  $ {prog} --file ids.txt
"""


def job_control_main_script(method: str, done_verb: str) -> int:
    """The body of a kill/delete/reschedule command's ``main``: its command line (the
    shared switches, ``-f``, the job IDs), then :func:`job_control`."""
    options = Options()
    _, arguments, files = job_id_command_line()
    return job_control(options, job_ids_from(arguments, files), method, done_verb)


def job_control(options: Any, job_ids: list[int], method: str, done_verb: str) -> int:
    """``dirac-wms-job-kill``/``-delete``/``-reschedule``: one JobManager call for the jobs.

    Prints ``<Verb> jobs 1,2,3`` for the jobs done, one ``ERROR: ...`` line per job
    that was not; exit status 0 all done, 1 any failed.
    """
    setup(options)
    from DIRAC.WorkloadManagementSystem.Client.JobManagerClient import JobManagerClient

    result = getattr(JobManagerClient(), method)(job_ids)
    if result["OK"]:
        done, failed = list(result["Value"] or []), {}
    elif any(k in result for k in ("InvalidJobIDs", "NonauthorizedJobIDs", "FailedJobIDs")):
        done, failed = list(result.get("SuccessfulJobIDs") or []), _failures(result)
    else:
        raise CommandError(result.get("Message", "unknown error"))
    if options.json:
        print_json({"Successful": done, "Failed": failed})
    elif done:
        print(f"{done_verb} jobs {','.join(map(str, done))}")
    for reason in failed.values():
        error(reason)
    return EXIT_FAILED if failed else EXIT_OK


def job_control_main(prog: str, method: str, done_verb: str, description: str) -> int:
    """:func:`job_control` with an argparse command line (the commands before Script)."""
    parser = make_parser(prog, description, epilog=(
        "Prints '<Verb> jobs 1,2,3' for the jobs done and one 'ERROR: ...' line on stderr per "
        "job that was not (unknown, not yours, or not in a state that allows it).\n"
        "Exit status: 0 all done, 1 any job failed (or no answer), 2 usage error."))
    add_job_id_arguments(parser)
    args = parser.parse_args()
    return job_control(args, collect_job_ids(parser, args), method, done_verb)
# ------------------------------------------------------------- sandboxes
def sandbox_main(prog: str, description: str, kind: str) -> int:
    """``dirac-wms-job-get-output`` / ``-get-input``: download one kind of sandbox."""
    from DIRAC.Interfaces.API.Dirac import Dirac

    parser = make_parser(prog, description, epilog=(
        "Exit status: 0 every sandbox downloaded, 1 any job failed, 2 usage error."))
    add_job_id_arguments(parser)
    parser.add_argument("-D", "--dir", default=".", metavar="DIR",
                        help="where to put the jobs' directories (default: here)")
    parser.add_argument("--no-job-dir", action="store_true",
                        help="put the files straight into DIR, not DIR/<JobID>/")
    args = parser.parse_args()
    job_ids = collect_job_ids(parser, args)
    setup(args)
    dirac = Dirac()
    done: dict[int, str] = {}
    failed: dict[int, str] = {}
    for job_id in job_ids:
        if kind == "Output":
            result = dirac.getOutputSandbox(job_id, outputDir=args.dir, noJobDir=args.no_job_dir)
            where = Path(args.dir) if args.no_job_dir else Path(args.dir) / str(job_id)
        else:
            result = dirac.getInputSandbox(job_id, outputDir=args.dir, noJobDir=args.no_job_dir)
            where = Path(args.dir) if args.no_job_dir else Path(args.dir) / f"InputSandbox{job_id}"
        if result["OK"]:
            done[job_id] = str(where)
            if not args.json:
                print(f"Job {kind.lower()} sandbox retrieved in {where}/")
        else:
            failed[job_id] = result["Message"]
            error(f"job {job_id}: {result['Message']}")
    if args.json:
        print_json({"Successful": done, "Failed": failed})
    return EXIT_FAILED if failed else EXIT_OK
