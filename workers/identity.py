"""Who is calling, and what may they call: identity and authorization on the worker.

RabbitMQ refuses a message whose ``user_id`` property differs from the user of the
connection that published it, so ``user_id`` is the one fact about the caller a
worker can trust.  A registry (workers/registry.py; the DIRAC layer's reads the
configuration's ``/Registry``) maps that broker user to a DIRAC user: username, DN,
groups, and the group's properties.
The caller may *ask* for one of its groups with the ``x-dirac-group`` header (set
by the client from ``DIRAC_GROUP``); a group it is not a member of gets the request
refused with ``ENOAUTH``.  Nothing else in a request is believed.

With DIRAC's registry, the worker's configuration comes from the file named by
``DIRAC_CS_FILE`` when set (re-read when it changes), else the ``Configuration/Server``
service (kept current by a refresher thread, every ``DIRAC_CS_REFRESH`` seconds).  See
docs/security.md.  This module imports nothing of DIRAC: the registry is found through
the ``diracmq.registry`` entry point group (or set with ``use_registry``).

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
import time
from collections.abc import Mapping, Sequence
from typing import Any

from diracmq.broker.config import Settings
from diracmq.broker.derrno import ENOAUTH
from diracmq.broker.returnvalues import S_ERROR, DReturnType
from diracmq.workers.handler import find_export
from diracmq.workers.registry import ANONYMOUS, RegistryMode, RegistryView, get_registry

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

# RegistryMode's members as plain module globals: an Enum class attribute look-up costs
# more than the rest of a check, and these run several times per request.
_ENFORCED, _OPEN, _UNAVAILABLE = RegistryMode.ENFORCED, RegistryMode.OPEN, RegistryMode.UNAVAILABLE
_NO_RULES: Mapping[str, Sequence[str]] = {}
#: auth_rules_for's answers, by (service, handler class, method), for one registry state
#: (the view they were derived from): a new state starts an empty cache.
_rules_cache: tuple[RegistryView | None, dict[tuple[str, type, str], Sequence[str] | None]] = (
    None, {})
_last_complaint = 0.0


def prepare(settings: Settings) -> None:
    """Worker start-up: the registry starts loading with the worker's own broker settings,
    in the background (requests wait for the first load).  Raises
    :class:`~diracmq.workers.registry.RegistryNotFound` when no registry is installed."""
    get_registry().start(settings)


def _current() -> RegistryView:
    """The registry's current state; logs (at most once a minute) when it is unavailable."""
    global _last_complaint
    view = get_registry().current()
    if view.mode is _UNAVAILABLE:
        now = time.monotonic()
        if now - _last_complaint > 60:
            _last_complaint = now
            log.error("no registry (%s): every caller is anonymous until it loads",
                      view.problem)
    return view


def current_registry() -> RegistryView | None:
    """The registry's current state; None when nothing is registered (dev mode)."""
    view = _current()
    return None if view.mode is _OPEN else view


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
    if registry.mode is not _ENFORCED:
        return {"username": ANONYMOUS, "group": "", "properties": [],
                "brokerUser": broker_user}
    return registry.credentials(broker_user, _requested_group(headers))


def _delegated_credentials(sender: str | None, delegated: str,
                           headers: dict[str, Any] | None) -> dict[str, Any]:
    """The credentials of a delegated request (see :func:`credentials_for`)."""
    refused = {"username": ANONYMOUS, "group": "", "properties": [],
               "brokerUser": sender or ""}
    registry = current_registry() if sender else None
    if registry is None or registry.mode is not _ENFORCED or not sender:
        return {**refused, "delegationRefused": "no Registry: nobody may act for another user"}
    own = registry.credentials(sender, None)
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

    1. the registry's configured rule for the method (DIRAC's registry: the
       configuration's ``/Systems/<System>/Services/<Service>/Authorization/<method>``);
    2. the handler's ``auth_<method>``;
    3. the registry's configured ``Default`` (``.../Authorization/Default``);
    4. ``["authenticated"]`` (DIRAC's rule) - or, with nobody registered (dev mode),
       None: open to every caller, as before there was a Registry.

    The lists returned are shared: read them, do not modify them.
    """
    global _rules_cache
    view = _current()
    if view.mode is _UNAVAILABLE:
        return _rules_for(view, service, handler_cls, method)
    cached_view, cache = _rules_cache
    if cached_view is not view:
        cache = {}
        _rules_cache = (view, cache)
    key = (service, handler_cls, method)
    try:
        return cache[key]
    except KeyError:
        rules = _rules_for(view, service, handler_cls, method)
        if find_export(handler_cls, method) is not None:  # not for any name from the wire
            cache[key] = rules
        return rules


def _as_rules(value: Any) -> Sequence[str] | None:
    """An ``auth_`` attribute as a rule list: a comma-separated string is split, as DIRAC
    reads list options; a list is used as it is."""
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value  # type: ignore[no-any-return]  # handler-supplied; dispatch checks it


def _rules_for(view: RegistryView, service: str, handler_cls: type,
               method: str) -> Sequence[str] | None:
    unavailable = view.mode is _UNAVAILABLE
    section = _NO_RULES if unavailable else view.authorization(service)
    rules = section.get(method)
    if rules:
        return rules
    coded = getattr(handler_cls, "auth_" + method, None)
    if coded is not None:
        return _as_rules(coded)
    rules = section.get("Default")
    if rules:
        return rules
    if view.mode is _OPEN:
        return None
    return DEFAULT_RULES
