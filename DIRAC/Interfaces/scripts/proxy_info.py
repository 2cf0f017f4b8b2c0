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

Example:
  dirac-proxy-info
  dirac-proxy-info --service WorkloadManagement/JobManager --json
"""

EPILOG = ("--json prints whoami's dict (username, group, properties, DN) plus brokerUser and "
          "service.\n"
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

    from DIRAC.ConfigurationSystem.Client.ConfigurationData import gConfigurationData

    tried = []
    # initialize() found no CS queue, or no Configuration worker on it: do not wait for it
    if not gConfigurationData.serviceKnownDown():
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
    if args.json:
        print_json({**credentials, "brokerUser": user, "service": service})
    else:
        rows = [("username", username),
                ("DIRAC group", credentials.get("group") or "(none)"),
                ("properties", ", ".join(credentials.get("properties") or []) or "(none)"),
                ("identity", credentials.get("DN") or "(no DN in the Registry)"),
                ("broker user", user),
                ("service", service)]
        for label, value in rows:
            print(f"{label:<13}: {value}")
    if username == "anonymous":
        error(f"broker user {user!r} is not a registered DIRAC user (the services see "
              f"'anonymous'): ask your DIRAC administrator for a Registry entry with "
              f"BrokerUser = {user!r}")
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    main()
