"""The configuration this process sees: where it comes from, its version, and its refresh.

Sources, in this order:

1. the file named by ``DIRAC_CS_FILE`` when it is set (``Configuration/Server`` and
   workers that sit next to the file use this): re-checked (``stat``) at most once a
   second when read, re-read when it changed;
2. else the ``Configuration/Server`` service, fetched on first use (or by
   ``DIRAC.initialize()``) and kept current by a daemon *refresher* thread that asks
   for a newer version every ``cs_refresh`` seconds (``DIRAC_CS_REFRESH``, default 300).

When the broker has no ``Configuration/Server`` queue at all (no Configuration
service was ever started there) the configuration is empty: :attr:`state` is
``absent``.  When the service exists but does not answer, :attr:`state` is
``failed`` until a load succeeds; a configuration loaded once is kept when a later
refresh fails.  A local *overlay* (``initialize(extra_config=...)``) is merged over
the served tree for :func:`getTree` readers; :meth:`getServedTree` is the served
tree alone (what workers trust for identity and authorization).
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
import zlib
from typing import Any

from diracmq.broker import codec
from diracmq.broker.config import Settings, default_settings
from diracmq.broker.derrno import ECONF, EMQNOQUEUE, EMQNOWORKER
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

from DIRAC.ConfigurationSystem.Client.ConfigurationFile import (
    ConfigurationError,
    ConfigurationFile,
    cs_file_from_env,
)

__all__ = [
    "CONFIGURATION_SERVICE",
    "ConfigurationData",
    "DEFAULT_REFRESH",
    "deep_merge",
    "decode_compressed",
    "encode_compressed",
    "gConfigurationData",
    "service_consumers",
]

log = logging.getLogger(__name__)

#: The service that serves the configuration.
CONFIGURATION_SERVICE = "Configuration/Server"
#: Seconds between two version checks of the refresher (DIRAC's default).
DEFAULT_REFRESH = 300.0
#: Seconds a fetch from the Configuration service may take.
FETCH_TIMEOUT = 10.0
#: Seconds between retries while the Configuration service does not answer.
RETRY_FAILED = 10.0
#: Seconds the "is a Configuration worker consuming?" check before a first load may take.
PROBE_TIMEOUT = 2.0
#: Seconds between two ``stat`` calls on a local configuration file.
FILE_CHECK = 1.0

UNLOADED, LOADED, ABSENT, FAILED = "unloaded", "loaded", "absent", "failed"


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` merged in, section by section (``over`` wins for options)."""
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def encode_compressed(tree: dict[str, Any]) -> bytes:
    """The tree as ``getCompressedData`` sends it: zlib of its msgpack."""
    return zlib.compress(codec.packb(tree), 6)


def decode_compressed(data: bytes) -> dict[str, Any]:
    """The inverse of :func:`encode_compressed`; raise ValueError on bad data."""
    try:
        tree = codec.unpackb(zlib.decompress(data))
    except (zlib.error, codec.DecodeError, TypeError) as exc:
        raise ValueError(f"malformed configuration data: {exc}") from exc
    if not isinstance(tree, dict):
        raise ValueError("malformed configuration data: not a tree")
    return tree


