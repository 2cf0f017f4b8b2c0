"""``./demo.sh`` as a new user runs it, on this module's vhost, with a quiet worker log
(``DIRAC_LOG_LEVEL=WARNING`` hides the INFO "worker ready" line the demo used to wait for:
it waits for the service to answer a ping instead)."""

import os
import subprocess

import pytest
from diracmq_testing import REPO_DIR, url_user

pytestmark = pytest.mark.timeout(300)


def test_demo_works_with_a_warning_log_level(vhost_url, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DIRAC_", "DIRACTEST_", "PYTHONPATH"))}
    env.update(DIRAC_BROKER_URL=vhost_url, DIRAC_LOG_LEVEL="WARNING", HOME=str(tmp_path),
               TMPDIR=str(tmp_path))
    done = subprocess.run(["./demo.sh"], cwd=REPO_DIR, env=env, capture_output=True,
                          text=True, timeout=280, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert f"Job IDs for {url_user(vhost_url)} are: [1, 2, 3, 4]" in done.stdout, done.stdout
    assert "worker ready: WorkloadManagement/JobMonitoring answers" in done.stdout + done.stderr
