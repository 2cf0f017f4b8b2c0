"""Who is calling, and what may they call: identity and authorization on the worker.

RabbitMQ refuses a message whose ``user_id`` property differs from the user of the
connection that published it, so ``user_id`` is the one fact about the caller a
worker can trust.  The Registry of the configuration (DIRAC's ``/Registry``) maps
that broker user to a DIRAC user: username, DN, groups, and the group's properties.
The caller may *ask* for one of its groups with the ``x-dirac-group`` header (set
by the client from ``DIRAC_GROUP``); a group it is not a member of gets the request
refused with ``ENOAUTH``.  Nothing else in a request is believed.

Where the worker's configuration comes from: the file named by ``DIRAC_CS_FILE`` when
set (re-read when it changes), else the ``Configuration/Server`` service (kept
current by a refresher thread, every ``DIRAC_CS_REFRESH`` seconds).  See
docs/security.md.

=====================================  ==========================================
Situation                              Caller's credentials
=====================================  ==========================================
no ``user_id`` on the message          ``anonymous``
Registry with users (or hosts)         the user's entry; unknown broker user:
                                       ``anonymous``
no Registry at all ("dev mode": no     ``username`` = the broker user, no group,
Configuration service on the broker,   no properties (today's behaviour)
or a file without users)
a Configuration service that never     ``anonymous`` (fail closed) until a load
answered (or a broken file)            succeeds
=====================================  ==========================================
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from diracmq.broker.config import Settings
from diracmq.broker.derrno import ENOAUTH
from diracmq.broker.returnvalues import S_ERROR, DReturnType
from diracmq.workers.handler import find_export

from DIRAC.ConfigurationSystem.Client.ConfigurationData import (
    FAILED,
    gConfigurationData,
)
from DIRAC.ConfigurationSystem.Client.ConfigurationFile import as_list
from DIRAC.ConfigurationSystem.Client.Helpers.Registry import ANONYMOUS, RegistryIndex

__all__ = [
    "ANONYMOUS",
    "DELEGATION_HEADER",
    "GROUP_HEADER",
    "TRUSTED_HOST",
    "auth_rules_for",
    "credentials_for",
    "current_registry",
    "group_refusal",
    "prepare",
]

log = logging.getLogger(__name__)

#: The message header in which a client asks for one of its groups.
GROUP_HEADER = "x-dirac-group"
#: The header naming the broker user a request acts for (delegation, see credentials_for).
DELEGATION_HEADER = "x-dirac-delegated-user"
#: The property that lets a sender act for another user (DIRAC's).
TRUSTED_HOST = "TrustedHost"
#: What a method needs when neither the configuration nor the handler says (DIRAC's rule).
DEFAULT_RULES = ("authenticated",)


class _Unavailable:
    """The Registry could not be loaded: every caller is anonymous until it can."""

    def __repr__(self) -> str:
        return "<registry unavailable>"


UNAVAILABLE = _Unavailable()


class _Snapshot:
    """What one configuration tree says about identity and authorization, indexed once."""

    __slots__ = ("auth", "registry", "rules", "tree")

    def __init__(self, tree: dict[str, Any]) -> None:
        self.tree = tree
        #: auth_rules_for's answers for this tree, by (service, handler class, method)
        self.rules: dict[tuple[str, type, str], Sequence[str] | None] = {}
        index = RegistryIndex(tree)
        self.registry: RegistryIndex | None = index if index.enabled else None
        #: "System/Service" -> {method or "Default": non-empty rule list}
        self.auth: dict[str, dict[str, list[str]]] = {}
        systems = tree.get("Systems")
        for system, section in (systems.items() if isinstance(systems, dict) else ()):
            services = section.get("Services") if isinstance(section, dict) else None
            for name, entry in (services.items() if isinstance(services, dict) else ()):
                rules = entry.get("Authorization") if isinstance(entry, dict) else None
                if isinstance(rules, dict):
                    listed = {method: as_list(value) for method, value in rules.items()}
                    self.auth[f"{system}/{name}"] = {m: r for m, r in listed.items() if r}


_NO_RULES: dict[str, list[str]] = {}
_snapshot: _Snapshot | None = None
_last_complaint = 0.0


def prepare(settings: Settings) -> None:
    """Worker start-up: reach the Configuration service with the worker's own broker
    settings, and start loading the configuration in the background (requests wait
    for the first load)."""
    gConfigurationData.setSettings(settings)
    threading.Thread(target=gConfigurationData.ensureLoaded, daemon=True,
                     name="dirac-cs-first-load").start()


def _current() -> _Snapshot | _Unavailable:
    """The snapshot of the worker's configuration, rebuilt when the configuration changes."""
    global _snapshot, _last_complaint
    tree = gConfigurationData.getServedTree()
    if gConfigurationData.state == FAILED:
        now = time.monotonic()
        if now - _last_complaint > 60:
            _last_complaint = now
            log.error("no configuration (%s): every caller is anonymous until it loads",
                      gConfigurationData.error)
        return UNAVAILABLE
    snapshot = _snapshot
    if snapshot is None or snapshot.tree is not tree:
        snapshot = _snapshot = _Snapshot(tree)
    return snapshot


def current_registry() -> RegistryIndex | _Unavailable | None:
    """The Registry of the worker's configuration; None when there is none (dev mode)."""
    snapshot = _current()
    return snapshot if snapshot is UNAVAILABLE else snapshot.registry  # type: ignore[union-attr]