class ConfigurationData:
    """A process's configuration tree and version; every method is thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._load_lock = threading.Lock()
        self._served: dict[str, Any] = {}
        self._overlay: dict[str, Any] = {}
        self._merged: dict[str, Any] = {}
        #: Version of the served tree ("" when nothing was loaded).
        self.version = ""
        #: ``unloaded``, ``loaded``, ``absent`` (no Configuration service) or ``failed``.
        self.state = UNLOADED
        #: ``file:<path>``, ``service`` or "" (nothing loaded).
        self.source = ""
        #: The last load or refresh error ("" after a success).
        self.error = ""
        #: The ``Errno`` of that error (0: none, or none given).
        self.errno = 0
        self._file: ConfigurationFile | None = None
        self._next_file_check = 0.0
        self._settings: Settings | None = None
        self._interval: float | None = None
        self._refresher: _Refresher | None = None
        #: Start a refresher on the first load from the service (off after stopRefresher).
        self._auto_refresh = True
        #: Bumped by :meth:`reset`: a fetch started before a reset is not applied.
        self._generation = 0

    # ------------------------------------------------------------- settings
    def setSettings(self, settings: Settings | None) -> None:
        """The broker settings used to reach the Configuration service (None: the defaults)."""
        self._settings = settings

    @property
    def settings(self) -> Settings | None:
        """The broker settings set with :meth:`setSettings` (None: the process defaults)."""
        return self._settings

    def _get_settings(self) -> Settings:
        return self._settings or default_settings()

    @property
    def refreshInterval(self) -> float:
        """Seconds between two version checks: set by :meth:`startRefresher`, else the
        ``cs_refresh`` broker setting (``DIRAC_CS_REFRESH``), else 300."""
        if self._interval is not None:
            return self._interval
        try:
            value = float(getattr(self._get_settings(), "cs_refresh", DEFAULT_REFRESH))
        except (ValueError, TypeError, FileNotFoundError):
            value = DEFAULT_REFRESH
        return value if value > 0 else DEFAULT_REFRESH

    # ------------------------------------------------------------- reading
    def ensureLoaded(self) -> None:
        """Load on first use; re-check a local file (at most once per :data:`FILE_CHECK`)."""
        if self.state == UNLOADED:
            with self._load_lock:
                if self.state == UNLOADED:
                    self.load()
            return
        if self._file is not None:
            if time.monotonic() >= self._next_file_check:
                self._check_file()
        elif self._refresher is None and self._auto_refresh:
            self._ensure_refresher()  # e.g. in a forked child: the thread did not survive

    def getTree(self) -> dict[str, Any]:
        """The served tree with the local overlay merged over it (do not modify it)."""
        self.ensureLoaded()
        return self._merged

    def getServedTree(self) -> dict[str, Any]:
        """The tree as the file or the Configuration service has it (do not modify it)."""
        self.ensureLoaded()
        return self._served

    def serviceKnownDown(self) -> bool:
        """Whether asking ``Configuration/Server`` now is known to be pointless.

        True when the broker has no such service (``absent``), or the last attempt to
        load found its queue without a consumer: commands then skip it at once instead
        of waiting for a timeout.  The refresher keeps asking (every
        :data:`RETRY_FAILED` s), so this turns False once the service is back.
        """
        self.ensureLoaded()
        return self.state == ABSENT or (self.state == FAILED and self.errno == EMQNOWORKER)

    def getVersion(self) -> str:
        """The version of the served tree ("" when none was loaded)."""
        self.ensureLoaded()
        return self.version

    def setOverlay(self, overlay: dict[str, Any] | None) -> None:
        """Local options merged over the served tree (``initialize(extra_config=...)``)."""
        with self._lock:
            self._overlay = copy.deepcopy(overlay or {})
            self._merged = deep_merge(self._served, self._overlay)

    # ------------------------------------------------------------- loading
    def load(self, settings: Settings | None = None, timeout: float | None = None
             ) -> DReturnType:
        """(Re)load from ``DIRAC_CS_FILE`` if set, else from the Configuration service."""
        path = cs_file_from_env()
        if path is not None:
            return self.useFile(path)
        if settings is not None:
            self._settings = settings
        result = self.loadFromService(timeout=timeout)
        self._ensure_refresher()
        return result

    def useFile(self, path: str | os.PathLike[str]) -> DReturnType:
        """Take the configuration from ``path`` from now on; S_ERROR(ECONF) if it is bad."""
        source = ConfigurationFile(path)
        try:
            source.load()
        except (ConfigurationError, OSError, UnicodeDecodeError) as exc:
            message = str(exc) if isinstance(exc, ConfigurationError) else \
                f"cannot read the configuration file {source.path}: {exc}"
            with self._lock:
                self.error, self.errno = message, ECONF
                if self.state != LOADED:
                    # keep watching the file: it is used as soon as it becomes good
                    self._file, self.state = source, FAILED
                    self._next_file_check = time.monotonic() + FILE_CHECK
                    self._changed.notify_all()
            return S_ERROR(ECONF, message)
        with self._lock:
            self._file = source
            self._next_file_check = time.monotonic() + FILE_CHECK
            self._set_served(source.tree, source.version, f"file:{source.path}")
        return S_OK(source.version)

    def _check_file(self) -> None:
        with self._lock:
            source = self._file
            if source is None:
                return
            self._next_file_check = time.monotonic() + FILE_CHECK
            if source.check():
                self._set_served(source.tree, source.version, f"file:{source.path}")
            self.error = source.error

    def loadFromService(self, timeout: float | None = None) -> DReturnType:
        """Fetch the whole configuration from ``Configuration/Server``: S_OK(version)."""
        return self._fetch("", timeout)

    def _fetch(self, known_version: str, timeout: float | None) -> DReturnType:
        from diracmq.client.base import Client  # here: `import DIRAC` must not need pika

        generation = self._generation
        settings = self._get_settings()
        rpc_timeout = timeout if timeout is not None else min(FETCH_TIMEOUT,
                                                              settings.rpc_timeout)
        # Not loaded yet (a command starting, or the service was down last time): a
        # stopped service must cost a command a connection, not the whole fetch timeout.
        if self.state != LOADED and service_consumers(settings) == 0:
            result = S_ERROR(EMQNOWORKER, f"{CONFIGURATION_SERVICE}: its queue has no "
                                          f"consumer (is `dirac-worker Configuration` "
                                          f"stopped?); asking again every {RETRY_FAILED:g} s")
        else:
            result = Client(url=CONFIGURATION_SERVICE, timeout=rpc_timeout,
                            settings=settings).getCompressedDataIfNewer(known_version)
        tree = None
        if result["OK"]:
            try:
                newest = str(result["Value"]["newestVersion"])
                if "data" in result["Value"]:
                    tree = decode_compressed(result["Value"]["data"])
            except (KeyError, TypeError, ValueError) as exc:
                result = S_ERROR(ECONF, f"bad answer from {CONFIGURATION_SERVICE}: {exc!r}")
            else:
                result = S_OK(newest)
        with self._lock:
            if generation != self._generation:
                return S_ERROR(ECONF, "the configuration was reset during the fetch")
            if result["OK"]:
                if tree is not None:
                    self._set_served(tree, result["Value"], "service")
                self.error, self.errno = "", 0
                return result
            self.error = result["Message"]
            self.errno = result.get("Errno") or 0
            if self.state == LOADED:
                log.warning("configuration refresh failed (keeping version %s): %s",
                            self.version, result["Message"])
            elif result.get("Errno") == EMQNOQUEUE:
                self.state = ABSENT
                log.info("no Configuration service on this broker (%s): using an empty "
                         "configuration", result["Message"])
            else:
                self.state = FAILED
                log.warning("cannot load the configuration from %s: %s",
                            CONFIGURATION_SERVICE, result["Message"])
            self._changed.notify_all()
        return result

    def _set_served(self, tree: dict[str, Any], version: str, source: str) -> None:
        """Replace the served tree (lock held); wake :meth:`waitForNewVersion`."""
        changed = version != self.version or self.state != LOADED
        self._served = tree
        self._merged = deep_merge(tree, self._overlay) if self._overlay else tree
        self.version, self.source, self.state, self.error = version, source, LOADED, ""
        self.errno = 0
        if changed:
            log.info("configuration version %s (from %s)", version, source)
        self._changed.notify_all()

    def refresh(self) -> DReturnType:
        """One refresh now: re-check the file, or ask the service for a newer version."""
        if self._file is not None:
            self._check_file()
            return S_OK(self.version)
        if self.state == LOADED and self.source == "service":
            return self._fetch(self.version, None)
        return self.loadFromService()

    def waitForNewVersion(self, old: str, timeout: float) -> bool:
        """Wait until the version differs from ``old``; False if ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.version == old:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    # ------------------------------------------------------------- refresher
    def startRefresher(self, interval: float | None = None) -> None:
        """Start (or re-time) the daemon thread that keeps the configuration current."""
        if interval is not None:
            if not interval > 0:
                raise ValueError(f"refresh interval must be positive, not {interval!r}")
            self._interval = float(interval)
        with self._lock:
            current = self._refresher
            if current is not None and current.thread.is_alive() and not current.stop.is_set():
                current.wake.set()  # re-read the interval now (no refresh before it is due)
                return
            self._refresher = _Refresher(self)
            self._refresher.thread.start()

    def _ensure_refresher(self) -> None:
        if self._file is None and self._auto_refresh:
            self.startRefresher()

    def stopRefresher(self, timeout: float = 5.0) -> None:
        """Stop the refresher thread (tests; a daemon thread otherwise dies with us).

        A thread busy with a fetch finishes that fetch, then stops: it never refreshes
        again, even if it outlives ``timeout``.
        """
        with self._lock:
            current, self._refresher = self._refresher, None
            self._auto_refresh = False
        if current is not None:
            current.stop.set()
            current.wake.set()
            if current.thread is not threading.current_thread():
                current.thread.join(timeout)

    def reset(self) -> None:
        """Forget everything (stops the refresher): the next read loads again. For tests."""
        self.stopRefresher()
        with self._lock:
            self._served, self._overlay, self._merged = {}, {}, {}
            self.version, self.state, self.source, self.error = "", UNLOADED, "", ""
            self.errno = 0
            self._file = None
            self._settings = None
            self._interval = None
            self._auto_refresh = True
            self._generation += 1
            self._changed.notify_all()


