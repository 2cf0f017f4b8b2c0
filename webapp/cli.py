"""``dirac-webapp``: serve the job monitor and services page with uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from diracmq.broker.config import Settings
from diracmq.broker.topology import check_service_name
from diracmq.workers import logformat

__all__ = ["build_parser", "main"]

log = logging.getLogger("dirac-webapp")


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``dirac-webapp``."""
    parser = argparse.ArgumentParser(
        prog="dirac-webapp",
        description="Serve DIRAC's job monitor (job pages with their output sandbox to "
                    "download) and a services page over HTTP. The web "
                    "application calls the services as its broker user, on behalf of the "
                    "logged-in user: the Registry must give that broker user the "
                    "TrustedHost property (docs/operations.md).",
        epilog="Example: DIRAC_BROKER_URL=amqp://webapp:secret@rabbit/dirac "
               "dirac-webapp --port 8080")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; put a TLS proxy in "
                             "front for other machines)")
    parser.add_argument("--port", type=int, default=8080, help="HTTP port (default 8080)")
    parser.add_argument("--broker-url", default=None,
                        help="AMQP URL of the web application's own broker user (default: "
                             "$DIRAC_BROKER_URL, the config file, else the local broker)")
    parser.add_argument("--service", action="append", default=[],
                        help="a System/Service for the services page (repeatable; default: "
                             "the WorkloadManagement services and Configuration/Server)")
    parser.add_argument("--worker-metrics", action="append", default=[], metavar="URL",
                        help="a worker's metrics endpoint (dirac-worker --metrics-port), e.g. "
                             "http://wms-1:9100/metrics; the services page then sums requests "
                             "and errors over these (repeatable)")
    parser.add_argument("--refresh", type=float, default=3.0, metavar="SECONDS",
                        help="how often pages refresh their data (default 3)")
    parser.add_argument("--log-level", default=os.environ.get("DIRAC_LOG_LEVEL", "INFO"),
                        help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    parser.add_argument("--log-format", choices=logformat.FORMATS,
                        default=os.environ.get("DIRAC_LOG_FORMAT") or "plain",
                        help="plain (default) or json")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``dirac-webapp``.

    The session cookie is signed with ``DIRAC_WEBAPP_SECRET`` (set it so sessions
    survive a restart and several instances share them); else a random key.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error("--port must be between 1 and 65535")
    if not args.refresh > 0:
        parser.error("--refresh must be positive")
    try:
        for service in args.service:
            check_service_name(service)
        for url in args.worker_metrics:
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"--worker-metrics: not an http(s) URL: {url!r}")
        settings = Settings.load(url=args.broker_url)
        settings.validate()
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    logformat.configure(args.log_level, args.log_format)

    import uvicorn
    from diracmq.webapp.app import WebSettings, create_app

    app = create_app(WebSettings(settings, secret_key=os.environ.get("DIRAC_WEBAPP_SECRET"),
                                 services=args.service or None,
                                 refresh_seconds=args.refresh,
                                 worker_metrics=args.worker_metrics))
    log.info("dirac-webapp on http://%s:%d/", args.host, args.port)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None,
                log_level=args.log_level.lower(), access_log=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
