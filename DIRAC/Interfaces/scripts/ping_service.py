"""Ping a service: one worker serving it answers with its version, time, uptimes,
load, service name, host, process id and request counters, printed as a dict.
The service is given as '<System> <Service>', 'System/Service' or a DIRAC URL
(dips://host:port/System/Service: only System/Service is used).

Fails (exit 1) when no queue exists for the service ('No such service queue': no
worker for its System was ever started on this broker) or no worker answers within
--timeout ('No worker consumed the request').
--json prints the ping's dict (times ISO 8601 with their offset).
Exit status: 0 the service answered, 1 it did not, 2 usage error.

Usage:
  dirac-framework-ping-service [options] ... System [Service]

Example:
  $ dirac-framework-ping-service WorkloadManagement JobMonitoring
  $ dirac-framework-ping-service Configuration/Server --json
"""

from __future__ import annotations

import pprint
import re

from DIRAC.Core.Base.Script import Script
from DIRAC.Interfaces.scripts.common import (
    EXIT_OK,
    CommandError,
    Options,
    format_value,
    print_json,
    run_command,
    setup,
    usage_error,
)

_URL = re.compile(r"^[a-z]+://[^/]*/(?P<service>[^/]+/[^/]+)/?$")

#: A ping answers at once or not at all: do not wait as long as for a real call.
PING_TIMEOUT = 10.0


@Script()
@run_command
def main() -> int:
    from diracmq.broker.topology import check_service_name

    options = Options(default_timeout=PING_TIMEOUT)
    Script.registerArgument(("System: the System, e.g. WorkloadManagement",
                             "System/Service: the service, or a DIRAC URL"))
    Script.registerArgument("Service: the service, e.g. JobMonitoring", mandatory=False)
    _, arguments = Script.parseCommandLine()
    if len(arguments) > 2:
        usage_error(f"unexpected arguments: {' '.join(arguments[2:])}")
    system, service = Script.getPositionalArgs(group=True)
    name = f"{system}/{service}" if service else system
    match = _URL.match(name)
    name = match.group("service") if match else name
    try:
        check_service_name(name)
    except ValueError as exc:
        usage_error(str(exc))
    setup(options)

    from diracmq.client.base import Client

    result = Client(url=name).ping()
    if not result["OK"]:
        raise CommandError(f"{name}: {result['Message']}")
    if options.json:
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
