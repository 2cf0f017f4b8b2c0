"""``DIRAC.initialize()`` when the broker is away, as a script at import sees it: DIRAC's
``require_auth`` semantics (required: a clear ``DIRACInitError`` after the connect
timeout; not required: a warning and the script goes on), and a broker away for a moment
is waited for.  Each case is a subprocess; the broker is reached through a TCP proxy
that refuses connections until told otherwise (the broker itself is not touched)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from diracmq_testing import free_closed_port
from fault.tcpproxy import TcpProxy

pytestmark = pytest.mark.timeout(120)

SCRIPT = """
import sys
import DIRAC
print("importing", flush=True)
try:
    DIRAC.initialize(require_auth=sys.argv[1] == "required")
except DIRAC.DIRACInitError as exc:
    print("DIRACInitError:", exc, flush=True)
    raise SystemExit(1)
print("initialized", flush=True)
"""


def _env(url: str, connect_timeout: float) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DIRAC_", "DIRACTEST_", "PYTHONPATH"))}
    env.update(DIRAC_BROKER_URL=url, DIRAC_BROKER_CONNECT_TIMEOUT=str(connect_timeout))
    return env


def _run(url: str, mode: str, connect_timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, mode], env=_env(url, connect_timeout),
                          capture_output=True, text=True, timeout=90,
                          stdin=subprocess.DEVNULL)


def test_required_auth_without_a_broker_says_what_failed():
    nowhere = f"amqp://guest:guest@127.0.0.1:{free_closed_port()}/%2F"
    done = _run(nowhere, "required", 1)
    assert done.returncode == 1, done.stderr
    assert "DIRACInitError: cannot initialize DIRAC: MQ connection failure ( 1142 : cannot " \
           "reach the broker at 127.0.0.1:" in done.stdout, done.stdout
    assert "Traceback" not in done.stderr


def test_not_required_the_script_goes_on_without_a_broker():
    nowhere = f"amqp://guest:guest@127.0.0.1:{free_closed_port()}/%2F"
    done = _run(nowhere, "optional", 1)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "importing\ninitialized\n"
    assert "Traceback" not in done.stderr


def test_a_broker_away_for_a_moment_is_waited_for(module_workers, vhost_url, tmp_path,
                                                  monkeypatch):
    monkeypatch.setenv("DIRAC_DATA_DIR", str(tmp_path))  # the worker's JobDB
    monkeypatch.setenv("DIRAC_JOBDB_URL", "")
    module_workers.start("WorkloadManagement", pythonpath=[])  # services exist on the vhost
    port = int(vhost_url.split("@", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
    with TcpProxy(port) as proxy:
        proxy.refuse(True)
        process = subprocess.Popen([sys.executable, "-c", SCRIPT, "required"],
                                   env=_env(proxy.url(vhost_url), 30), text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   stdin=subprocess.DEVNULL)
        try:
            # wait for the script's first refused attempt (its "retrying" warning)
            deadline = time.monotonic() + 60
            seen = ""
            while "unreachable" not in seen:
                assert time.monotonic() < deadline, seen
                line = process.stderr.readline()
                assert line, f"the script ended first: {process.stdout.read()}"
                seen += line
            proxy.refuse(False)
            stdout, stderr = process.communicate(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == 0, (stdout, seen, stderr)
    assert stdout == "importing\ninitialized\n"
