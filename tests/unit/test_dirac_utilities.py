"""DIRAC's small utilities at DIRAC's import paths: Network, ObjectLoader, JDL, rootPath,
written from what DIRAC's own unit tests expect of them."""

import os
import subprocess
import sys

import pytest
from diracmq.broker.derrno import EIMPERR, EWMSJDL

import DIRAC
from DIRAC.Core.DISET.RequestHandler import RequestHandler
from DIRAC.Core.Utilities.JDL import dumpCFGAsJDL, loadJDLAsCFG
from DIRAC.Core.Utilities.Network import (
    checkHostsMatch,
    discoverInterfaces,
    getFQDN,
    splitURL,
)
from DIRAC.Core.Utilities.ObjectLoader import ObjectLoader


def test_discover_interfaces_has_loopback():
    interfaces = discoverInterfaces()
    assert interfaces["lo"]["ip"].startswith("127.")
    for info in interfaces.values():
        assert set(info) == {"ip", "mac"}
        assert info["mac"].count(":") == 5


def test_fqdn_is_a_name():
    name = getFQDN()
    assert isinstance(name, str) and name and "localhost" not in name


@pytest.mark.parametrize(("host1", "host2", "valid", "expected"), [
    ("localhost", "localhost", True, True),
    ("localhost", "127.0.0.2", True, False),
    ("localhost", "example.invalid", False, None),
    ("example.invalid", "localhost", False, None),
])
def test_check_hosts_match(host1, host2, valid, expected):
    result = checkHostsMatch(host1, host2)
    assert result["OK"] is valid
    if valid:
        assert result["Value"] is expected


def test_split_url():
    assert splitURL("dips://host.example:9130/WorkloadManagement/JobMonitoring") == {
        "OK": True, "Value": ("dips", "host.example", 9130, "WorkloadManagement/JobMonitoring")}
    assert splitURL("/just/a/path")["OK"] is False


def test_object_loader_finds_objects_in_dirac():
    loader = ObjectLoader()
    assert loader is ObjectLoader()  # one per process, as DIRAC's singleton
    assert loader.loadObject("Core.Utilities.ObjectLoader")["Value"] is ObjectLoader
    assert loader.loadObject("Core.Utilities.Network", "getFQDN")["Value"] is getFQDN
    by_name = loader.getObjects("WorkloadManagementSystem.Service", ".*Handler")["Value"]
    by_class = loader.getObjects("WorkloadManagementSystem.Service",
                                 parentClass=RequestHandler)["Value"]
    assert sorted(by_name) == sorted(by_class)
    assert "WorkloadManagementSystem.Service.JobMonitoringHandler" in by_name


def test_object_loader_errors():
    missing = ObjectLoader().loadObject("Core.Utilities.NoSuchModule")
    assert missing["OK"] is False and missing["Errno"] == EIMPERR
    no_object = ObjectLoader().loadObject("Core.Utilities.Network", "nothingHere")
    assert no_object["Errno"] == EIMPERR and "does not contain" in no_object["Message"]


def test_object_loader_prefers_an_extension(tmp_path):
    package = tmp_path / "extpkg" / "Core" / "Utilities"
    package.mkdir(parents=True)
    for folder in (tmp_path / "extpkg", tmp_path / "extpkg" / "Core", package):
        (folder / "__init__.py").write_text("")
    (package / "Network.py").write_text("def getFQDN():\n    return 'from-extension'\n")
    code = ("from DIRAC.Core.Utilities.ObjectLoader import ObjectLoader\n"
            "print(ObjectLoader().loadObject('Core.Utilities.Network', 'getFQDN')['Value']())")
    env = {**os.environ, "DIRAC_EXTENSIONS": "extpkg", "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    assert done.stdout.strip() == "from-extension"


def test_jdl_as_tree_and_back():
    result = loadJDLAsCFG('[ Executable = "x"; CPUTime = 10; Sites = {"A", "B"}; '
                          'Sub = [ K = "v" ]; Requirements = other.X > 1 ]')
    tree, _ = result["Value"]
    assert tree == {"Executable": "x", "CPUTime": 10, "Sites": ["A", "B"], "Sub": {"K": "v"},
                    "Requirements": "other.X > 1"}
    again, _ = loadJDLAsCFG(dumpCFGAsJDL({k: v for k, v in tree.items()
                                          if k != "Requirements"}))["Value"]
    assert again == {k: v for k, v in tree.items() if k != "Requirements"}
    assert loadJDLAsCFG("[ Executable = ")["Errno"] == EWMSJDL


def test_root_path():
    assert os.path.isdir(DIRAC.rootPath)
