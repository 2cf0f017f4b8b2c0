"""``gConfig``: DIRAC's reading API over a configuration tree, and how the tree is loaded."""

from __future__ import annotations

import os
import textwrap
import threading

import pytest
from diracmq.broker.config import Settings
from diracmq.broker.derrno import ECONF, ESECTION

from DIRAC.ConfigurationSystem.Client import ConfigurationData as cd
from DIRAC.ConfigurationSystem.Client.ConfigurationClient import (
    ConfigurationClient,
    convert_value,
)
from DIRAC.ConfigurationSystem.Client.ConfigurationData import (
    ConfigurationData,
    decode_compressed,
    deep_merge,
    encode_compressed,
)

CS = textwrap.dedent('''\
    [Registry.Users.alice]
    DN = "/DC=org/CN=Alice"
    Groups = ["users"]

    [Registry.Groups.users]
    Properties = ["NormalUser"]

    [Operations]
    Sites = "LCG.CERN.ch, LCG.IN2P3.fr"
    MaxJobs = "42"
    Ratio = 0.5
    Enabled = "yes"
    Flag = true
    Names = ["a", "b"]

    [Operations.Shifter]
    Admin = "alice"
    ''')


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "cs.toml"
    path.write_text(CS)
    data = ConfigurationData()
    assert data.useFile(path)["OK"]
    yield data
    data.reset()


@pytest.fixture
def config(data):
    return ConfigurationClient(data)


def test_get_value_with_dirac_paths(config):
    assert config.getValue("/Registry/Users/alice/DN") == "/DC=org/CN=Alice"
    assert config.getValue("Registry/Users/alice/DN") == "/DC=org/CN=Alice"
    assert config.getValue("/Registry/Users/bob/DN", "none") == "none"
    assert config.getValue("/Registry/Users/alice", "a section") == "a section"
    assert config.getValue("/Registry/Users/alice/DN/deeper", 1) == 1


def test_get_value_converts_to_the_type_of_the_default(config):
    assert config.getValue("/Operations/Sites", []) == ["LCG.CERN.ch", "LCG.IN2P3.fr"]
    assert config.getValue("/Operations/Names", []) == ["a", "b"]
    assert config.getValue("/Operations/Names", "") == "a, b"
    assert config.getValue("/Operations/MaxJobs", 0) == 42
    assert config.getValue("/Operations/MaxJobs", 0.0) == 42.0
    assert config.getValue("/Operations/Ratio", 1.0) == 0.5
    assert config.getValue("/Operations/Enabled", False) is True
    assert config.getValue("/Operations/Flag", False) is True
    assert config.getValue("/Operations/Sites", 7) == 7  # not a number: the default
    assert config.getValue("/Operations/Names", ()) == ("a", "b")


def test_get_value_returns_copies(config):
    names = config.getValue("/Operations/Names")
    names.append("mutated")
    assert config.getValue("/Operations/Names") == ["a", "b"]


@pytest.mark.parametrize("value, like, expected", [
    ("no", True, False), ("maybe", True, True), (1, "", "1"), (["x"], 0, 0),
    ("3.7", 0, 3), (True, 0, 0), ({"a": 1}, [], []), (5, [], [5]), ("x", {}, {}),
])
def test_convert_value(value, like, expected):
    assert convert_value(value, like) == expected


def test_get_option(config):
    assert config.getOption("/Operations/Shifter/Admin") == {"OK": True, "Value": "alice"}
    assert config.getOption("/Operations/MaxJobs", 0)["Value"] == 42
    missing = config.getOption("/Operations/Nope")
    assert not missing["OK"] and "/Operations/Nope does not exist" in missing["Message"]
    assert not config.getOption("/Operations/Shifter")["OK"]  # a section, not an option


def test_sections_and_options(config):
    assert config.getSections("/")["Value"] == ["Registry", "Operations"]
    assert config.getSections("/Registry")["Value"] == ["Users", "Groups"]
    assert config.getOptions("/Operations/Shifter")["Value"] == ["Admin"]
    options = config.getOptionsDict("/Operations")["Value"]
    assert options["Sites"] == "LCG.CERN.ch, LCG.IN2P3.fr" and "Shifter" not in options
    assert config.getOptionsDictRecursively("/Operations")["Value"]["Shifter"] == {
        "Admin": "alice"}
    for method in (config.getSections, config.getOptions, config.getOptionsDict):
        result = method("/Nowhere")
        assert not result["OK"] and result["Errno"] == ESECTION


