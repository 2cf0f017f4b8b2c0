"""DIRAC's Python API, served as RPC over RabbitMQ by diracmq.

``import DIRAC`` then ``DIRAC.initialize()`` (optional here: a client loads its
configuration on first use), then import and use clients as DIRAC documents::

    from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import JobMonitoringClient
    JobMonitoringClient().getJobs({"owner": "alice"})
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from broker.config import Settings, set_default_settings
from broker.returnvalues import S_ERROR, S_OK

__all__ = ["DIRACInitError", "S_ERROR", "S_OK", "initialize", "version"]

version = "v9.0-diracmq0.1.0"
majorVersion, minorVersion = 9, 0


class DIRACInitError(RuntimeError):
    """``initialize()`` could not set DIRAC up (no broker, bad configuration)."""


def initialize(*, require_auth: bool = True, log_level: str | None = None,
               extra_config_files: Iterable[str] | None = None,
               extra_config: dict[str, Any] | None = None,
               host_credentials: bool = False) -> None:
    """Load the configuration and check that the broker can be reached.

    ``extra_config`` overrides broker options (``{"url": ...}``; see
    docs/configuration.md).  With ``require_auth`` (the default, as in DIRAC) an
    unreachable broker raises :class:`DIRACInitError` now rather than at the first
    call.  ``extra_config_files`` and ``host_credentials`` are accepted for DIRAC
    compatibility.
    """
    del extra_config_files, host_credentials
    if log_level:
        logging.basicConfig(level=getattr(logging, str(log_level).upper(), logging.INFO))
    try:
        settings = Settings.load(**(extra_config or {}))
        settings.validate()
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise DIRACInitError(f"bad DIRAC configuration: {exc}") from exc
    set_default_settings(settings)
    if require_auth:
        from client.transport import get_transport

        result = get_transport(settings).connect_now()
        if not result["OK"]:
            raise DIRACInitError(f"cannot initialize DIRAC: {result['Message']}")
