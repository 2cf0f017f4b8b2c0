"""The DIRAC documentation's scripts, verbatim, run as subprocesses against a real worker.

examples/seed_*.py are exact copies of the snippets of DIRAC's "Using DIRAC clients from
Python" page (the seed page this project started from): their SHA-256 digests, taken when
they were checked against the page, are recorded below, so a clone checks them without
the page.  They run with ``DIRAC_BROKER_URL`` pointing at this module's vhost, where a
``dirac-worker WorkloadManagement`` serves JobMonitoring.
"""

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from diracmq_testing import REPO_DIR, free_closed_port, url_user

pytestmark = pytest.mark.timeout(120)

EXAMPLES = REPO_DIR / "examples"
#: SHA-256 of each snippet (stripped) as published on the seed page.
SEED_DIGESTS = {
    "seed_network.py": "08b68fd7410586aec26ab2bad634458726bc06e2c23267d0965c9d1b907d5307",
    "seed_network_raise.py": "aa3d23141ff0e6ef6eaffbc281f17cf32ef32596da65e91a241a5400038e339f",
    "seed_list_jobs.py": "ebbc7babbe140b0d617027f39afd46886b538ecde37493fd7f65c19fcb4db3bc",
}
SCRIPTS = list(SEED_DIGESTS)


def list_jobs_output(vhost_url):
    """What the JobMonitoring snippet prints: the broker user is the caller ("guest")."""
    return re.compile(rf"Job IDs for {re.escape(url_user(vhost_url))} are: \[[0-9, ]*\]\n")


def run_script(path: Path, vhost_url: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DIRAC_", "DIRACTEST_", "PYTHONPATH"))}
    env["DIRAC_BROKER_URL"] = vhost_url
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=60, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def wms_worker(module_workers):
    """A real ``dirac-worker WorkloadManagement`` (DIRAC's own handlers, no extension)."""
    return module_workers.start("WorkloadManagement", pythonpath=[])


@pytest.mark.parametrize("name", SCRIPTS)
def test_examples_are_verbatim_copies_of_the_seed_page(name):
    text = (EXAMPLES / name).read_text().strip()
    digest = hashlib.sha256(text.encode()).hexdigest()
    assert digest == SEED_DIGESTS[name], f"examples/{name} differs from the seed page"


def test_network_snippet_raises_for_the_invalid_domain(vhost_url, tmp_path):
    done = run_script(EXAMPLES / "seed_network.py", vhost_url, tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stdout == " is running at ['']\n"
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: Failed to find IPs for fake-domain.invalid.org with "
                           "error: Can't get info for host fake-domain.invalid: "), done.stderr


def test_network_snippet_with_returnValueOrRaise(vhost_url, tmp_path):
    done = run_script(EXAMPLES / "seed_network_raise.py", vhost_url, tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stdout == " is running at ['']\n"
    last = done.stderr.strip().splitlines()[-1]
    assert re.match(r"[\w.]*SErrorException: Can't get info for host fake-domain.invalid: ",
                    last), done.stderr


def test_job_monitoring_snippet(wms_worker, vhost_url, tmp_path):
    done = run_script(EXAMPLES / "seed_list_jobs.py", vhost_url, tmp_path)
    assert done.returncode == 0, done.stderr
    assert list_jobs_output(vhost_url).fullmatch(done.stdout), done.stdout


def test_job_monitoring_snippet_with_initialize(wms_worker, vhost_url, tmp_path):
    """The same script with the ``DIRAC.initialize()`` line the DIRAC page asks for."""
    source = (EXAMPLES / "seed_list_jobs.py").read_text()
    assert "import DIRAC\n" in source
    script = tmp_path / "seed_list_jobs_initialize.py"
    script.write_text(source.replace("import DIRAC\n", "import DIRAC\nDIRAC.initialize()\n", 1))
    done = run_script(script, vhost_url, tmp_path)
    assert done.returncode == 0, done.stderr
    assert list_jobs_output(vhost_url).fullmatch(done.stdout), done.stdout


def test_initialize_without_a_broker_fails_clearly(tmp_path):
    """``DIRAC.initialize()`` with an unreachable broker raises at once, not at the first call."""
    script = tmp_path / "init.py"
    script.write_text("import DIRAC\nDIRAC.initialize()\nprint('initialized')\n")
    url = f"amqp://guest:guest@127.0.0.1:{free_closed_port()}/%2F"
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIRAC_")}
    env.update(DIRAC_BROKER_URL=url, DIRAC_BROKER_CONNECT_TIMEOUT="1")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          env=env, timeout=30, cwd=tmp_path)
    assert done.returncode == 1
    assert "initialized" not in done.stdout
    assert "DIRACInitError" in done.stderr and "MQ connection failure" in done.stderr, done.stderr


def test_job_monitoring_client_in_process(wms_worker, vhost_url):
    """The same calls from this process, after ``DIRAC.initialize(extra_config=...)``."""
    from diracmq.broker.config import set_default_settings

    import DIRAC
    from DIRAC.Core.Utilities.ReturnValues import returnValueOrRaise
    from DIRAC.WorkloadManagementSystem.Client.JobMonitoringClient import JobMonitoringClient

    try:
        DIRAC.initialize(extra_config={"url": vhost_url, "rpc_timeout": 30})
        jmc = JobMonitoringClient()
        me = returnValueOrRaise(jmc.whoami())
        assert me["username"] == url_user(vhost_url)
        jobs = returnValueOrRaise(jmc.getJobs({"owner": me["username"]}))
        assert isinstance(jobs, list) and all(isinstance(j, int) for j in jobs)
    finally:
        set_default_settings(None)
