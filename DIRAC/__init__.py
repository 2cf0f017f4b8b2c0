"""DIRAC's Python API, served as RPC over RabbitMQ by diracmq.

``import DIRAC`` then ``DIRAC.initialize()`` (optional here: a client loads its
configuration on first use), then import and use clients as DIRAC documents::

    from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import JobMonitoringClient
    JobMonitoringClient().getJobs({"owner": "alice"})

``from DIRAC import gConfig`` reads the configuration served by ``Configuration/Server``
(docs/configuration-service.md).
"""

from __future__ import annotations

import dataclasses
import logging
import tomllib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from diracmq.broker.config import Settings, set_default_settings
from diracmq.broker.derrno import EMQNOQUEUE
from diracmq.broker.returnvalues import S_ERROR, S_OK

from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.ConfigurationSystem.Client.ConfigurationData import (
    CONFIGURATION_SERVICE,
    FETCH_TIMEOUT,
    deep_merge,
    gConfigurationData,
)

__all__ = ["DIRACInitError", "S_ERROR", "S_OK", "gConfig", "initialize", "version"]

log = logging.getLogger("DIRAC")

version = "v9.0-diracmq0.1.0"
majorVersion, minorVersion = 9, 0

_SETTINGS_FIELDS = frozenset(f.name for f in dataclasses.fields(Settings))


class DIRACInitError(RuntimeError):
    """``initialize()`` could not set DIRAC up (no broker, bad configuration, unknown user)."""


def _local_configuration(extra_config_files: Iterable[str] | None,
                         extra_config: dict[str, Any] | None
                         ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(broker options, configuration overlay) from the extra files, then ``extra_config``."""
    broker: dict[str, Any] = {}
    overlay: dict[str, Any] = {}
    for name in extra_config_files or ():
        path = Path(name).expanduser()
        try:
            tree = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise DIRACInitError(f"bad DIRAC configuration file {path}: {exc}") from exc
        broker.update(tree.pop("broker", {}) or {})
        overlay = deep_merge(overlay, tree)
    for key, value in (extra_config or {}).items():
        if key in _SETTINGS_FIELDS:
            broker[key] = value
        elif isinstance(value, dict) and isinstance(overlay.get(key), dict):
            overlay[key] = deep_merge(overlay[key], value)
        else:
            overlay[key] = value
    return broker, overlay


def _check_identity(settings: Settings) -> bool:
    """Ask the Configuration service who we are; False when the broker has none (dev mode).

    Raises DIRACInitError when the service does not answer, refuses us, or the
    Registry does not know our broker user.
    """
    from diracmq.broker.connection import broker_user
    from diracmq.client.base import Client

    timeout = min(FETCH_TIMEOUT, settings.rpc_timeout)
    result = Client(url=CONFIGURATION_SERVICE, timeout=timeout, settings=settings).whoami()
    user = broker_user(settings)
    if not result["OK"]:
        if result.get("Errno") == EMQNOQUEUE:
            log.warning("no Configuration service on this broker: running without a "
                        "configuration (identity = broker user %r)", user)
            return False
        raise DIRACInitError(
            f"cannot initialize DIRAC: {CONFIGURATION_SERVICE} did not confirm who broker user "
            f"{user!r} is: {result['Message']}. Is `dirac-worker Configuration` running? "
            f"(initialize(require_auth=False) goes on without it)")
    credentials = result["Value"]
    if credentials.get("username") == "anonymous":
        raise DIRACInitError(
            f"cannot initialize DIRAC: broker user {user!r} is not registered in the "
            f"configuration's Registry (ask your DIRAC administrator for a "
            f"[Registry.Users.<name>] entry with BrokerUser = {user!r})")
    log.info("DIRAC user %s, group %s, properties %s", credentials.get("username"),
             credentials.get("group") or "-", ", ".join(credentials.get("properties") or []))
    return True


def initialize(*, require_auth: bool = True, log_level: str | None = None,
               extra_config_files: Iterable[str] | None = None,
               extra_config: dict[str, Any] | None = None,
               host_credentials: bool = False) -> None:
    """Load the local settings, the configuration, check who we are, keep it current.

    1. Broker settings (docs/configuration.md): environment, ``DIRAC_CONFIG_FILE`` or
       ``~/.dirac/dirac.toml``, then ``extra_config`` keys that are broker options
       (``url``, ``group``, ``cs_refresh``...).  Other ``extra_config`` keys, and the
       tables of ``extra_config_files`` (TOML), are merged over the served configuration
       for this process's ``gConfig`` (the ``[broker]`` table of such a file is broker
       options).
    2. With ``require_auth`` (the default, as in DIRAC): the broker must accept our login,
       and ``Configuration/Server`` must say who we are (``whoami``) and serve the
       configuration; otherwise :class:`DIRACInitError` says why.  On a broker where no
       Configuration service was ever started (no ``Configuration/Server`` queue) DIRAC
       runs without a configuration, as the workers there do (docs/configuration-service.md).
    3. The configuration is loaded (``DIRAC_CS_FILE`` when set, else the service) and a
       daemon thread checks for a newer version every ``cs_refresh`` seconds (300).

    ``host_credentials`` is accepted for DIRAC compatibility (the broker user decides).
    """
    del host_credentials
    if log_level:
        logging.basicConfig(level=getattr(logging, str(log_level).upper(), logging.INFO))
    broker_options, overlay = _local_configuration(extra_config_files, extra_config)
    try:
        settings = Settings.load(**broker_options)
        settings.validate()
    except (ValueError, TypeError, FileNotFoundError) as exc:
        raise DIRACInitError(f"bad DIRAC configuration: {exc}") from exc
    set_default_settings(settings)
    if gConfigurationData.settings is not None and gConfigurationData.settings != settings:
        gConfigurationData.reset()  # another broker: forget the other one's configuration
    gConfigurationData.setSettings(settings)
    gConfigurationData.setOverlay(overlay)

    deployed = True
    if require_auth:
        from diracmq.client.transport import get_transport

        result = get_transport(settings).connect_now()
        if not result["OK"]:
            raise DIRACInitError(f"cannot initialize DIRAC: {result['Message']}")
        deployed = _check_identity(settings)

    result = gConfigurationData.load(settings)
    if not result["OK"]:
        absent = result.get("Errno") == EMQNOQUEUE
        if require_auth and deployed and not absent:
            raise DIRACInitError(f"cannot initialize DIRAC: cannot load the configuration: "
                                 f"{result['Message']}")
        if not absent:
            log.warning("DIRAC initialized without a configuration: %s", result["Message"])
    gConfigurationData.startRefresher(settings.cs_refresh)
