"""``dirac-webapp``'s output sandbox download, end to end in a real headless Chromium.

Its own deployment (the job path needs what tests/integration/test_webapp.py does not
run): real broker users alice, bob, carol (JobMonitor: sees every job in the monitor,
manages none), the web application (a TrustedHost) and a pilot (GenericPilot); real
``dirac-worker WorkloadManagement`` and ``Optimizers``; a real ``dirac-job-agent`` that
runs alice's job to Done; a real ``dirac-webapp``.

``DIRACMQ_SCREENSHOT_DIR=docs`` saves the job page (with its download link) as
docs/webapp-job.png.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
import tarfile
import textwrap
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from diracmq.broker.derrno import ENOAUTH
from diracmq.client.base import Client
from diracmq.client.context import call_context
from diracmq_testing import WorkerPool, environment, url_vhost, wait_until

from DIRAC.Interfaces.API.Dirac import Dirac
from DIRAC.Interfaces.API.Job import Job
from DIRAC.WorkloadManagementSystem.Client import JobStatus as JS
from DIRAC.WorkloadManagementSystem.Client.SandboxStoreClient import SandboxStoreClient

# HELD_ONLY: the web application's peak RSS (VmHWM) is then what it held at once
from .test_jobs_e2e import HELD_ONLY
from .test_webapp import (
    CHROMIUM,
    LIVE,
    browser,  # noqa: F401 (the fixture, used by login below)
    shot,
    start_webapp,
    user_settings,
)
from .wms_conftest_helpers import broker_user, ok

pytestmark = pytest.mark.timeout(300)

BIN = Path(sys.executable).parent
BIG_MB = 100


class Deployment:
    def __init__(self, base: str, users: dict, workdir: Path, webapp: subprocess.Popen,
                 vhost: str) -> None:
        self.base = base
        self.users = users  # role -> (broker user, password)
        self.workdir = workdir
        self.webapp = webapp
        self.vhost = vhost

    def settings(self, who: str):
        return user_settings(self.vhost, *self.users[who])

    def cookie(self, who: str) -> str:
        """A session cookie of ``who``, got by posting the login form."""
        name, password = self.users[who]
        data = f"username={name}&password={password}".encode()
        opener = urllib.request.build_opener(NoRedirect)
        with contextlib.suppress(urllib.error.HTTPError):
            opener.open(urllib.request.Request(self.base + "/login", data=data), timeout=10)
        return NoRedirect.last_cookie


class NoRedirect(urllib.request.HTTPRedirectHandler):
    """Keeps the login answer's Set-Cookie (a redirect would drop it)."""

    last_cookie = ""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        NoRedirect.last_cookie = headers["Set-Cookie"].split(";", 1)[0]
        return None


