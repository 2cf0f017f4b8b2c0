"""``dirac-framework-ping-service <System> <Service>``: is a service up, and what serves it."""

from __future__ import annotations

import pprint
import re

from DIRAC.Interfaces.scripts.common import (
    EXIT_OK,
    CommandError,
    format_value,
    make_parser,
    print_json,
    run_command,
    setup,
)

PROG = "dirac-framework-ping-service"

_URL = re.compile(r"^[a-z]+://[^/]*/(?P<service>[^/]+/[^/]+)/?$")

#: A ping answers at once or not at all: do not wait as long as for a real call.
PING_TIMEOUT = 10.0

DESCRIPTION = """\
Ping a service: one worker serving it answers with its version, time, uptimes,
load, service name, host, process id and request counters, printed as a dict.
The service is given as '<System> <Service>', 'System/Service' or a DIRAC URL
(dips://host:port/System/Service: only System/Service is used).

Example:
  dirac-framework-ping-service WorkloadManagement JobMonitoring
  dirac-framework-ping-service Configuration/Server --json
"""

EPILOG = ("Fails (exit 1) when no queue exists for the service ('No such service queue': no "
          "worker for its System was ever started on this broker) or no worker answers "
          "within --timeout ('No worker consumed the request').\n"
          "Exit status: 0 the service answered, 1 it did not, 2 usage error.")


@run_command
def main() -> int:
    from diracmq.broker.topology import check_service_name

    parser = make_parser(PROG, DESCRIPTION, epilog=EPILOG, default_timeout=PING_TIMEOUT)
    parser.add_argument("system", metavar="System",
                        help="the System, e.g. WorkloadManagement (or System/Service)")
    parser.add_argument("service", metavar="Service", nargs="?",
                        help="the service, e.g. JobMonitoring")
    args = parser.parse_args()
    name = f"{args.system}/{args.service}" if args.service else args.system
    match = _URL.match(name)
    name = match.group("service") if match else name
    try:
        check_service_name(name)
    except ValueError as exc:
        parser.error(str(exc))
    setup(args)

    from diracmq.client.base import Client

    result = Client(url=name).ping()
    if not result["OK"]:
        raise CommandError(f"{name}: {result['Message']}")
    if args.json:
        print_json(result["Value"])
    else:
        value = result["Value"]
        if isinstance(value, dict):
            value = {k: format_value(v) if hasattr(v, "strftime") else v
                     for k, v in value.items()}
        print(pprint.pformat(value))
    return EXIT_OK


if __name__ == "__main__":
    main()