def _requested_group(headers: dict[str, Any] | None, name: str = GROUP_HEADER) -> str | None:
    if not headers:
        return None
    value = headers.get(name)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return None
    return value.strip() or None


def credentials_for(broker_user: str | None, headers: dict[str, Any] | None = None
                    ) -> dict[str, Any]:
    """The caller's credentials (``username``, ``group``, ``properties``, ``DN``...).

    ``broker_user`` is the message's broker-validated ``user_id``; ``headers`` may ask
    for a group (``x-dirac-group``), honoured only for a member of that group.

    Delegation (DIRAC's rule): ``x-dirac-delegated-user`` names the broker user the
    request acts for, e.g. the user logged in to ``dirac-webapp``.  It is honoured only
    when the sender's own Registry entry has the ``TrustedHost`` property; the
    credentials are then the named user's (with ``delegatedBy``: the sender).  From
    anyone else, or for a user the Registry does not know, the request is refused
    (``delegationRefused``; see :func:`group_refusal`).
    """
    delegated = _requested_group(headers, DELEGATION_HEADER)
    if delegated is not None:
        return _delegated_credentials(broker_user, delegated, headers)
    if not broker_user:
        return {"username": ANONYMOUS, "group": "", "properties": []}
    registry = current_registry()
    if registry is None:
        return {"username": broker_user, "group": "", "properties": [],
                "brokerUser": broker_user}
    if registry is UNAVAILABLE:
        return {"username": ANONYMOUS, "group": "", "properties": [],
                "brokerUser": broker_user}
    return registry.credentials(broker_user, _requested_group(headers))  # type: ignore[union-attr]


def _delegated_credentials(sender: str | None, delegated: str,
                           headers: dict[str, Any] | None) -> dict[str, Any]:
    """The credentials of a delegated request (see :func:`credentials_for`)."""
    refused = {"username": ANONYMOUS, "group": "", "properties": [],
               "brokerUser": sender or ""}
    registry = current_registry() if sender else None
    if not isinstance(registry, RegistryIndex):
        return {**refused, "delegationRefused": "no Registry: nobody may act for another user"}
    own = registry.credentials(sender)  # type: ignore[arg-type]
    if TRUSTED_HOST not in (own.get("properties") or ()):
        return {**refused, "delegationRefused": f"{sender!r} lacks the {TRUSTED_HOST} property"}
    creds = registry.credentials(delegated, _requested_group(headers))
    if creds.get("username") == ANONYMOUS:
        return {**refused, "delegationRefused": f"the Registry knows no user {delegated!r}"}
    creds["delegatedBy"] = own.get("username")
    return creds


def group_refusal(credentials: dict[str, Any]) -> DReturnType | None:
    """S_ERROR(ENOAUTH) for a caller that asked for a group it is not in, or that asked
    to act for another user without the right to; else None."""
    if "delegationRefused" in credentials:
        log.warning("refused: broker user %s asked to act for another user: %s",
                    credentials.get("brokerUser"), credentials["delegationRefused"])
        return S_ERROR(ENOAUTH, f"delegation refused ({DELEGATION_HEADER}): "
                                f"{credentials['delegationRefused']}")
    if credentials.get("validGroup") is False:
        log.warning("refused: %s (broker user %s) asked for group %r, not one of its groups",
                    credentials.get("username"), credentials.get("brokerUser"),
                    credentials.get("group"))
        return S_ERROR(ENOAUTH, f"user {credentials.get('username')!r} is not a member of "
                                f"group {credentials.get('group')!r} (asked for with "
                                f"{GROUP_HEADER}, e.g. from DIRAC_GROUP)")
    return None


def auth_rules_for(service: str, handler_cls: type, method: str) -> Sequence[str] | None:
    """The rules a call of ``service.method`` must pass, first found wins:

    1. the configuration's ``/Systems/<System>/Services/<Service>/Authorization/<method>``;
    2. the handler's ``auth_<method>``;
    3. the configuration's ``.../Authorization/Default``;
    4. ``["authenticated"]`` (DIRAC's rule) - or, with no Registry at all (dev mode),
       None: open to every caller, as before there was a Registry.

    The lists returned are shared: read them, do not modify them.
    """
    snapshot = _current()
    if snapshot is UNAVAILABLE:
        return _rules_for(UNAVAILABLE, service, handler_cls, method)
    key = (service, handler_cls, method)
    try:
        return snapshot.rules[key]  # type: ignore[union-attr]
    except KeyError:
        rules = _rules_for(snapshot, service, handler_cls, method)
        if find_export(handler_cls, method) is not None:  # not for any name from the wire
            snapshot.rules[key] = rules  # type: ignore[union-attr]
        return rules


def _rules_for(snapshot: _Snapshot | _Unavailable, service: str, handler_cls: type,
               method: str) -> Sequence[str] | None:
    section = _NO_RULES if snapshot is UNAVAILABLE else \
        snapshot.auth.get(service, _NO_RULES)  # type: ignore[union-attr]
    rules = section.get(method)
    if rules:
        return rules
    coded = getattr(handler_cls, "auth_" + method, None)
    if coded is not None:
        return as_list(coded) if isinstance(coded, str) else coded
    rules = section.get("Default")
    if rules:
        return rules
    if snapshot is not UNAVAILABLE and snapshot.registry is None:  # type: ignore[union-attr]
        return None
    return DEFAULT_RULES
