"""The configuration file the operator edits: TOML, read into DIRAC's configuration tree.

The tree is nested dicts: a dict is a *section*, anything else is an *option*.  TOML
tables map to DIRAC's sections one to one, so ``[Registry.Users.alice] DN = "..."``
is DIRAC's ``/Registry/Users/alice/DN``.  docs/configuration-service.md describes the
sections this project gives a meaning to; everything else (``[Operations]``, ...)
is free-form and only read by whoever asks for it.

The *version* of a configuration is a hash of its content (not of the bytes: a
comment or re-indentation does not change it), so every ``Configuration/Server``
serving the same file reports the same version, across restarts and machines.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import time
import tomllib
from pathlib import Path
from typing import Any

__all__ = [
    "CS_FILE_ENV",
    "ConfigurationError",
    "ConfigurationFile",
    "as_list",
    "cs_file_from_env",
    "parse",
    "validate",
    "version_of",
]

log = logging.getLogger(__name__)

#: Environment variable naming the operator's configuration file.
CS_FILE_ENV = "DIRAC_CS_FILE"

#: Seconds between two attempts to re-read a file that failed to load (a half-written
#: file is retried soon, a broken one is not re-parsed on every call).
_RETRY_BAD_FILE = 1.0


class ConfigurationError(ValueError):
    """A configuration file that cannot be used (bad TOML, or a bad Registry/Authorization)."""


def cs_file_from_env() -> Path | None:
    """The file named by ``DIRAC_CS_FILE`` (``~`` expanded), or None when it is not set."""
    named = os.environ.get(CS_FILE_ENV, "").strip()
    return Path(named).expanduser() if named else None


def _normalize(value: Any) -> Any:
    """TOML values as they travel: a bare ``time`` becomes ISO text (the codec lacks it)."""
    if isinstance(value, dict):
        return {str(k): _normalize(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalize(v) for v in value]
    if isinstance(value, _dt.time):
        return value.isoformat()
    return value


def parse(text: str, origin: str = "<configuration>") -> dict[str, Any]:
    """The tree of a TOML text; raise :class:`ConfigurationError` naming ``origin``."""
    try:
        tree = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{origin} is not valid TOML: {exc}") from None
    tree = _normalize(tree)
    problems = validate(tree)
    if problems:
        raise ConfigurationError(f"{origin}: " + "; ".join(problems))
    return tree


def version_of(tree: dict[str, Any]) -> str:
    """A stable version for ``tree``: 16 hex digits of the SHA-256 of its canonical JSON."""
    canonical = json.dumps(tree, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def as_list(value: Any) -> list[str] | None:
    """A list option as DIRAC reads it: a TOML array, or a comma-separated string.

    None when ``value`` is neither (a table, a number...).
    """
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    if isinstance(value, (list, tuple)):
        if all(isinstance(item, str) for item in value):
            return [item.strip() for item in value if item.strip()]
    return None


# ------------------------------------------------------------------ validation
def _tables(parent: dict[str, Any], key: str, where: str, problems: list[str]
            ) -> dict[str, dict[str, Any]]:
    """``parent[key]`` as a table of tables (empty if absent); report what is not."""
    value = parent.get(key, {})
    if not isinstance(value, dict):
        problems.append(f"{where}/{key} must be a section ([{where[1:].replace('/', '.')}."
                        f"{key}]), not {type(value).__name__}")
        return {}
    good = {}
    for name, entry in value.items():
        if isinstance(entry, dict):
            good[name] = entry
        else:
            problems.append(f"{where}/{key}/{name} must be a section, not an option")
    return good


def _string(entry: dict[str, Any], key: str, where: str, problems: list[str]) -> str | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        problems.append(f"{where}/{key} must be a non-empty string")
        return None
    return value.strip()


def _names(entry: dict[str, Any], key: str, where: str, problems: list[str]) -> list[str]:
    if key not in entry:
        return []
    names = as_list(entry[key])
    if names is None:
        problems.append(f"{where}/{key} must be a list of strings (or a comma-separated "
                        f"string)")
        return []
    return names


def validate(tree: dict[str, Any]) -> list[str]:
    """What is wrong with the parts of ``tree`` that have a meaning here (empty: nothing)."""
    problems: list[str] = []
    registry = tree.get("Registry", {})
    if not isinstance(registry, dict):
        return ["/Registry must be a section"]
    users = _tables(registry, "Users", "/Registry", problems)
    groups = _tables(registry, "Groups", "/Registry", problems)
    hosts = _tables(registry, "Hosts", "/Registry", problems)
    _names(registry, "DefaultGroup", "/Registry", problems)

    claimed: dict[str, str] = {}
    for kind, entries in (("Users", users), ("Hosts", hosts)):
        for name, entry in entries.items():
            where = f"/Registry/{kind}/{name}"
            broker_user = entry.get("BrokerUser", name)
            if not isinstance(broker_user, str) or not broker_user.strip():
                problems.append(f"{where}/BrokerUser must be a non-empty string")
                continue
            broker_user = broker_user.strip()
            if broker_user in claimed:
                problems.append(f"broker user {broker_user!r} is claimed by both "
                                f"{claimed[broker_user]} and {where}")
            claimed[broker_user] = where
            _string(entry, "DN", where, problems)
            if kind == "Users":
                for group in _names(entry, "Groups", where, problems):
                    if group not in groups:
                        problems.append(f"{where}/Groups names {group!r}, which is not "
                                        f"defined in /Registry/Groups")
            else:
                _names(entry, "Properties", where, problems)
    for name, entry in groups.items():
        where = f"/Registry/Groups/{name}"
        for user in _names(entry, "Users", where, problems):
            if user not in users:
                problems.append(f"{where}/Users names {user!r}, which is not defined in "
                                f"/Registry/Users")
        _names(entry, "Properties", where, problems)

    systems = tree.get("Systems", {})
    if not isinstance(systems, dict):
        problems.append("/Systems must be a section")
        return problems
    for system, section in systems.items():
        if not isinstance(section, dict):
            problems.append(f"/Systems/{system} must be a section")
            continue
        for service, entry in _tables(section, "Services", f"/Systems/{system}",
                                      problems).items():
            where = f"/Systems/{system}/Services/{service}"
            rules = entry.get("Authorization", {})
            if not isinstance(rules, dict):
                problems.append(f"{where}/Authorization must be a section")
                continue
            for method in rules:
                _names(rules, method, f"{where}/Authorization", problems)
    return problems


# ------------------------------------------------------------------ the file
class ConfigurationFile:
    """One configuration file, re-read when it changes (:meth:`check`).

    A file that stops parsing (or validating) keeps the last good content being
    served; :attr:`error` says why the new one was refused.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path).expanduser()
        self.tree: dict[str, Any] = {}
        self.version = ""
        #: When the current content was read (epoch seconds).
        self.loaded_at = 0.0
        #: Why the file on disk is not the content served (empty when it is).
        self.error = ""
        self._signature: tuple[int, ...] | None = None
        self._bad_signature: tuple[int, ...] | None = None
        self._bad_at = 0.0

    def _stat(self) -> tuple[int, ...]:
        st = self.path.stat()
        return (st.st_mtime_ns, st.st_ctime_ns, st.st_size, st.st_ino)

    def load(self) -> None:
        """Read the file now; raise :class:`ConfigurationError` (or OSError) if it is bad."""
        signature = self._stat()
        text = self.path.read_text(encoding="utf-8")
        tree = parse(text, str(self.path))
        self.tree, self.version = tree, version_of(tree)
        self.loaded_at = time.time()
        self._signature = signature
        self.error = ""

    def check(self) -> bool:
        """Re-read the file if it changed on disk; True when the content was replaced.

        Never raises: a missing or broken file keeps the previous content (logged once).
        """
        try:
            signature = self._stat()
        except OSError as exc:
            return self._refused(None, f"cannot read {self.path}: {exc}")
        if signature == self._signature:
            return False
        if signature == self._bad_signature and time.monotonic() - self._bad_at < _RETRY_BAD_FILE:
            return False
        old = self.version
        try:
            self.load()
        except (ConfigurationError, OSError, UnicodeDecodeError) as exc:
            return self._refused(signature, str(exc))
        self._bad_signature = None
        if self.version != old:
            log.info("configuration %s loaded: version %s", self.path, self.version)
            return True
        return False

    def _refused(self, signature: tuple[int, ...] | None, error: str) -> bool:
        if error != self.error:
            log.error("%s; still serving version %s", error, self.version or "(none)")
        self.error = error
        self._bad_signature = signature
        self._bad_at = time.monotonic()
        return False
