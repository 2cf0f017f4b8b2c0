"""Issue 11, case 13: a Configuration service that ran once on the broker and is
stopped now must not cost every command 10-22 s; the configuration is used again
once the service is back."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from diracmq.broker.config import Settings
from diracmq.broker.derrno import EMQNOWORKER

from DIRAC.ConfigurationSystem.Client.ConfigurationData import (
    FAILED,
    LOADED,
    ConfigurationData,
)

pytestmark = pytest.mark.timeout(180)

#: What a command may spend on a stopped Configuration service, at most.
BOUND = 5.0

CS_TOML = """
[Operations]
SupportEmail = "h11t@example.org"
"""


def _command(name: str) -> str:
    script = Path(sys.executable).with_name(name)
    return str(script) if script.exists() else name


def _run(name: str, url: str, home: Path, *args: str) -> tuple[float, subprocess.CompletedProcess]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DIRAC_", "DIRACTEST_", "PYTHONPATH"))}
    env.update(DIRAC_BROKER_URL=url, HOME=str(home))
    started = time.monotonic()
    done = subprocess.run([_command(name), *args], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    return time.monotonic() - started, done


def _start_configuration(hpool, cs_file: Path):
    return hpool.start("Configuration", threads=2, env={"DIRAC_CS_FILE": str(cs_file)})


def test_case13_commands_do_not_wait_for_a_stopped_configuration_service(
        hpool, vhost_url, tmp_path):
    """Case 13: after ``dirac-worker Configuration`` ran once and stopped,
    ``dirac-proxy-info`` and ``dirac-wms-job-status`` answer within a few seconds
    (here from WorkloadManagement, which still runs)."""
    cs_file = tmp_path / "cs.toml"
    cs_file.write_text(CS_TOML)
    configuration = _start_configuration(hpool, cs_file)
    hpool.start("WorkloadManagement", threads=2)
    assert configuration.stop() == 0
    home = tmp_path / "home"
    home.mkdir()

    took, done = _run("dirac-proxy-info", vhost_url, home)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "WorkloadManagement/JobMonitoring" in done.stdout, done.stdout
    assert took < BOUND, f"dirac-proxy-info took {took:.1f}s:\n{done.stderr}"

    took, done = _run("dirac-wms-job-status", vhost_url, home, "1")
    assert "Traceback" not in done.stderr, done.stderr
    assert took < BOUND, f"dirac-wms-job-status took {took:.1f}s:\n{done.stderr}"


def test_case13_failure_is_cached_and_the_service_used_again_once_back(
        hpool, vhost_url, tmp_path):
    """Case 13: a load while the service is stopped fails at once (EMQNOWORKER), is
    remembered (no second wait), and the next refresh after the service is back loads
    the configuration; ``dirac-proxy-info`` then asks Configuration/Server again."""
    cs_file = tmp_path / "cs.toml"
    cs_file.write_text(CS_TOML)
    assert _start_configuration(hpool, cs_file).stop() == 0
    data = ConfigurationData()
    data.setSettings(Settings.load(url=vhost_url, rpc_timeout=30.0, connect_timeout=5.0))
    data._auto_refresh = False  # this test drives the refreshes itself
    try:
        started = time.monotonic()
        result = data.load()
        took = time.monotonic() - started
        assert result.get("Errno") == EMQNOWORKER, result
        assert took < BOUND, f"the first load took {took:.1f}s"
        assert data.state == FAILED and data.serviceKnownDown()
        started = time.monotonic()
        assert data.getTree() == {}  # the failure is remembered: no second wait
        assert time.monotonic() - started < 0.5

        _start_configuration(hpool, cs_file)
        result = data.refresh()
        assert result["OK"], result
        assert data.state == LOADED and not data.serviceKnownDown()
        assert data.getTree()["Operations"]["SupportEmail"] == "h11t@example.org"
    finally:
        data.stopRefresher()
    home = tmp_path / "home"
    home.mkdir()
    took, done = _run("dirac-proxy-info", vhost_url, home)
    assert "Configuration/Server" in done.stdout, done.stdout + done.stderr
