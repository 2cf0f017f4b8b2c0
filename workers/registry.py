"""Who the broker users are: the interface a worker asks, and how it finds the one installed.

A worker trusts one fact about a caller, the broker-validated ``user_id``.  Turning that
broker user into a DIRAC user name, groups and properties, and knowing which rules guard
each method, is the business of a *registry*: the worker (workers/identity.py) only asks.
The DIRAC layer provides one that reads the configuration's ``/Registry`` and
``/Systems/.../Authorization`` sections
(``DIRAC.ConfigurationSystem.Client.Helpers.Registry.ConfigurationRegistry``), and
declares it under the entry point group ``diracmq.registry``; this is how ``workers/``
serves DIRAC's users without importing DIRAC.

Embedding a worker (or testing handlers) without DIRAC's configuration: call
:func:`use_registry` with your own implementation of :class:`Registry`, or with
:class:`OpenRegistry` (every broker user is itself, with no group and no properties).
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Mapping, Sequence
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Protocol, runtime_checkable

from diracmq.broker.config import Settings

__all__ = [
    "ANONYMOUS",
    "ENTRY_POINT_GROUP",
    "OpenRegistry",
    "Registry",
    "RegistryMode",
    "RegistryNotFound",
    "RegistryView",
    "get_registry",
    "load_registry",
    "use_registry",
]

#: The username of a caller no registry vouches for.
ANONYMOUS = "anonymous"
#: The entry point group a package declares its :class:`Registry` factory in.
ENTRY_POINT_GROUP = "diracmq.registry"


class RegistryMode(enum.Enum):
    """What a registry's current state lets the worker believe about its callers."""

    #: Users (or hosts) are registered: identities and rules come from the registry.
    ENFORCED = "enforced"
    #: Nothing is registered ("dev mode"): the broker user is the username, with no group
    #: and no properties, and a method without a rule is open to every caller.
    OPEN = "open"
    #: The registry could not be loaded: every caller is anonymous until it can (fail closed).
    UNAVAILABLE = "unavailable"


@runtime_checkable
class RegistryView(Protocol):
    """One state of a registry. It never changes once returned: a new state is a new
    object, so the worker may cache what it derives from it by the object."""

    @property
    def mode(self) -> RegistryMode:
        """How far the worker may believe this state (see :class:`RegistryMode`)."""
        ...

    @property
    def problem(self) -> str:
        """Why the registry is :attr:`RegistryMode.UNAVAILABLE` ("" otherwise)."""
        ...

    def credentials(self, broker_user: str, requested_group: str | None) -> dict[str, Any]:
        """The credentials of a broker user (asked in :attr:`RegistryMode.ENFORCED` only).

        ``username``, ``group`` and ``properties`` always, ``DN``, ``brokerUser``,
        ``isHost`` where known.  An unknown broker user is :data:`ANONYMOUS`; a
        ``requested_group`` the user is not a member of gives ``validGroup: False``
        (the worker then refuses the request).
        """
        ...

    def authorization(self, service: str) -> Mapping[str, Sequence[str]]:
        """The configured rules of ``"System/Service"``: method (or ``"Default"``) to a
        non-empty rule list; empty when nothing is configured."""
        ...


@runtime_checkable
class Registry(Protocol):
    """A source of :class:`RegistryView` s that keeps itself current."""

    def start(self, settings: Settings) -> None:
        """Begin loading with the worker's broker settings, without waiting, and keep the
        state current from then on (the worker calls this once, at start-up)."""
        ...

    def current(self) -> RegistryView:
        """The state to judge a request by (it may wait for the first load)."""
        ...

    def refresh(self) -> None:
        """Reload now rather than at the next scheduled refresh."""
        ...


class RegistryNotFound(RuntimeError):
    """No registry is installed (or not the one asked for): the worker cannot start."""


class _OpenView:
    """The state of :class:`OpenRegistry`: nobody registered, every method open."""

    mode = RegistryMode.OPEN
    problem = ""

    def credentials(self, broker_user: str, requested_group: str | None) -> dict[str, Any]:
        return {"username": broker_user, "group": "", "properties": [],
                "brokerUser": broker_user}

    def authorization(self, service: str) -> Mapping[str, Sequence[str]]:
        return {}


class OpenRegistry:
    """A registry with nobody in it ("dev mode"): each broker user is its own username,
    without group or properties, and methods without an ``auth_`` rule are open."""

    _VIEW = _OpenView()

    def start(self, settings: Settings) -> None:
        """Nothing to load."""

    def current(self) -> RegistryView:
        """Always the same open state."""
        return self._VIEW

    def refresh(self) -> None:
        """Nothing to reload."""


def _installed() -> list[EntryPoint]:
    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def load_registry(name: str | None = None) -> Registry:
    """Make the registry declared under the entry point group ``diracmq.registry``.

    ``name`` picks one entry point; without it, the only one installed is used.  Raises
    :class:`RegistryNotFound` with what is installed when that is not possible, and when
    the entry point does not give a :class:`Registry`.
    """
    found = _installed()
    names = ", ".join(ep.name for ep in found) or "none"
    if name is not None:
        found = [ep for ep in found if ep.name == name]
        if not found:
            raise RegistryNotFound(f"no registry named {name!r} in the entry point group "
                                   f"{ENTRY_POINT_GROUP!r} (installed: {names})")
    if not found:
        raise RegistryNotFound(
            f"no registry installed (entry point group {ENTRY_POINT_GROUP!r}): install the "
            "diracmq package, whose DIRAC layer provides one, or call "
            "diracmq.workers.registry.use_registry() before starting the worker")
    if len(found) > 1:
        raise RegistryNotFound(f"several registries are installed ({names}): choose one "
                               "(dirac-worker --registry NAME)")
    entry = found[0]
    try:
        factory = entry.load()
        registry = factory()
    except Exception as exc:  # any failure of third-party code: reported, not a traceback
        raise RegistryNotFound(f"the registry {entry.name!r} ({entry.value}) cannot be "
                               f"made: {type(exc).__name__}: {exc}") from exc
    if not isinstance(registry, Registry):
        raise RegistryNotFound(f"the registry {entry.name!r} ({entry.value}) gives "
                               f"{type(registry).__name__}, which is not a Registry "
                               "(start, current, refresh)")
    return registry


_lock = threading.Lock()
_registry: Registry | None = None


def use_registry(registry: Registry | None) -> None:
    """Make ``registry`` the one this process's worker asks (None: forget it, so the next
    :func:`get_registry` loads the installed one again)."""
    global _registry
    with _lock:
        _registry = registry


def get_registry() -> Registry:
    """The registry set by :func:`use_registry`, else the installed one (loaded once)."""
    global _registry
    registry = _registry
    if registry is None:
        with _lock:
            if _registry is None:
                _registry = load_registry()
            registry = _registry
    return registry