@pytest.fixture(scope="module")
def deployment(vhost_url, private_vhost, tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    vhost = url_vhost(vhost_url)
    workdir = tmp_path_factory.mktemp("webapp-sandbox")
    with contextlib.ExitStack() as stack:
        users = {who: stack.enter_context(broker_user(vhost, who))
                 for who in ("alice", "bob", "carol", "webapp", "pilot")}
        cs = workdir / "cs.toml"
        cs.write_text(textwrap.dedent(f'''\
            [Registry]
            DefaultGroup = "dirac_user"
            [Registry.Users.alice]
            BrokerUser = "{users['alice'][0]}"
            Groups = ["dirac_user"]
            [Registry.Users.bob]
            BrokerUser = "{users['bob'][0]}"
            Groups = ["dirac_user"]
            [Registry.Users.carol]
            BrokerUser = "{users['carol'][0]}"
            Groups = ["monitors"]
            [Registry.Users.pilot]
            BrokerUser = "{users['pilot'][0]}"
            Groups = ["pilots"]
            [Registry.Groups.dirac_user]
            Properties = ["NormalUser"]
            [Registry.Groups.monitors]
            Properties = ["JobMonitor"]
            [Registry.Groups.pilots]
            Properties = ["GenericPilot"]
            [Registry.Hosts.webapp]
            BrokerUser = "{users['webapp'][0]}"
            Properties = ["TrustedHost"]
            '''))
        pool = WorkerPool(vhost_url, workdir, private_vhost)
        env = {"DIRAC_CS_FILE": str(cs), "DIRAC_DATA_DIR": str(workdir / "data"),
               "DIRAC_JOBDB_URL": "", "DIRAC_WMS_OPTIMIZER_SWEEP": "0.5", "DIRAC_GROUP": None}
        with environment(**env):
            pool.start("WorkloadManagement", pythonpath=[])
            pool.start("Optimizers", pythonpath=[])
        stack.callback(pool.stop_all)
        webapp, base = start_webapp(stack, workdir,
                                    user_settings(vhost, *users["webapp"]).url,
                                    "--refresh", "1", **HELD_ONLY)
        yield Deployment(base, users, workdir, webapp, vhost)


@pytest.fixture
def login(deployment, browser):  # noqa: F811 (the fixture imported above)
    contexts = []

    def make(who: str):
        context = browser.new_context(viewport={"width": 1500, "height": 900},
                                      accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(LIVE)
        page.goto(deployment.base + "/login")
        name, password = deployment.users[who]
        page.fill("#username", name)
        page.fill("#password", password)
        page.click("#login")
        page.wait_for_selector("#whoami")
        return page

    yield make
    for context in contexts:
        context.close()


def run_agent(deployment: Deployment, site: str) -> None:
    """One ``dirac-job-agent`` (as the pilot) for ``site``, until it ran one job."""
    env = dict(os.environ, DIRAC_BROKER_URL=deployment.settings("pilot").url, DIRAC_GROUP="",
               PYTHONUNBUFFERED="1")
    env.pop("DIRAC_CS_FILE", None)
    done = subprocess.run(
        [str(BIN / "dirac-job-agent"), "--site", site, "--max-jobs", "1", "--poll", "0.2",
         "--heartbeat", "0.5", "--workdir", str(deployment.workdir / f"run-{site}")],
        env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_download_the_output_sandbox_of_a_done_job_but_not_anothers(deployment, login):
    dirac = Dirac(settings=deployment.settings("alice"))
    site = f"Test.{uuid.uuid4().hex[:8]}.org"
    job = Job()
    ok(job.setExecutable("/bin/sh", arguments="-c 'echo hello from the job; "
                                              "echo 42 > result.txt'"))
    ok(job.setDestination(site))
    ok(job.setOutputSandbox(["result.txt"]))
    ok(job.setName("sandbox-download"))
    job_id = ok(dirac.submitJob(job))
    wait_until(lambda: ok(dirac.getJobStatus(job_id))[job_id]["Status"] == JS.WAITING, 60,
               "the job to wait for an agent")

    page = login("alice")
    page.goto(f"{deployment.base}/jobs/{job_id}")
    assert "None yet" in page.inner_text("#sandbox")
    run_agent(deployment, site)
    assert ok(dirac.getJobStatus(job_id))[job_id]["Status"] == JS.DONE
    # the link appears without reloading the page, once the job has uploaded its output
    page.wait_for_selector("#sandbox a")
    page.wait_for_function("document.getElementById('job-status').textContent === 'Done'")
    page.reload()  # and the page as served has it too (with the job's final parameters)
    link = page.wait_for_selector("#sandbox a")
    assert "ApplicationExitCode" in page.inner_text("#parameters")
    shot(page, "job")
    with page.expect_download() as downloading:
        link.click()
    download = downloading.value
    assert download.suggested_filename == f"job{job_id}-output.tar"
    with tarfile.open(download.path()) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    assert files == {"std.out": b"hello from the job\n", "std.err": b"",
                     "result.txt": b"42\n"}

    # bob may not: the web application answers 404 (he cannot see the job) ...
    other = login("bob")
    answer = other.request.get(f"{deployment.base}/jobs/{job_id}/output-sandbox")
    assert answer.status == 404
    assert other.goto(f"{deployment.base}/jobs/{job_id}").status == 404
    # ... and the SandboxStore itself refuses the web application acting for bob
    name = ok(SandboxStoreClient(settings=deployment.settings("alice"))
              .getSandboxesForJob(job_id))["Output"][0]
    store = Client(url="WorkloadManagement/SandboxStore",
                   settings=deployment.settings("webapp"))
    with call_context(on_behalf_of=deployment.users["bob"][0]):
        for refused in (store.getSandboxesAssignedToEntity(f"Job:{job_id}"),
                        store.getSandboxInfo(name), store.downloadChunk(name, 0, 1024)):
            assert refused["OK"] is False and refused["Errno"] == ENOAUTH, refused
    # carol sees every job in the monitor (JobMonitor), but the SandboxStore lets only
    # those who may manage the job read its sandbox: the web application passes its
    # refusal on as a 403, it does not decide by itself
    monitor = login("carol")
    assert monitor.goto(f"{deployment.base}/jobs/{job_id}").status == 200
    assert "Not available" in monitor.inner_text("#sandbox")
    assert monitor.query_selector("#sandbox a") is None
    answer = monitor.request.get(f"{deployment.base}/jobs/{job_id}/output-sandbox")
    assert answer.status == 403
    # not logged in: 401
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(f"{deployment.base}/jobs/{job_id}/output-sandbox", timeout=10)
    assert raised.value.code == 401


def peak_mb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines()
                    if line.startswith("VmHWM:"))) // 1024


def test_a_big_output_sandbox_is_streamed_in_bounded_memory(deployment, tmp_path):
    """100 MB through the web application, which never holds more than a few chunks."""
    alice = deployment.settings("alice")
    site = f"Test.{uuid.uuid4().hex[:8]}.org"
    job = Job()
    ok(job.setExecutable("/bin/true"))
    ok(job.setDestination(site))
    job_id = ok(Dirac(settings=alice).submitJob(job))
    big = tmp_path / "big.bin"
    digest = hashlib.sha256()
    with big.open("wb") as fh:
        for _ in range(BIG_MB):
            block = os.urandom(1 << 20)
            digest.update(block)
            fh.write(block)
    # alice's own sandbox, assigned to her job as its output (as an agent would)
    store = SandboxStoreClient(settings=alice)
    name = ok(store.uploadFile(big))
    ok(store.assignSandboxesToJob(job_id, [(name, "Output")]))
    cookie = deployment.cookie("alice")
    assert cookie.startswith("dirac_webapp=")
    before = peak_mb(deployment.webapp.pid)
    request = urllib.request.Request(f"{deployment.base}/jobs/{job_id}/output-sandbox",
                                     headers={"Cookie": cookie})
    got = hashlib.sha256()
    size = 0
    with urllib.request.urlopen(request, timeout=120) as response:
        assert response.headers["Content-Length"] == str(BIG_MB << 20)
        assert response.headers["Content-Type"] == "application/x-tar"
        while block := response.read(1 << 20):
            got.update(block)
            size += len(block)
    assert size == BIG_MB << 20 and got.hexdigest() == digest.hexdigest()
    grown = peak_mb(deployment.webapp.pid) - before
    # 4 chunks of 1 MiB in flight, plus their encoded forms: far below the 100 MB
    print(f"webapp VmHWM before {before} MB, grown {grown} MB")
    assert grown < 40, (before, grown)
    # an unknown sandbox number is a clear 404, a bad one a 400
    for query, code in (("?n=1", 404), ("?n=x", 400)):
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(urllib.request.Request(
                f"{deployment.base}/jobs/{job_id}/output-sandbox{query}",
                headers={"Cookie": cookie}), timeout=10)
        assert raised.value.code == code
