"""``dirac-proxy-info``: who the services take you for (DIRAC user, group, properties, DN).

There are no proxies here: the caller's identity is its broker user, mapped to a
DIRAC user by the Registry of the configuration.  What counts is what a *service*
makes of it, so this command asks one with the built-in ``whoami``:

* ``Configuration/Server`` when a Configuration worker runs (it owns the Registry),
* else ``WorkloadManagement/JobMonitoring`` (a broker without a Configuration
  service: "dev mode", where the username is the broker user);
* or the service named by ``--service System/Service``.
"""

from __future__ import annotations

import errno
import logging
from typing import Any

from DIRAC.Interfaces.scripts.common import (
    EXIT_FAILED,
    EXIT_OK,
    CommandError,
    error,
    make_parser,
    print_json,
    run_command,
    setup,
)

PROG = "dirac-proxy-info"

CONFIGURATION = "Configuration/Server"
FALLBACK = "WorkloadManagement/JobMonitoring"
#: Seconds to wait for the Configuration service before asking the fallback instead.
PROBE_TIMEOUT = 10.0

DESCRIPTION = f"""\
Print who you are for DIRAC: your DIRAC user name, group, the group's properties,
your DN where the Registry has one, and the broker user you log in as.

The answer comes from a service's built-in 'whoami' (what the services really use
for authorization): {CONFIGURATION} when a Configuration worker runs, else
{FALLBACK}; --service picks another one.

  username     : alice
  DIRAC group  : dirac_user
  properties   : NormalUser
  identity     : /DC=org/CN=Alice
  broker user  : alice
  service      : {CONFIGURATION}

Logged in with a certificate (an amqps:// URL without user name), it also shows the
certificate file, its subject and issuer DNs, when it expires and the time left
(hours:minutes:seconds).

Example:
  dirac-proxy-info
  dirac-proxy-info --service WorkloadManagement/JobManager --json
"""

EPILOG = ("--json prints whoami's dict (username, group, properties, DN) plus brokerUser and "
          "service (and certificate, subject, issuer, notAfter, secondsLeft with a "
          "certificate login).\n"
          "Exit status: 0 a known user, 1 no service answered or the broker user is not "
          "registered (username 'anonymous'), 2 usage error.")

log = logging.getLogger(PROG)


def _service_name(text: str) -> str:
    import argparse

    from diracmq.broker.topology import check_service_name

    try:
        return check_service_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _ask(service: str, timeout: float | None = None) -> dict[str, Any]:
    from diracmq.client.base import Client

    return Client(url=service, timeout=timeout).whoami()


def _whoami(requested: str | None, timeout: float) -> tuple[str, dict[str, Any]]:
    """``(service, credentials)``; CommandError when no service answers."""
    if requested:
        result = _ask(requested)
        if not result["OK"]:
            raise CommandError(f"{requested}: {result['Message']}")
        return requested, result["Value"]

    from diracmq.broker.derrno import EMQNOQUEUE, EMQNOWORKER

    from DIRAC.ConfigurationSystem.Client.ConfigurationData import ABSENT, gConfigurationData

    tried = []
    if gConfigurationData.state != ABSENT:  # initialize() found no CS queue: do not ask again
        result = _ask(CONFIGURATION, min(timeout, PROBE_TIMEOUT))
        if result["OK"]:
            return CONFIGURATION, result["Value"]
        if result.get("Errno") not in (EMQNOQUEUE, EMQNOWORKER, errno.ETIMEDOUT):
            raise CommandError(f"{CONFIGURATION}: {result['Message']}")
        log.info("%s did not answer (%s); asking %s", CONFIGURATION, result["Message"],
                 FALLBACK)
        tried.append(f"{CONFIGURATION}: {result['Message']}")
    result = _ask(FALLBACK)
    if result["OK"]:
        return FALLBACK, result["Value"]
    tried.append(f"{FALLBACK}: {result['Message']}")
    raise CommandError("no service could say who you are: " + "; ".join(tried))


def _certificate(settings: Any) -> Any:
    """The certificate this process logs in with (CertificateInfo), or None (a password)."""
    from diracmq.broker.connection import uses_certificate_login
    from diracmq.broker.tlsconfig import certificate_info, find_tls_files

    if not any(uses_certificate_login(url) for url in settings.urls):
        return None
    files = find_tls_files(settings)
    return certificate_info(files.cert) if files.cert is not None else None


@run_command
def main() -> int:
    parser = make_parser(PROG, DESCRIPTION, epilog=EPILOG)
    parser.add_argument("--service", type=_service_name, metavar="System/Service",
                        help=f"ask this service (default: {CONFIGURATION} when it runs, "
                             f"else {FALLBACK})")
    args = parser.parse_args()
    context = setup(args)

    from diracmq.broker.connection import broker_user

    service, credentials = _whoami(args.service, context.timeout)
    user = broker_user(context.settings)
    username = credentials.get("username") or "anonymous"
    cert = _certificate(context.settings)
    if args.json:
        extra = {} if cert is None else {
            "certificate": cert.path, "subject": cert.dn, "issuer": cert.issuer,
            "notAfter": cert.not_after.isoformat(), "secondsLeft": cert.seconds_left}
        print_json({**credentials, "brokerUser": user, "service": service, **extra})
    else:
        rows = [("username", username),
                ("DIRAC group", credentials.get("group") or "(none)"),
                ("properties", ", ".join(credentials.get("properties") or []) or "(none)"),
                ("identity", credentials.get("DN") or "(no DN in the Registry)"),
                ("broker user", user),
                ("service", service)]
        if cert is not None:
            left = cert.seconds_left
            rows += [("certificate", cert.path), ("subject", cert.dn), ("issuer", cert.issuer),
                     ("valid until", cert.not_after.strftime("%Y-%m-%d %H:%M:%S UTC")),
                     ("time left", f"{left // 3600}:{left % 3600 // 60:02d}:{left % 60:02d}"
                      if left else "expired")]
        for label, value in rows:
            print(f"{label:<13}: {value}")
    if username == "anonymous":
        error(f"broker user {user!r} is not a registered DIRAC user (the services see "
              f"'anonymous'): ask your DIRAC administrator for a Registry entry with "
              + (f"DN = {cert.dn!r}" if cert is not None else f"BrokerUser = {user!r}"))
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    main()
