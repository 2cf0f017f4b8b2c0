"""Print what this client uses, as DIRAC's table of options and values: DIRAC version,
Setup and VirtualOrganization (from the configuration), the Configuration service
(and its version), the broker URL (password hidden) and user, whether the broker
answers, the local config file in use, the DIRAC group asked for, the call timeout,
the installation path.

Without a broker it still prints what it knows locally, then fails (exit 1).
--json prints the same as an object {Option: Value}.
Exit status: 0, 1 the broker cannot be reached or the settings are invalid,
2 usage error.

Usage:
  dirac-info [options] ...

Example:
  $ dirac-info
  $ dirac-info --json
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from DIRAC.Core.Base.Script import Script
from DIRAC.Interfaces.scripts.common import (
    EXIT_FAILED,
    EXIT_OK,
    CommandError,
    Options,
    configure_logging,
    error,
    initialize_without_auth,
    load_settings,
    print_json,
    print_table,
    run_command,
    usage_error,
)


def mask_url(url: str) -> str:
    """``url`` with its password replaced by ``***``."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return "(unparsable URL)"
    if not password:
        return url
    userinfo, _, hostinfo = parts.netloc.rpartition("@")
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostinfo}"))


def _package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("diracmq")
    except PackageNotFoundError:
        return "(not installed)"


def _configuration_row() -> str:
    from DIRAC.ConfigurationSystem.Client.ConfigurationData import (
        ABSENT,
        LOADED,
        gConfigurationData,
    )

    data = gConfigurationData
    if data.state == LOADED:
        where = data.source[5:] if data.source.startswith("file:") else "Configuration/Server"
        kind = "file " if data.source.startswith("file:") else ""
        return f"{kind}{where} (version {data.version})"
    if data.state == ABSENT:
        return "none (no Configuration service on this broker)"
    return f"not loaded: {data.error or data.state}"


@Script()
@run_command
def main() -> int:
    from diracmq.broker.config import config_file_path
    from diracmq.broker.connection import broker_user
    from diracmq.client.transport import get_transport

    import DIRAC

    args = Options()
    _, arguments = Script.parseCommandLine()
    if arguments:
        usage_error(f"unexpected arguments: {' '.join(arguments)}")
    configure_logging(args.debug)
    settings, overrides = load_settings(args)
    try:
        config_file = config_file_path()
    except FileNotFoundError as exc:  # load_settings would have said so already
        raise CommandError(str(exc)) from exc

    connected = get_transport(settings).connect_now()
    reachable = connected["OK"]
    setup_name = vo = "Unknown"
    configuration = "unknown (no broker)"
    if reachable:
        initialize_without_auth(overrides)
        from DIRAC import gConfig

        setup_name = str(gConfig.getValue("/DIRAC/Setup", "Unknown"))
        vo = str(gConfig.getValue("/DIRAC/VirtualOrganization", "Unknown"))
        configuration = _configuration_row()

    records = [
        ("Setup", setup_name),
        ("VirtualOrganization", vo),
        ("ConfigurationServer", configuration),
        ("Broker URL", ", ".join(mask_url(u) for u in settings.urls)),  # every node
        ("Broker user", broker_user(settings)),
        ("Broker", "reachable" if reachable else "unreachable"),
        ("Config file", str(config_file) if config_file else "none (defaults, environment)"),
        ("DIRAC group", settings.group or "(the user's default group)"),
        ("RPC timeout", f"{settings.rpc_timeout:g} s"),
        ("Installation path", str(Path(DIRAC.__file__).resolve().parent.parent)),
        ("Platform", f"{platform.system()}_{platform.machine()} Python "
                     f"{sys.version.split()[0]}"),
        ("DIRAC version", DIRAC.version),
        ("diracmq version", _package_version()),
    ]
    if args.json:
        print_json(dict(records))
    else:
        print_table(("Option", "Value"), records)
    if not reachable:
        error(f"cannot reach the broker: {connected['Message']}")
        return EXIT_FAILED
    return EXIT_OK


if __name__ == "__main__":
    main()
