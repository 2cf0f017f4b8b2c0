"""``dirac-webapp``: serve the job monitor and services page with uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
import ssl
import sys
from collections.abc import Sequence
from typing import Any

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
                    "download) and a services page over HTTP(S). The web "
                    "application calls the services as its broker user, on behalf of the "
                    "logged-in user: the Registry must give that broker user the "
                    "TrustedHost property (docs/operations.md).",
        epilog="Example: DIRAC_BROKER_URL=amqp://webapp:secret@rabbit/dirac "
               "dirac-webapp --port 8080. HTTPS with certificate login: dirac-webapp "
               "--host 0.0.0.0 --port 8443 --ssl-cert host.pem --ssl-key host.key "
               "--client-ca ca.pem")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1; put a TLS proxy in "
                             "front for other machines, or serve HTTPS with --ssl-cert)")
    parser.add_argument("--port", type=int, default=8080, help="HTTP(S) port (default 8080)")
    parser.add_argument("--ssl-cert", default=None, metavar="PEM",
                        help="serve HTTPS with this server certificate (PEM; it may also "
                             "hold the key)")
    parser.add_argument("--ssl-key", default=None, metavar="PEM",
                        help="the server certificate's private key (PEM), if not in "
                             "--ssl-cert")
    parser.add_argument("--client-ca", default=None, metavar="PEM",
                        help="with --ssl-cert: ask browsers for a client certificate signed "
                             "by these CA certificates (optional: browsers without one get "
                             "the password form). A certificate logs in as the Registry user "
                             "whose DN is its subject; an unknown DN is refused")
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
        _check_tls_args(args)
        settings = Settings.load(url=args.broker_url)
        settings.validate()
    except (ValueError, FileNotFoundError) as exc:
        parser.error(str(exc))
    logformat.configure(args.log_level, args.log_format)

    import uvicorn
    from diracmq.webapp.app import WebSettings, create_app

    https = bool(args.ssl_cert)
    app = create_app(WebSettings(settings, secret_key=os.environ.get("DIRAC_WEBAPP_SECRET"),
                                 services=args.service or None,
                                 refresh_seconds=args.refresh,
                                 worker_metrics=args.worker_metrics, https=https))
    tls: dict[str, Any] = {}
    if https:
        tls = {"ssl_certfile": args.ssl_cert, "ssl_keyfile": args.ssl_key}
    if args.client_ca:
        from diracmq.webapp.tlsserver import ClientCertH11Protocol

        # CERT_OPTIONAL: a browser without a certificate still gets the password form.
        tls.update(ssl_ca_certs=args.client_ca, ssl_cert_reqs=ssl.CERT_OPTIONAL,
                   http=ClientCertH11Protocol)
    log.info("dirac-webapp on %s://%s:%d/%s", "https" if https else "http", args.host,
             args.port, f" (client certificates: {args.client_ca})" if args.client_ca else "")
    uvicorn.run(app, host=args.host, port=args.port, log_config=None,
                log_level=args.log_level.lower(), access_log=False, **tls)
    return 0


def _check_tls_args(args: argparse.Namespace) -> None:
    """--ssl-key and --client-ca need --ssl-cert; every named file must be readable."""
    if (args.ssl_key or args.client_ca) and not args.ssl_cert:
        raise ValueError("--ssl-key and --client-ca need --ssl-cert (HTTPS)")
    for option, path in (("--ssl-cert", args.ssl_cert), ("--ssl-key", args.ssl_key),
                         ("--client-ca", args.client_ca)):
        if path and not os.access(path, os.R_OK):
            raise ValueError(f"{option}: cannot read {path}")
    # Load them once here, so that a wrong file is a usage error, not a server failure.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        if args.ssl_cert:
            context.load_cert_chain(args.ssl_cert, args.ssl_key)
        if args.client_ca:
            context.load_verify_locations(cafile=args.client_ca)
    except ssl.SSLError as exc:
        raise ValueError(f"cannot use the TLS files: {exc}") from None


if __name__ == "__main__":
    sys.exit(main())
