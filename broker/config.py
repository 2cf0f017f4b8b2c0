"""Where the broker is and how RPC behaves: settings read from the environment or a file.

Precedence, highest first:

1. keyword arguments given in code (``Settings.load(url=...)``),
2. environment variables (``DIRAC_BROKER_URL``, ``DIRAC_RPC_TIMEOUT``, ...),
3. the ``[broker]`` table of the TOML file named by ``DIRAC_CONFIG_FILE``, else
   ``~/.dirac/dirac.toml`` when it exists,
4. the defaults below (the local broker, guest/guest).

docs/configuration.md lists every option; keep it in step with ``_OPTIONS``.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import tomllib
from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_BROKER_URL", "PUBLISH_CONFIRMS", "QUEUE_TYPES", "Settings", "config_file_path",
           "default_settings", "set_default_settings", "split_urls"]

DEFAULT_BROKER_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


class ReplyMode(enum.Enum):
    """Where a client gets its replies (the ``reply_mode`` setting)."""

    #: A named reply queue per client process, ``dirac.reply.<user>.…`` (survives a
    #: short reconnect).
    QUEUE = "queue"
    #: RabbitMQ's Direct Reply-to pseudo-queue (no queue to declare).
    DIRECT = "direct"


@dataclasses.dataclass(frozen=True)
class Settings:
    """Broker and RPC settings shared by clients and workers."""

    #: AMQP URL of the broker (``amqp://user:password@host:port/vhost``), or several
    #: nodes of one cluster, comma-separated (a TOML list is joined the same way):
    #: clients and workers shuffle them and fail over from one to the next.
    url: str = DEFAULT_BROKER_URL
    #: Default per-call timeout in seconds (DIRAC's own default is 600 s).
    rpc_timeout: float = 600.0
    #: AMQP heartbeat in seconds, negotiated with the broker.
    heartbeat: int = 30
    #: Seconds to keep trying to reach the broker before a call fails with EMQCONN.
    connect_timeout: float = 10.0
    #: ``queue``: a named reply queue per client process (survives a short reconnect to
    #: one node; with a URL list each connection declares its own);
    #: ``direct``: RabbitMQ's Direct Reply-to pseudo-queue.
    reply_mode: str = "queue"
    #: Milliseconds an unused reply queue lives after its client went away.
    reply_queue_expires_ms: int = 60_000
    #: The DIRAC group to act in, one of the user's Registry groups ("": the user's
    #: default group); sent as the ``x-dirac-group`` header (docs/security.md).
    group: str = ""
    #: Seconds between two checks for a newer configuration (the CS refresher thread).
    cs_refresh: float = 300.0
    #: MiB of freed memory a process keeps for its next messages rather than giving it
    #: back to the OS at once (glibc; broker/allocator.py).  0: the C library's defaults.
    malloc_keep_mb: int = 64
    #: Seconds after which a call whose service queue has no consumer fails with
    #: EMQNOWORKER, however long its timeout (checked again at that interval while
    #: the call waits).
    no_worker_after: float = 10.0
    #: Largest message (bytes) a client publishes and a worker replies with: the
    #: broker's own ``max_message_size`` (RabbitMQ's default is 128 MiB).  Over it, the
    #: broker would close the channel; here the call gets S_ERROR(EMQENCODE) instead.
    max_message_bytes: int = 128 * 1024 * 1024
    #: Type of the service request queues workers declare: ``classic`` (one node) or
    #: ``quorum`` (replicated over a cluster, docs/configuration.md#queue-types).
    queue_type: str = "classic"
    #: Certificate login (``amqps://`` URLs): the PEM proxy or certificate+key file, the
    #: key file when separate, and a CA file or directory.  Empty: DIRAC's usual
    #: ``X509_USER_PROXY`` / ``X509_USER_CERT`` + ``X509_USER_KEY`` / ``X509_CERT_DIR``
    #: (broker/tlsconfig.py says how they are found).
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    #: Publisher confirms on the client's requests: ``on``, ``off``, or ``auto`` (on
    #: with quorum queues or several URLs, where a node's death can lose a request
    #: the broker never took; off on one node with classic queues, where the
    #: connection's loss says as much).  See docs/reliability.md.
    publish_confirms: str = "auto"

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Build settings from defaults, the config file, the environment and ``overrides``."""
        values: dict[str, Any] = {}
        path = config_file_path()
        if path is not None:
            with path.open("rb") as fh:
                table = tomllib.load(fh).get("broker", {})
            for name in _OPTIONS:
                if name in table:
                    values[name] = table[name]
        for name, env in _OPTIONS.items():
            if env in os.environ:
                values[name] = os.environ[env]
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**_coerce(values))

    def validate(self) -> None:
        """Raise ValueError for settings that cannot work."""
        if self.reply_mode not in {mode.value for mode in ReplyMode}:
            raise ValueError(f"reply_mode must be 'queue' or 'direct', not {self.reply_mode!r}")
        if self.rpc_timeout <= 0:
            raise ValueError("rpc_timeout must be positive")
        if not self.cs_refresh > 0:
            raise ValueError("cs_refresh must be positive")
        if self.malloc_keep_mb < 0:
            raise ValueError("malloc_keep_mb must be 0 or more")
        if not self.no_worker_after > 0:
            raise ValueError("no_worker_after must be positive")
        if self.max_message_bytes < 1024:
            raise ValueError("max_message_bytes must be at least 1024")
        if self.publish_confirms not in PUBLISH_CONFIRMS:
            raise ValueError(f"publish_confirms must be one of {', '.join(PUBLISH_CONFIRMS)}, "
                             f"not {self.publish_confirms!r}")
        if self.queue_type not in QUEUE_TYPES:
            raise ValueError(f"queue_type must be one of {', '.join(QUEUE_TYPES)}, "
                             f"not {self.queue_type!r}")
        urls = self.urls
        schemes = {u.split("://", 1)[0].lower() for u in urls}
        if not urls or not schemes <= {"amqp", "amqps"}:
            raise ValueError(f"url must be one or more amqp:// or amqps:// URLs, "
                             f"comma-separated, not {self.url!r}")

    @property
    def confirms(self) -> bool:
        """Whether a client asks the broker to confirm its requests (``publish_confirms``;
        ``auto``: with quorum queues or a URL list)."""
        if self.publish_confirms == "auto":
            return self.queue_type == "quorum" or len(self.urls) > 1
        return self.publish_confirms == "on"

    @property
    def urls(self) -> list[str]:
        """The broker URLs, in the order given (``url`` split at commas)."""
        return split_urls(self.url)


