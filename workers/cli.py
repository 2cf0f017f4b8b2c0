"""``dirac-worker <System>``: run a System's services in N processes of M handler threads.

With ``--processes 1`` (the default) the worker runs in this process.  With more,
this process becomes a supervisor: it starts the children, forwards SIGTERM/SIGINT
to them, restarts a child that dies unexpectedly and exits once all have stopped.
Scale further by starting more ``dirac-worker`` commands, on any machine: every
worker of a service consumes the same queue, and the broker spreads the requests.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import signal
import sys
import time
import tomllib
from collections.abc import Sequence

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


def _run_one(args: argparse.Namespace) -> int:
    """Run one worker in this process; the exit status of the process."""
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
    return worker.run()


def _child(args: argparse.Namespace) -> None:
    sys.exit(_run_one(args))


def _supervise(args: argparse.Namespace) -> int:
    """Run ``args.processes`` children and keep them running until a signal stops us."""
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
    context = multiprocessing.get_context("spawn")
    stopping = []

    def on_signal(signum: int, _frame: object) -> None:
        stopping.append(signum)
        for proc in children:
            if proc.is_alive() and proc.pid:
                os.kill(proc.pid, signum)

    def start() -> multiprocessing.process.BaseProcess:
        proc = context.Process(target=_child, args=(args,), name="dirac-worker-child")
        proc.start()
        return proc

    children = [start() for _ in range(args.processes)]
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    status = 0
    restarts: list[float] = []
    while children:
        for proc in list(children):
            proc.join(timeout=0.2)
            if proc.exitcode is None:
                continue
            children.remove(proc)
            if proc.pid is not None:
                metrics.child_exited(proc.pid)  # metrics hook
            if stopping:
                status = max(status, proc.exitcode if proc.exitcode >= 0 else 1)
                continue
            if proc.exitcode == 2:
                return 2  # a usage/configuration error: restarting will not help
            now = time.monotonic()
            restarts = [t for t in restarts if now - t < 60] + [now]
            log.warning("worker process %d exited with %s; starting another",
                        proc.pid, proc.exitcode)
            if len(restarts) > 5 * args.processes:
                log.error("workers keep dying (%d restarts in 60 s); giving up", len(restarts))
                on_signal(signal.SIGTERM, None)
                status = 1
                continue
            children.append(start())
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
