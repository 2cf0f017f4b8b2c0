"""DIRAC's Python API, served as RPC over RabbitMQ by diracmq.

``import DIRAC`` then ``DIRAC.initialize()`` (optional here: a client loads its
configuration on first use), then import and use clients as DIRAC documents::

    from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import JobMonitoringClient
    JobMonitoringClient().getJobs({"owner": "alice"})

``from DIRAC import gConfig`` reads the configuration served by ``Configuration/Server``
(docs/configuration-service.md); ``from DIRAC import gLogger`` is DIRAC's logger on top of
Python's logging (DIRAC/FrameworkSystem/Client/Logger.py).  ``DIRAC.exit``, ``DIRAC.abort``
and ``DIRAC.rootPath`` are DIRAC's.  What else DIRAC scripts use, and what is provided:
docs/compatibility.md.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import tomllib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn

from diracmq.broker.config import Settings, set_default_settings
from diracmq.broker.derrno import EMQNOQUEUE
from diracmq.broker.returnvalues import S_ERROR, S_OK

from DIRAC._notprovided import install as _install_not_provided_finder
from DIRAC.ConfigurationSystem.Client.Config import gConfig
from DIRAC.ConfigurationSystem.Client.ConfigurationData import (
    CONFIGURATION_SERVICE,
    FETCH_TIMEOUT,
    deep_merge,
    gConfigurationData,
)
from DIRAC.FrameworkSystem.Client.Logger import gLogger

__all__ = ["AuthError", "DIRACInitError", "S_ERROR", "S_OK", "abort", "exit", "gConfig",
           "gLogger", "initialize", "rootPath", "version"]

log = logging.getLogger("DIRAC")

_install_not_provided_finder()  # a missing DIRAC module names docs/compatibility.md

version = "v9.0-diracmq0.1.0"
majorVersion, minorVersion = 9, 0

_SETTINGS_FIELDS = frozenset(f.name for f in dataclasses.fields(Settings))

#: Root of the installation, as DIRAC computes it (the Python installation's prefix), or
#: ``DIRAC_ROOT_PATH``.
rootPath: str = os.environ.get("DIRAC_ROOT_PATH") or str(Path(sys.base_prefix).resolve())


class DIRACInitError(RuntimeError):
    """``initialize()`` could not set DIRAC up (no broker, bad configuration, unknown user)."""


class AuthError(DIRACInitError):
    """``initialize(security_expression=...)``: the caller's properties do not satisfy it."""


def exit(exitCode: int = 0) -> NoReturn:
    """End the program with ``exitCode`` (``sys.exit``: ``finally`` blocks and atexit run)."""
    sys.exit(exitCode)


def abort(exitCode: int, *args: Any, **kwargs: Any) -> NoReturn:
    """Log ``args`` at FATAL (``gLogger.fatal(sMsg, sVarMsg)``) and end the process at once
    with ``exitCode`` (``os._exit``: no clean-up, as DIRAC)."""
    try:
        if args or kwargs:
            gLogger.fatal(*args, **kwargs)
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(exitCode)


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


def _check_identity(settings: Settings) -> tuple[bool, dict[str, Any] | None]:
    """Ask the Configuration service who we are: ``(True, credentials)``, or
    ``(False, None)`` when the broker has no Configuration service (dev mode).

    Raises DIRACInitError when the service does not answer, refuses us, or the
    Registry does not know our broker user.
    """
    from diracmq.broker.connection import broker_user
    from diracmq.client.base import Client

    from DIRAC.ConfigurationSystem.Client.ConfigurationData import service_consumers

    user = broker_user(settings)
    if service_consumers(settings) == 0:  # its queue exists, but nothing serves it now
        raise DIRACInitError(
            f"cannot initialize DIRAC: {CONFIGURATION_SERVICE} did not confirm who broker user "
            f"{user!r} is: its queue has no consumer. Is `dirac-worker Configuration` "
            f"running? (initialize(require_auth=False) goes on without it)")
    timeout = min(FETCH_TIMEOUT, settings.rpc_timeout)
    result = Client(url=CONFIGURATION_SERVICE, timeout=timeout, settings=settings).whoami()
    if not result["OK"]:
        if result.get("Errno") == EMQNOQUEUE:
            log.warning("no Configuration service on this broker: running without a "
                        "configuration (identity = broker user %r)", user)
            return False, None
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
    return True, credentials


def _check_security(credentials: dict[str, Any],
                    expression: str | Iterable[str] | Callable[[list[str]], bool]) -> None:
    """Raise :class:`AuthError` unless ``credentials``' properties satisfy ``expression``."""
    properties = [str(p) for p in credentials.get("properties") or []]
    if callable(expression):
        allowed, wanted = bool(expression(properties)), getattr(expression, "__name__", "")
    elif isinstance(expression, str):
        allowed, wanted = expression in properties, expression
    else:
        options = [str(p) for p in expression]
        allowed, wanted = any(p in properties for p in options), " or ".join(options)
    if not allowed:
        raise AuthError(f"Current credentials (username={credentials.get('username')!r}, "
                        f"group={credentials.get('group')!r}, properties={properties}) "
                        f"are invalid for the required expression: {wanted}")