#: option name -> environment variable
_OPTIONS = {
    "url": "DIRAC_BROKER_URL",
    "rpc_timeout": "DIRAC_RPC_TIMEOUT",
    "heartbeat": "DIRAC_BROKER_HEARTBEAT",
    "connect_timeout": "DIRAC_BROKER_CONNECT_TIMEOUT",
    "reply_mode": "DIRAC_RPC_REPLY_MODE",
    "reply_queue_expires_ms": "DIRAC_RPC_REPLY_QUEUE_EXPIRES_MS",
    "group": "DIRAC_GROUP",
    "cs_refresh": "DIRAC_CS_REFRESH",
    "malloc_keep_mb": "DIRAC_MALLOC_KEEP_MB",
    "no_worker_after": "DIRAC_NO_WORKER_AFTER",
    "max_message_bytes": "DIRAC_MAX_MESSAGE_BYTES",
    "queue_type": "DIRAC_QUEUE_TYPE",
    "tls_cert": "DIRAC_TLS_CERT",
    "tls_key": "DIRAC_TLS_KEY",
    "tls_ca": "DIRAC_TLS_CA",
    "publish_confirms": "DIRAC_PUBLISH_CONFIRMS",
}

#: The service queue types ``queue_type`` accepts.
QUEUE_TYPES = ("classic", "quorum")

#: The values ``publish_confirms`` accepts.
PUBLISH_CONFIRMS = ("auto", "on", "off")


def split_urls(value: str) -> list[str]:
    """``"amqp://a,amqp://b"`` -> the URLs, blanks dropped.

    A comma cannot occur unescaped in an AMQP URL's host or vhost, and one escaped in a
    password (``%2C``) is not split, so splitting at commas is unambiguous.
    """
    return [part.strip() for part in value.split(",") if part.strip()]


def _coerce(values: dict[str, Any]) -> dict[str, Any]:
    # a field's type is its annotation's text here (from __future__ import annotations);
    # __name__ keeps this right for a class too
    types = {f.name: str(getattr(f.type, "__name__", f.type)) for f in dataclasses.fields(Settings)}
    out: dict[str, Any] = {}
    for name, value in values.items():
        kind = types[name]
        if name == "url" and isinstance(value, (list, tuple)):
            value = ",".join(str(v) for v in value)  # TOML: url = ["amqp://a", "amqp://b"]
        try:
            out[name] = {"float": float, "int": int, "str": str}[kind](value)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"bad value for broker option {name!r}: {value!r}") from exc
    return out


def config_file_path() -> Path | None:
    """The TOML configuration file in use, or None when there is none."""
    named = os.environ.get("DIRAC_CONFIG_FILE")
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"DIRAC_CONFIG_FILE names {path}, which does not exist")
        return path
    default = Path("~/.dirac/dirac.toml").expanduser()
    return default if default.is_file() else None


_default: Settings | None = None


def default_settings() -> Settings:
    """The process-wide settings (loaded once, on first use, unless set by ``initialize``)."""
    global _default
    if _default is None:
        _default = Settings.load()
    return _default


def set_default_settings(settings: Settings | None) -> None:
    """Replace the process-wide settings (None: load them again on next use)."""
    global _default
    _default = settings