def service_consumers(settings: Settings) -> int | None:
    """Consumers of the Configuration service's queue; None when that cannot be told
    (no such queue, broker unreachable): the fetch itself then reports why.

    One short-lived connection (at most :data:`PROBE_TIMEOUT` s): how a caller learns
    at once that the service is stopped, instead of waiting for a call's timeout.
    """
    from diracmq.broker import topology
    from diracmq.broker.connection import (
        CONNECTION_ERRORS,
        BrokerUnreachable,
        close_quietly,
        connect,
    )

    try:
        conn = connect(settings, "diracmq configuration check",
                       timeout=min(PROBE_TIMEOUT, settings.connect_timeout))
    except BrokerUnreachable:
        return None
    try:
        frame = conn.channel().queue_declare(
            topology.service_queue_name(CONFIGURATION_SERVICE), passive=True)
        return int(frame.method.consumer_count)
    except CONNECTION_ERRORS:  # 404: no queue (dev mode), or the connection dropped
        return None
    finally:
        close_quietly(conn)


class _Refresher:
    """One refresher thread, with its own stop and wake-up events."""

    def __init__(self, data: ConfigurationData) -> None:
        self.data = data
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True, name="dirac-cs-refresher")

    def run(self) -> None:
        data, last = self.data, time.monotonic()
        while not self.stop.is_set():
            interval = data.refreshInterval
            if data.state == FAILED:
                interval = min(interval, RETRY_FAILED)
            remaining = last + interval - time.monotonic()
            if remaining > 0:
                self.wake.wait(remaining)
                self.wake.clear()
                continue  # woken early (re-timed or stopped), or due now: look again
            last = time.monotonic()
            try:
                data.refresh()
            except Exception:  # the thread must survive anything a refresh does
                log.exception("configuration refresh failed")


def _after_fork_in_child() -> None:
    # The refresher thread did not survive the fork; the next load starts another.
    gConfigurationData._refresher = None


#: The process-wide configuration (what ``gConfig`` reads).
gConfigurationData = ConfigurationData()

os.register_at_fork(after_in_child=_after_fork_in_child)
