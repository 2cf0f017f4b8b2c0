"""The worker's registry interface: workers/ asks it and never imports DIRAC (no broker)."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from diracmq.broker.derrno import ENOAUTH
from diracmq.workers import identity, registry
from diracmq.workers.handler import S_OK, Request, RequestHandler, dispatch
from diracmq.workers.registry import (
    ENTRY_POINT_GROUP,
    OpenRegistry,
    RegistryMode,
    RegistryNotFound,
    load_registry,
    use_registry,
)

from DIRAC.ConfigurationSystem.Client.Helpers.Registry import ConfigurationRegistry

ROOT = Path(__file__).resolve().parents[2]
CORE = ("broker", "client", "workers")


def _dirac_imports(path: Path) -> list[str]:
    """Every import of DIRAC in a module: import statements, and import_module /
    __import__ calls with a literal name."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names = [node.args[0].value]
        found += [f"{path}:{node.lineno}: {name}" for name in names
                  if name == "DIRAC" or name.startswith("DIRAC.")]
    return found


def test_the_core_never_imports_dirac():
    modules = [path for folder in CORE for path in sorted((ROOT / folder).rglob("*.py"))]
    assert len(modules) > 15  # the scan really sees the packages
    assert [hit for path in modules for hit in _dirac_imports(path)] == []


def test_the_scan_finds_each_form_of_import(tmp_path):
    module = tmp_path / "probe.py"
    module.write_text("import DIRAC\nfrom DIRAC.Core import x\nimport os, DIRAC.Core.y\n"
                      "importlib.import_module('DIRAC.Foo')\nfrom . import DIRAC\n"
                      "import DIRACX\n")
    hits = [hit.split(": ")[1] for hit in _dirac_imports(module)]
    assert hits == ["DIRAC", "DIRAC.Core", "DIRAC.Core.y", "DIRAC.Foo"]


