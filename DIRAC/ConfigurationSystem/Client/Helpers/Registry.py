"""The Registry: who the broker users are, their groups, and what each group may do.

The configuration's ``[Registry]`` section (docs/configuration-service.md)::

    [Registry]
    DefaultGroup = "dirac_user"            # or a list: the first the user is in wins

    [Registry.Users.alice]
    BrokerUser = "alice"                   # the RabbitMQ user; default: the name
    DN = "/DC=org/DC=example/CN=Alice"     # optional
    Groups = ["dirac_user"]                # and/or list the user in the group

    [Registry.Groups.dirac_user]
    Users = ["alice"]
    Properties = ["NormalUser"]

    [Registry.Hosts.wms-worker]            # a service's own broker user
    BrokerUser = "dirac-wms"
    Properties = ["TrustedHost"]

:class:`RegistryIndex` answers "who is broker user X"; :class:`ConfigurationRegistry`
is the worker's registry (the interface of diracmq.workers.registry, declared under the
``diracmq.registry`` entry point in pyproject.toml): the worker's configuration, with
its ``/Registry`` and each service's ``Authorization`` rules, asked for every request.
The DIRAC-style functions below read the process's ``gConfig``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from diracmq.broker.config import Settings
from diracmq.broker.dn import DNError, dirac_to_rfc4514, rfc4514_to_dirac, strip_proxy_cns
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType
from diracmq.workers.registry import ANONYMOUS, RegistryMode

from DIRAC.ConfigurationSystem.Client.ConfigurationData import FAILED, gConfigurationData
from DIRAC.ConfigurationSystem.Client.ConfigurationFile import as_list

__all__ = [
    "ANONYMOUS",
    "HOSTS_GROUP",
    "ConfigurationRegistry",
    "RegistryIndex",
    "getAllGroups",
    "getAllUsers",
    "getDNForUsername",
    "getDefaultUserGroup",
    "getGroupsForUser",
    "getGroupsWithProperty",
    "getPropertiesForGroup",
    "getUsernameForBrokerUser",
    "getUsernameForDN",
    "getUsersInGroup",
]

#: The group of a caller registered under ``[Registry.Hosts]``.
HOSTS_GROUP = "hosts"


def _table(section: Any, key: str) -> dict[str, dict[str, Any]]:
    value = section.get(key) if isinstance(section, dict) else None
    if not isinstance(value, dict):
        return {}
    return {name: entry for name, entry in value.items() if isinstance(entry, dict)}


def _str(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


class RegistryIndex:
    """The Registry of one configuration tree, indexed for per-request lookups."""

    def __init__(self, tree: dict[str, Any]) -> None:
        registry = tree.get("Registry") if isinstance(tree, dict) else None
        registry = registry if isinstance(registry, dict) else {}
        self.users = _table(registry, "Users")
        self.hosts = _table(registry, "Hosts")
        self.groups = _table(registry, "Groups")
        self.default_groups = as_list(registry.get("DefaultGroup", [])) or []
        #: False when the Registry names no user and no host: identity is then the broker
        #: user itself ("dev mode", see workers/identity.py).
        self.enabled = bool(self.users or self.hosts)
        self.properties = {name: as_list(entry.get("Properties", [])) or []
                           for name, entry in self.groups.items()}
        members: dict[str, list[str]] = {name: [] for name in self.users}
        for name, entry in self.users.items():
            for group in as_list(entry.get("Groups", [])) or []:
                if group in self.groups and group not in members[name]:
                    members[name].append(group)
        for group, entry in self.groups.items():
            for user in as_list(entry.get("Users", [])) or []:
                if user in members and group not in members[user]:
                    members[user].append(group)
        #: username -> its groups (its own ``Groups`` order first, then file order).
        self.user_groups = members
        #: broker user -> ("user" | "host", name)
        self.by_broker_user: dict[str, tuple[str, str]] = {}
        for kind, entries in (("host", self.hosts), ("user", self.users)):
            for name, entry in entries.items():
                self.by_broker_user[_str(entry.get("BrokerUser")) or name] = (kind, name)
        #: certificate users: the broker's RFC 4514 spelling of each ``DN`` -> (kind, name)
        self.by_dn: dict[str, tuple[str, str]] = {}
        for kind, entries in (("host", self.hosts), ("user", self.users)):
            for name, entry in entries.items():
                for dn in as_list(entry.get("DN", [])) or []:
                    try:
                        self.by_dn[dirac_to_rfc4514(str(dn))] = (kind, name)
                    except DNError:
                        pass  # not a slash-form DN: it cannot match a certificate

    def lookup(self, broker_user: str) -> tuple[str, str] | None:
        """("user" | "host", name) of a broker user, or None (anonymous).

        A ``BrokerUser`` (or the entry's name) matches first; else a certificate user,
        whose broker user name is its subject DN in RFC 4514 form, matches the entry
        whose ``DN`` it is (as DIRAC does; a proxy's extra ``CN=<digits>`` dropped).
        """
        found = self.by_broker_user.get(broker_user)
        if found is not None or not self.by_dn or "=" not in broker_user:
            return found
        try:
            slash = strip_proxy_cns(rfc4514_to_dirac(broker_user))
            return self.by_dn.get(dirac_to_rfc4514(slash))
        except DNError:
            return None

    def default_group(self, username: str) -> str:
        """The group a user gets when it asks for none: the first ``DefaultGroup`` it is in,
        else its first group, else ""."""
        groups = self.user_groups.get(username, [])
        for group in self.default_groups:
            if group in groups:
                return group
        return groups[0] if groups else ""

    def credentials(self, broker_user: str, requested_group: str | None = None
                    ) -> dict[str, Any]:
        """The credentials of a caller whose broker user the broker vouched for.

        An unknown broker user is ``anonymous``.  A ``requested_group`` the caller is not
        a member of gives ``validGroup: False`` (the worker refuses the request).
        """
        found = self.lookup(broker_user)
        cert_dn = _certificate_dn(broker_user) if broker_user not in self.by_broker_user else ""
        if found is None:
            anonymous = {"username": ANONYMOUS, "group": "", "properties": [],
                         "brokerUser": broker_user}
            return {**anonymous, "DN": cert_dn} if cert_dn else anonymous
        kind, name = found
        if kind == "host":
            entry = self.hosts[name]
            creds: dict[str, Any] = {
                "username": name, "group": HOSTS_GROUP,
                "properties": list(as_list(entry.get("Properties", [])) or []),
                "brokerUser": broker_user, "isHost": True}
            allowed = [HOSTS_GROUP]
        else:
            entry = self.users[name]
            allowed = self.user_groups.get(name, [])
            group = self.default_group(name)
            creds = {"username": name, "group": group,
                     "properties": list(self.properties.get(group, [])),
                     "brokerUser": broker_user}
        dn = cert_dn or _str(entry.get("DN"))
        if dn:
            creds["DN"] = dn
        if requested_group and requested_group != creds["group"]:
            if requested_group not in allowed:
                creds.update(group=requested_group, properties=[], validGroup=False)
            else:
                creds.update(group=requested_group,
                             properties=list(self.properties.get(requested_group, [])))
        return creds


class _ConfigurationView:
    """One configuration tree as the worker's registry state (built once per tree)."""

    __slots__ = ("auth", "index", "mode", "problem", "tree")

    def __init__(self, tree: dict[str, Any]) -> None:
        self.tree = tree
        self.problem = ""
        self.index = RegistryIndex(tree)
        self.mode = RegistryMode.ENFORCED if self.index.enabled else RegistryMode.OPEN
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

    def credentials(self, broker_user: str, requested_group: str | None) -> dict[str, Any]:
        """The Registry's entry for the broker user (see :meth:`RegistryIndex.credentials`)."""
        return self.index.credentials(broker_user, requested_group)

    def authorization(self, service: str) -> Mapping[str, Sequence[str]]:
        """``/Systems/<System>/Services/<Service>/Authorization`` of ``"System/Service"``."""
        return self.auth.get(service, _NO_RULES)


class _UnavailableView:
    """The configuration could not be loaded (``problem`` says why)."""

    mode = RegistryMode.UNAVAILABLE

    def __init__(self, problem: str) -> None:
        self.problem = problem

    def credentials(self, broker_user: str, requested_group: str | None) -> dict[str, Any]:
        """Anonymous: nothing vouches for anyone."""
        return {"username": ANONYMOUS, "group": "", "properties": [],
                "brokerUser": broker_user}

    def authorization(self, service: str) -> Mapping[str, Sequence[str]]:
        """No configured rule."""
        return _NO_RULES


_NO_RULES: dict[str, list[str]] = {}


class ConfigurationRegistry:
    """The worker's registry from DIRAC's configuration (the process's ``gConfigurationData``):
    the file named by ``DIRAC_CS_FILE``, else the ``Configuration/Server`` service, kept
    current by its refresher.  A configuration without users or hosts is "dev mode"; one
    that never loaded (or a broken file) makes every caller anonymous."""

    def __init__(self) -> None:
        self._view: _ConfigurationView | None = None

    def start(self, settings: Settings) -> None:
        """Reach the Configuration service with the worker's broker settings and start the
        first load in the background (requests wait for it)."""
        gConfigurationData.setSettings(settings)
        threading.Thread(target=gConfigurationData.ensureLoaded, daemon=True,
                         name="dirac-cs-first-load").start()

    def current(self) -> _ConfigurationView | _UnavailableView:
        """The view of the served tree, rebuilt when the tree changes."""
        tree = gConfigurationData.getServedTree()
        if gConfigurationData.state == FAILED:
            return _UnavailableView(gConfigurationData.error or "not loaded")
        view = self._view
        if view is None or view.tree is not tree:
            view = self._view = _ConfigurationView(tree)
        return view

    def refresh(self) -> None:
        """Re-check the file, or ask the Configuration service for a newer version, now."""
        gConfigurationData.refresh()
def _certificate_dn(broker_user: str) -> str:
    """The slash-form DN of a certificate user's broker user name; "" for a password user."""
    if "=" not in broker_user:
        return ""
    try:
        return rfc4514_to_dirac(broker_user)
    except DNError:
        return ""


_index_lock = threading.Lock()
_index: tuple[int, str, RegistryIndex] | None = None


def _current() -> RegistryIndex:
    """The index of the process's configuration (rebuilt when its version changes)."""
    global _index
    tree = gConfigurationData.getTree()
    cached = _index
    if cached is not None and cached[0] == id(tree) and cached[1] == gConfigurationData.version:
        return cached[2]
    index = RegistryIndex(tree)
    with _index_lock:
        _index = (id(tree), gConfigurationData.version, index)
    return index


# ------------------------------------------------------------ DIRAC-style API
def getUsernameForBrokerUser(brokerUser: str) -> DReturnType:
    """S_OK(the DIRAC username of a broker user) or S_ERROR."""
    found = _current().lookup(brokerUser)
    if found is None or found[0] != "user":
        return S_ERROR(f"No username found for broker user {brokerUser}")
    return S_OK(found[1])


def getUsernameForDN(dn: str, usersList: list[str] | None = None) -> DReturnType:
    """S_OK(username) of the user with this DN, or S_ERROR."""
    index = _current()
    for name, entry in index.users.items():
        if usersList and name not in usersList:
            continue
        if _str(entry.get("DN")) == dn:
            return S_OK(name)
    return S_ERROR(f"No username found for dn {dn}")


def getDNForUsername(username: str) -> DReturnType:
    """S_OK([DN]) of a user, or S_ERROR when it has none."""
    entry = _current().users.get(username)
    dn = _str(entry.get("DN")) if entry else ""
    return S_OK([dn]) if dn else S_ERROR(f"No DN found for user {username}")


def getGroupsForUser(username: str) -> DReturnType:
    """S_OK([groups of the user]) or S_ERROR for an unknown user."""
    index = _current()
    if username not in index.users:
        return S_ERROR(f"No groups found for user {username}")
    return S_OK(list(index.user_groups[username]))


def getPropertiesForGroup(groupName: str, defaultValue: Any = None) -> Any:
    """The properties of a group, else ``defaultValue`` (``[]`` when None)."""
    index = _current()
    if groupName not in index.groups:
        return [] if defaultValue is None else defaultValue
    return list(index.properties[groupName])


def getUsersInGroup(groupName: str, defaultValue: Any = None) -> Any:
    """The members of a group, else ``defaultValue`` (``[]`` when None)."""
    index = _current()
    users = [name for name, groups in index.user_groups.items() if groupName in groups]
    if not users:
        return [] if defaultValue is None else defaultValue
    return users


def getGroupsWithProperty(propList: str | list[str]) -> DReturnType:
    """S_OK([groups having at least one of the properties])."""
    wanted = {propList} if isinstance(propList, str) else set(propList)
    index = _current()
    return S_OK([g for g, props in index.properties.items() if wanted & set(props)])


def getDefaultUserGroup() -> str:
    """The first ``/Registry/DefaultGroup`` (DIRAC's ``user`` when none is set)."""
    groups = _current().default_groups
    return groups[0] if groups else "user"


def getAllUsers() -> list[str]:
    """Every username of the Registry."""
    return list(_current().users)


def getAllGroups() -> list[str]:
    """Every group of the Registry."""
    return list(_current().groups)
