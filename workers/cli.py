"""``dirac-worker <System>``: run a System's services in N processes of M handler threads.

With ``--processes 1`` (the default) the worker runs in this process.  With more,
this process becomes a supervisor: it starts the children, forwards SIGTERM/SIGINT
to them, restarts a child that dies unexpectedly and exits once all have stopped.
Scale further by starting more ``dirac-worker`` commands, on any machine: every
worker of a service consumes the same queue, and the broker spreads the requests.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from typing import Any

from diracmq.broker.config import Settings, config_file_path
from diracmq.workers import logformat, metrics
from diracmq.workers.dedup import ReplyCache
from diracmq.workers.loader import HandlerNotFound, load_handlers, system_name
from diracmq.workers.registry import RegistryNotFound, load_registry, use_registry
from diracmq.workers.server import Worker

__all__ = ["main", "build_parser"]

log = logging.getLogger("dirac-worker")


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``dirac-worker``."""
    parser = argparse.ArgumentParser(
        prog="dirac-worker",
        description="Serve a DIRAC System's services from RabbitMQ.",
        epilog="Example: dirac-worker WorkloadManagement --processes 2 --threads 15",
    )
    parser.add_argument("system", help="the System to serve, e.g. WorkloadManagement")
    parser.add_argument("--processes", "-p", type=int, default=1,
                        help="worker processes, each with its own connection (default 1)")
    parser.add_argument("--threads", "-t", type=int, default=15,
                        help="handler threads per process (default 15, as DIRAC)")
    parser.add_argument("--prefetch", type=int, default=None,
                        help="unacknowledged requests held per service queue (default 2 x threads)")
    parser.add_argument("--extension", "-e", action="append", default=[],
                        help="a package searched before DIRAC for <System>System.Service "
                             "handlers (repeatable)")
    parser.add_argument("--service", "-s", action="append", default=[],
                        help="serve only this service of the System (repeatable)")
    parser.add_argument("--broker-url", default=None,
                        help="AMQP URL (default: $DIRAC_BROKER_URL, the config file, "
                             "else the local broker)")
    parser.add_argument("--graceful-timeout", type=float, default=30.0,
                        help="seconds to finish in-flight requests after SIGTERM (default 30)")
    parser.add_argument("--reply-cache-mb", type=float, metavar="MB",
                        default=ReplyCache.DEFAULT_MAX_BYTES / 2**20,
                        help="memory for replies kept to answer a repeated request without "
                             "running it again (default 8; 0: keep none)")
    parser.add_argument("--registry", default=None, metavar="NAME",
                        help="who the broker users are: the registry of this name in the "
                             "entry point group diracmq.registry (default: the only one "
                             "installed, DIRAC's, which reads the configuration)")
    parser.add_argument("--log-level", default=os.environ.get("DIRAC_LOG_LEVEL", "INFO"),
                        help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    parser.add_argument("--log-format", choices=logformat.FORMATS, default=None,
                        help="plain lines (default) or one JSON object per line with each "
                             "request's context (default: $DIRAC_LOG_FORMAT, else the "
                             "config file's [worker] log_format, else plain)")
    parser.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                        help="serve Prometheus metrics over HTTP on this port (default: off; "
                             "with --processes N, one endpoint for all processes)")
    parser.add_argument("--metrics-addr", default="0.0.0.0", metavar="ADDR",
                        help="address the metrics endpoint listens on (default 0.0.0.0)")
    return parser


def _log_format(args: argparse.Namespace) -> str:
    """--log-format, else DIRAC_LOG_FORMAT, else the config file's [worker] log_format."""
    if args.log_format:
        return str(args.log_format)
    if os.environ.get("DIRAC_LOG_FORMAT"):
        return os.environ["DIRAC_LOG_FORMAT"]
    try:
        path = config_file_path()
    except FileNotFoundError:
        return "plain"  # Settings.load reports the missing file
    if path is None:
        return "plain"
    with path.open("rb") as fh:
        table = tomllib.load(fh).get("worker", {})
    return str(table.get("log_format", "plain")) if isinstance(table, dict) else "plain"


def _configure_logging(level: str, fmt: str = "plain") -> None:
    logformat.configure(level, fmt)


def _run_one(args: argparse.Namespace, on_ready: Callable[[], None] | None = None) -> int:
    """Run one worker in this process; the exit status of the process.

    ``on_ready`` is called (from a helper thread) once the worker consumes its queues:
    the supervisor uses it to tell a start-up failure from a crash while serving.
    """
    _configure_logging(args.log_level, args.log_format)
    try:
        if args.extension:
            sys.path.insert(0, os.getcwd())  # extensions are often plain folders of the user
        handlers = load_handlers(args.system, args.extension, args.service)
        settings = Settings.load(url=args.broker_url)
        settings.validate()
        use_registry(load_registry(args.registry))
    except (HandlerNotFound, RegistryNotFound, ValueError, FileNotFoundError) as exc:
        log.error("%s", exc)
        return 2
    if args.metrics_port is not None:  # metrics hook
        try:
            metrics.enable(None if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and
                           args.processes > 1 else args.metrics_port, args.threads,
                           args.metrics_addr)
        except OSError as exc:
            log.error("cannot serve metrics on port %d: %s", args.metrics_port, exc)
            return 2
    worker = Worker(handlers, settings, threads=args.threads, prefetch=args.prefetch,
                    graceful_timeout=args.graceful_timeout,
                    reply_cache_bytes=int(args.reply_cache_mb * 2**20),
                    name=f"{system_name(args.system)} worker")
    if on_ready is not None:
        def report_ready() -> None:
            worker.ready.wait()
            on_ready()

        threading.Thread(target=report_ready, name="report-ready", daemon=True).start()
    return worker.run()