def test_importing_the_whole_core_loads_no_dirac_module():
    names = [f"diracmq.{folder}.{path.stem}" for folder in CORE
             for path in sorted((ROOT / folder).glob("*.py")) if path.stem != "__init__"]
    code = ("import importlib, sys\n"
            f"for name in {names!r}: importlib.import_module(name)\n"
            "print(sorted(m for m in sys.modules if m == 'DIRAC' or m.startswith('DIRAC.')))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# ------------------------------------------------------------- finding one
def test_the_installed_registry_is_diracs():
    assert isinstance(load_registry(), ConfigurationRegistry)
    assert isinstance(load_registry("dirac"), ConfigurationRegistry)


def _pretend_installed(monkeypatch, *entries: tuple[str, str]) -> None:
    points = [EntryPoint(name, value, ENTRY_POINT_GROUP) for name, value in entries]
    monkeypatch.setattr(registry, "_installed", lambda: points)


def test_a_missing_registry_is_a_clear_error(monkeypatch):
    with pytest.raises(RegistryNotFound, match="no registry named 'nope'.*installed: dirac"):
        load_registry("nope")
    _pretend_installed(monkeypatch)
    with pytest.raises(RegistryNotFound, match="no registry installed.*use_registry"):
        load_registry()


def test_several_registries_need_a_name(monkeypatch):
    _pretend_installed(monkeypatch, ("a", "diracmq.workers.registry:OpenRegistry"),
                       ("b", "diracmq.workers.registry:OpenRegistry"))
    with pytest.raises(RegistryNotFound, match=r"several registries.*\(a, b\).*--registry"):
        load_registry()
    assert isinstance(load_registry("b"), OpenRegistry)


@pytest.mark.parametrize("value, message", [
    ("no_such_module_anywhere:Thing", "cannot be made: ModuleNotFoundError"),
    ("builtins:object", "gives object, which is not a Registry"),
])
def test_a_broken_registry_is_a_clear_error(monkeypatch, value, message):
    _pretend_installed(monkeypatch, ("broken", value))
    with pytest.raises(RegistryNotFound, match=message):
        load_registry()


def test_dirac_worker_refuses_an_unknown_registry_before_connecting():
    script = Path(sys.executable).with_name("dirac-worker")
    out = subprocess.run([str(script), "Configuration", "--registry", "nope",
                          "--broker-url", "amqp://guest:guest@127.0.0.1:9/%2F"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "no registry named 'nope'" in out.stderr and "Traceback" not in out.stderr


# ----------------------------------------------------- identity asks the registry
class _View:
    def __init__(self, mode: RegistryMode, rules: Mapping[str, Sequence[str]]) -> None:
        self.mode, self.problem, self.rules = mode, "down for a test", rules

    def credentials(self, broker_user: str, requested_group: str | None) -> dict[str, Any]:
        group = requested_group or "team"
        return {"username": f"user-{broker_user}", "group": group,
                "properties": ["Operator"] if group == "team" else [],
                "brokerUser": broker_user, **({} if group == "team" else {"validGroup": False})}

    def authorization(self, service: str) -> Mapping[str, Sequence[str]]:
        return self.rules if service == "Test/Own" else {}


class _Own:
    """A registry of the test's own: its state is swapped by assigning ``view``."""

    def __init__(self, view: _View) -> None:
        self.view, self.started = view, []

    def start(self, settings: Any) -> None:
        self.started.append(settings)

    def current(self) -> _View:
        return self.view

    def refresh(self) -> None:
        pass


class OwnHandler(RequestHandler):
    auth_coded = ["all"]

    def export_coded(self):
        return S_OK(self.getRemoteCredentials()["username"])

    export_configured = export_plain = export_coded


@pytest.fixture
def own():
    chosen = _Own(_View(RegistryMode.ENFORCED, {"configured": ["Operator"],
                                                "Default": ["group:admins"]}))
    use_registry(chosen)
    yield chosen
    use_registry(None)


def test_identity_takes_credentials_and_rules_from_the_registry(own):
    identity.prepare("the settings")  # type: ignore[arg-type]  # start() just records them
    assert own.started == ["the settings"]
    creds = identity.credentials_for("bob", {"x-dirac-group": None})
    assert creds == {"username": "user-bob", "group": "team", "properties": ["Operator"],
                     "brokerUser": "bob"}
    refused = identity.group_refusal(identity.credentials_for("bob", {"x-dirac-group": "x"}))
    assert refused["Errno"] == ENOAUTH
    assert identity.auth_rules_for("Test/Own", OwnHandler, "configured") == ["Operator"]
    assert identity.auth_rules_for("Test/Own", OwnHandler, "coded") == ["all"]
    assert identity.auth_rules_for("Test/Own", OwnHandler, "plain") == ["group:admins"]
    assert identity.auth_rules_for("Test/Other", OwnHandler, "plain") == ("authenticated",)
    result = dispatch(OwnHandler, Request("Test/Own", "configured", (), credentials=creds),
                      identity.auth_rules_for("Test/Own", OwnHandler, "configured"))
    assert result == {"OK": True, "Value": "user-bob"}


def test_a_new_registry_state_replaces_the_cached_rules(own):
    assert identity.auth_rules_for("Test/Own", OwnHandler, "configured") == ["Operator"]
    own.view = _View(RegistryMode.ENFORCED, {"configured": ["group:ops"]})
    assert identity.auth_rules_for("Test/Own", OwnHandler, "configured") == ["group:ops"]


def test_an_unavailable_registry_makes_everyone_anonymous(own):
    own.view = _View(RegistryMode.UNAVAILABLE, {"configured": ["all"]})
    assert identity.credentials_for("bob")["username"] == "anonymous"
    # configured rules are not believed either: the handler's, else DIRAC's default
    assert identity.auth_rules_for("Test/Own", OwnHandler, "configured") == ("authenticated",)
    assert identity.auth_rules_for("Test/Own", OwnHandler, "coded") == ["all"]


def test_the_open_registry_is_dev_mode():
    use_registry(OpenRegistry())
    try:
        assert identity.current_registry() is None
        assert identity.credentials_for("guest", {"x-dirac-group": "admins"}) == {
            "username": "guest", "group": "", "properties": [], "brokerUser": "guest"}
        assert identity.auth_rules_for("Test/Own", OwnHandler, "plain") is None
        assert identity.auth_rules_for("Test/Own", OwnHandler, "coded") == ["all"]
    finally:
        use_registry(None)


def test_the_api_page_names_modules_and_registry_names_that_exist():
    """docs/api.md is the public API: each diracmq module it names imports, and its
    registry section names every public name of diracmq.workers.registry, each existing."""
    import importlib.util
    import re

    text = (ROOT / "docs" / "api.md").read_text()
    modules = set(re.findall(r"`(diracmq\.(?:broker|client|workers)(?:\.[a-z_]+)?)", text))
    assert len(modules) > 8
    for name in modules:  # a module, or a module's attribute (`diracmq.workers.dispatch`)
        parent, _, last = name.rpartition(".")
        if importlib.util.find_spec(name) is None:
            assert hasattr(importlib.import_module(parent), last), name
        else:
            importlib.import_module(name)
    section = text.split("### The worker's registry", 1)[1].split("\n## ", 1)[0]
    for name in registry.__all__:
        assert f"`{name}" in section, name
        assert hasattr(registry, name)