def test_the_dirac_import_paths():
    import DIRAC
    from DIRAC import gConfig
    from DIRAC.ConfigurationSystem.Client.Config import gConfig as config_gconfig

    assert gConfig is config_gconfig is DIRAC.gConfig
    assert gConfig.data is cd.gConfigurationData


def test_the_overlay_is_merged_over_the_served_tree(data, config):
    data.setOverlay({"Operations": {"MaxJobs": 7, "Local": "x"}})
    assert config.getValue("/Operations/MaxJobs", 0) == 7
    assert config.getValue("/Operations/Local") == "x"
    assert config.getValue("/Operations/Sites", []) == ["LCG.CERN.ch", "LCG.IN2P3.fr"]
    assert data.getServedTree()["Operations"]["MaxJobs"] == "42"  # what workers trust


def test_deep_merge_and_compression():
    assert deep_merge({"a": {"b": 1, "c": 2}, "d": 1}, {"a": {"b": 3}, "e": 4}) == {
        "a": {"b": 3, "c": 2}, "d": 1, "e": 4}
    tree = {"Registry": {"Users": {"alice": {"Groups": ["x"]}}}, "n": 1}
    assert decode_compressed(encode_compressed(tree)) == tree
    with pytest.raises(ValueError, match="malformed"):
        decode_compressed(b"not zlib")


def test_loads_lazily_from_dirac_cs_file(tmp_path, monkeypatch):
    path = tmp_path / "cs.toml"
    path.write_text(CS)
    monkeypatch.setenv("DIRAC_CS_FILE", str(path))
    data = ConfigurationData()
    assert data.state == "unloaded"
    assert ConfigurationClient(data).getValue("/Operations/Shifter/Admin") == "alice"
    assert data.state == "loaded" and data.source == f"file:{path}"
    data.reset()


def test_a_local_file_is_re_checked_and_waiters_wake(data, tmp_path, monkeypatch):
    monkeypatch.setattr(cd, "FILE_CHECK", 0.0)
    data._next_file_check = 0.0  # (the fixture loaded it with the 1 s delay)
    path = tmp_path / "cs.toml"
    old = data.version
    woke = []
    waiter = threading.Thread(target=lambda: woke.append(data.waitForNewVersion(old, 10)))
    waiter.start()
    before = path.stat().st_mtime_ns
    path.write_text(CS.replace('"42"', '"43"'))
    os.utime(path, ns=(before + 10_000_000, before + 10_000_000))
    assert ConfigurationClient(data).getValue("/Operations/MaxJobs", 0) == 43
    waiter.join(10)
    assert woke == [True] and data.version != old
    assert data.waitForNewVersion(data.version, 0.05) is False


def test_a_bad_local_file_fails_and_is_used_once_fixed(tmp_path, monkeypatch):
    monkeypatch.setattr(cd, "FILE_CHECK", 0.0)
    path = tmp_path / "cs.toml"
    path.write_text("[Registry\n")
    data = ConfigurationData()
    result = data.useFile(path)
    assert not result["OK"] and result["Errno"] == ECONF and data.state == "failed"
    path.write_text(CS)
    data._file._bad_at = 0.0
    assert ConfigurationClient(data).getValue("/Operations/Shifter/Admin") == "alice"
    assert data.state == "loaded"
    data.reset()


def test_an_unreachable_service_leaves_an_empty_configuration(monkeypatch):
    """No broker: reads return their defaults (and say why in ``error``), never raise."""
    from diracmq_testing import free_closed_port

    monkeypatch.delenv("DIRAC_CS_FILE", raising=False)
    data = ConfigurationData()
    data.setSettings(Settings(url=f"amqp://guest:guest@127.0.0.1:{free_closed_port()}/%2F",
                              connect_timeout=0.5, rpc_timeout=2))
    try:
        assert ConfigurationClient(data).getValue("/Operations/X", "default") == "default"
        assert data.state == "failed" and "MQ connection failure" in data.error
    finally:
        data.reset()
        from diracmq.client.transport import close_all

        close_all()


def test_the_refresh_interval(monkeypatch):
    data = ConfigurationData()
    data.setSettings(Settings(cs_refresh=12.0))
    assert data.refreshInterval == 12.0
    data._interval = 3.0  # what startRefresher(3) sets
    assert data.refreshInterval == 3.0
    with pytest.raises(ValueError):
        data.startRefresher(0)
    monkeypatch.setenv("DIRAC_CS_REFRESH", "42")
    assert Settings.load().cs_refresh == 42.0