def _child(args: argparse.Namespace, served: Any) -> None:
    """A supervised worker process; ``served`` (a multiprocessing Event) is set once it serves."""
    sys.exit(_run_one(args, on_ready=served.set))




def _describe_exit(exitcode: int) -> str:
    if exitcode < 0:
        try:
            return f"killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"


def _supervise(args: argparse.Namespace) -> int:
    """Run ``args.processes`` children (:func:`_run_children`), with one metrics endpoint."""
    _configure_logging(args.log_level, args.log_format)
    if args.metrics_port is not None:  # metrics hook: one endpoint for all children
        metrics.prepare_multiprocess()
        try:
            metrics.serve_multiprocess(args.metrics_port, args.metrics_addr)
        except OSError as exc:
            log.error("cannot serve metrics on port %d: %s", args.metrics_port, exc)
            metrics.cleanup_multiprocess()
            return 2
    try:
        return _run_children(args)
    finally:
        metrics.cleanup_multiprocess()


def _run_children(args: argparse.Namespace) -> int:
    """Run ``args.processes`` children and keep them running until a signal stops us.

    A child that exits with status 2 before it ever served is a start-up configuration
    error (unknown System, bad settings, a queue declared with other arguments):
    restarting will not help, so the supervisor stops the others and exits 2.  Any
    other exit of a child, including status 2 once it has served (a handler may call
    ``os._exit(2)``), is a crash: the child is replaced, up to ``5 x processes``
    restarts in 60 s.  Whenever the supervisor stops, it logs why.
    """
    context = multiprocessing.get_context("spawn")
    stopping: list[int] = []
    children: dict[multiprocessing.process.BaseProcess, Any] = {}  # process -> served Event

    def stop_children(signum: int) -> None:
        for proc in children:
            if proc.is_alive() and proc.pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signum)

    def on_signal(signum: int, _frame: object) -> None:
        stopping.append(signum)
        stop_children(signum)

    def start() -> None:
        served = context.Event()
        proc = context.Process(target=_child, args=(args, served), name="dirac-worker-child")
        proc.start()
        children[proc] = served
        if stopping and proc.pid:
            # The stop signal came while this child was being started (its handler ran
            # before the child was in ``children``): pass it on, or the child would
            # serve on and the supervisor wait for it forever.
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, stopping[-1])

    for _ in range(args.processes):
        start()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    status = 0
    why = ""
    restarts: list[float] = []
    while children:
        for proc, served in list(children.items()):
            proc.join(timeout=0.2)
            if proc.exitcode is None:
                continue
            del children[proc]
            code = proc.exitcode
            if proc.pid is not None:
                metrics.child_exited(proc.pid)  # metrics hook
            if stopping or why:
                # A child still starting when the signal came dies of it (it had no
                # handler yet): that is the stop asked for, not a failure.
                stopped = code == 0 or -code in stopping or (why and code == -signal.SIGTERM)
                if not stopped:
                    log.warning("worker process %d ended while stopping (%s)", proc.pid,
                                _describe_exit(code))
                status = max(status, 0 if stopped else 1)  # 1: requests may be unfinished
                continue
            if code == 2 and not served.is_set():
                why = (f"worker process {proc.pid} could not start ({_describe_exit(code)}: "
                       f"a configuration error, see its log above); restarting would not help")
                log.error("%s: stopping the other worker processes", why)
                stop_children(signal.SIGTERM)
                status = 2
                continue
            now = time.monotonic()
            restarts = [t for t in restarts if now - t < 60] + [now]
            if len(restarts) > 5 * args.processes:
                why = (f"worker processes keep dying ({len(restarts)} exits in 60 s, the "
                       f"last: {_describe_exit(code)}); giving up")
                log.error("%s: stopping the other worker processes", why)
                stop_children(signal.SIGTERM)
                status = 1
                continue
            when = "while serving" if served.is_set() else "before serving"
            log.warning("worker process %d ended %s (%s); starting another", proc.pid, when,
                        _describe_exit(code))
            start()
    if not why:
        names = ", ".join(signal.Signals(s).name for s in dict.fromkeys(stopping)) or "none"
        why = f"stopped by signal ({names}); worker processes exited"
    log.info("supervisor exiting with status %d: %s", status, why)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dirac-worker``."""
    args = build_parser().parse_args(argv)
    if args.processes < 1 or args.threads < 1:
        build_parser().error("--processes and --threads must be at least 1")
    if not args.reply_cache_mb >= 0:  # also refuses nan
        build_parser().error("--reply-cache-mb must be 0 or more")
    if args.metrics_port is not None and not 0 < args.metrics_port < 65536:
        build_parser().error("--metrics-port must be between 1 and 65535")
    try:
        args.log_format = _log_format(args)
        if args.log_format not in logformat.FORMATS:
            raise ValueError(f"log format must be one of {', '.join(logformat.FORMATS)}, "
                             f"not {args.log_format!r}")
    except (ValueError, OSError, tomllib.TOMLDecodeError) as exc:
        build_parser().error(str(exc))
    if args.processes == 1:
        return _run_one(args)
    return _supervise(args)


if __name__ == "__main__":
    sys.exit(main())