def initialize(*, require_auth: bool = True,
               security_expression: str | Iterable[str] | Callable[[list[str]], bool]
               | None = None,
               log_level: str | int | None = None,
               extra_config_files: Iterable[str | os.PathLike[str]] | None = None,
               extra_config: dict[str, Any] | None = None,
               host_credentials: tuple[str, str] | None = None) -> None:
    """Load the local settings, the configuration, check who we are, keep it current.

    Keyword-only, as DIRAC's.  Each failure raises :class:`DIRACInitError` saying what
    failed (a subclass, :class:`AuthError`, for ``security_expression``).

    1. ``log_level``: gLogger's level (a DIRAC level name such as ``"VERBOSE"``).
    2. Broker settings (docs/configuration.md): environment, ``DIRAC_CONFIG_FILE`` or
       ``~/.dirac/dirac.toml``, then ``extra_config`` keys that are broker options
       (``url``, ``group``, ``cs_refresh``...).  Other ``extra_config`` keys, and the
       tables of ``extra_config_files`` (TOML; a file that does not exist is skipped, as
       in DIRAC), are merged over the served configuration for this process's
       ``gConfig`` (the ``[broker]`` table of such a file is broker options).
    3. With ``require_auth`` (the default, as in DIRAC): the broker must accept our login
       (tried for ``connect_timeout`` seconds, so a broker away for a moment is waited
       for), and ``Configuration/Server`` must say who we are (``whoami``) and serve the
       configuration.  On a broker where no Configuration service was ever started (no
       ``Configuration/Server`` queue) DIRAC runs without a configuration, as the workers
       there do (docs/configuration-service.md); the identity is then asked of
       ``WorkloadManagement/JobMonitoring`` only when ``security_expression`` needs it.
       With ``require_auth=False`` nothing is demanded: an unreachable broker or
       Configuration service is a warning (the configuration is asked again on use).
    4. ``security_expression`` (needs ``require_auth``, else ``TypeError`` as in DIRAC):
       a property name (``"NormalUser"``), a list of them (any one suffices) or a callable
       given the caller's property list; :class:`AuthError` when not satisfied.
    5. The configuration is loaded (``DIRAC_CS_FILE`` when set, else the service) and a
       daemon thread checks for a newer version every ``cs_refresh`` seconds (300).

    ``host_credentials`` (a certificate and key to act as a host) cannot apply: the
    broker login decides who the caller is, so it is refused with DIRACInitError.
    """
    if security_expression is not None and not require_auth:
        raise TypeError(f"security_expression cannot be used with require_auth={require_auth}")
    if host_credentials:
        raise DIRACInitError(
            "host_credentials cannot apply here: the identity is the broker user of "
            "DIRAC_BROKER_URL (a host logs in with its own broker user), not a certificate "
            "(docs/compatibility.md)")
    if log_level is not None and not gLogger.setLevel(log_level):
        raise DIRACInitError(f"log_level {log_level!r} is not a DIRAC log level "
                             f"({', '.join(gLogger.getAllPossibleLevels())})")
    settings = _initialize_local(extra_config_files=extra_config_files,
                                 extra_config=extra_config)
    deployed = True
    if require_auth:
        from diracmq.client.transport import get_transport

        result = get_transport(settings).connect_now()
        if not result["OK"]:
            raise DIRACInitError(f"cannot initialize DIRAC: {result['Message']}")
        deployed, credentials = _check_identity(settings)
        if security_expression is not None:
            if credentials is None:
                credentials = _whoami_fallback(settings)
            _check_security(credentials, security_expression)

    result = gConfigurationData.load(settings)
    if not result["OK"]:
        absent = result.get("Errno") == EMQNOQUEUE
        if require_auth and deployed and not absent:
            raise DIRACInitError(f"cannot initialize DIRAC: cannot load the configuration: "
                                 f"{result['Message']}")
        if not absent:
            log.warning("DIRAC initialized without a configuration: %s", result["Message"])
    gConfigurationData.startRefresher(settings.cs_refresh)


def _initialize_local(*, extra_config_files: Iterable[str | os.PathLike[str]] | None = None,
                      extra_config: dict[str, Any] | None = None) -> Settings:
    """The local half of :func:`initialize`: settings and overlay, nothing contacted.

    ``Script.parseCommandLine`` uses it (``-o``, ``--cfg``), so parsing a command line
    never waits for a broker; the configuration then loads at its first use.
    """
    files = [f for f in extra_config_files or () if Path(f).expanduser().exists()]
    broker_options, overlay = _local_configuration(files, extra_config)
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
    return settings


def _whoami_fallback(settings: Settings) -> dict[str, Any]:
    """The caller's credentials from a WorkloadManagement service (no Configuration one)."""
    from diracmq.client.base import Client

    result = Client(url="WorkloadManagement/JobMonitoring",
                    timeout=min(FETCH_TIMEOUT, settings.rpc_timeout), settings=settings).whoami()
    if not result["OK"]:
        raise DIRACInitError(f"cannot check security_expression: no service says who broker "
                             f"user is: {result['Message']}")
    return result["Value"]
