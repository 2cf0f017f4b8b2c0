"""Print who you are for DIRAC: your DIRAC user name, group, the group's properties,
your DN where the Registry has one, and the broker user you log in as.

There are no proxies here: the caller's identity is its broker user, mapped to a DIRAC
user by the Registry of the configuration.  The answer comes from a service's built-in
'whoami' (what the services really use for authorization): Configuration/Server when a
Configuration worker runs, else WorkloadManagement/JobMonitoring; --service picks
another one.  Scripts get the same from DIRAC.Core.Security.ProxyInfo.getProxyInfo().

  username     : alice
  DIRAC group  : dirac_user
  properties   : NormalUser
  identity     : /DC=org/CN=Alice
  broker user  : alice
  service      : Configuration/Server

--json prints whoami's dict (username, group, properties, DN) plus brokerUser and
service.
Exit status: 0 a known user, 1 no service answered or the broker user is not
registered (username 'anonymous'), 2 usage error.

Logged in with a certificate (an amqps:// URL without user name), it also shows the
certificate file, its subject and issuer DNs, when it expires and the time left
(hours:minutes:seconds); --json adds certificate, subject, issuer, notAfter and
secondsLeft.

Usage:
  dirac-proxy-info [options] ...

Example:
  $ dirac-proxy-info
  $ dirac-proxy-info --service WorkloadManagement/JobManager --json
"""

from __future__ import annotations

from typing import Any

from DIRAC.Core.Base.Script import Script
from DIRAC.Core.Security.ProxyInfo import CONFIGURATION, FALLBACK, whoami
from DIRAC.Interfaces.scripts.common import (
    EXIT_FAILED,
    EXIT_OK,
    CommandError,
    Options,
    error,
    print_json,
    run_command,
    setup,
    usage_error,
)


def _certificate(settings: Any) -> Any:
    """The certificate this process logs in with (CertificateInfo), or None (a password)."""
    from diracmq.broker.connection import uses_certificate_login
    from diracmq.broker.tlsconfig import certificate_info, find_tls_files

    if not any(uses_certificate_login(url) for url in settings.urls):
        return None
    files = find_tls_files(settings)
    return certificate_info(files.cert) if files.cert is not None else None


@Script()
@run_command
def main() -> int:
    from diracmq.broker.topology import check_service_name

    options = Options()
    Script.registerSwitch("", "service=", f"ask this System/Service (default: {CONFIGURATION} "
                                          f"when it runs, else {FALLBACK})")
    switches, arguments = Script.parseCommandLine()
    if arguments:
        usage_error(f"unexpected arguments: {' '.join(arguments)}")
    requested = dict(switches).get("service")
    if requested is not None:
        try:
            requested = check_service_name(requested)
        except ValueError as exc:
            usage_error(f"--service: {exc}")
    context = setup(options)

    from diracmq.broker.connection import broker_user

    service, result = whoami(requested, None if requested else context.timeout)
    if not result["OK"]:
        raise CommandError(f"{service}: {result['Message']}" if service else result["Message"])
    credentials = result["Value"]
    user = broker_user(context.settings)
    username = credentials.get("username") or "anonymous"
    cert = _certificate(context.settings)
    if options.json:
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
