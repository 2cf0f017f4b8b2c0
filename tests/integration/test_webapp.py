"""``dirac-webapp`` end to end, in a real headless Chromium (Debian's ``chromium``, driven
by Playwright): real broker users alice, bob and the web application's own user (a
TrustedHost in the Registry), a real ``dirac-worker WorkloadManagement``, a real
``dirac-webapp`` process (uvicorn).

``DIRACMQ_SCREENSHOT_DIR=docs`` saves the screenshots of the main pages there (that is
how docs/webapp-*.png are made; webapp-job.png by test_webapp_sandbox.py).
"""

from __future__ import annotations

import contextlib
import os
import ssl
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from diracmq.broker.config import Settings
from diracmq.broker.derrno import ENOAUTH
from diracmq.client.base import Client
from diracmq.client.context import call_context
from diracmq_testing import WorkerPool, free_closed_port, url_vhost, url_with_vhost, wait_until

from DIRAC.WorkloadManagementSystem.Client.JobManagerClient import JobManagerClient
from DIRAC.WorkloadManagementSystem.Client.JobStateUpdateClient import JobStateUpdateClient

from .wms_conftest_helpers import broker_user, ok

pytestmark = pytest.mark.timeout(240)

CHROMIUM = os.environ.get("DIRACMQ_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = os.environ.get("DIRACMQ_SCREENSHOT_DIR")
JDL = '[ Executable = "/bin/echo"; Arguments = "{name}"; JobName = "{name}"; Site = "{site}"; ]'
LIVE = 15_000  # ms: how long a change may take to show (the page refreshes every 1 s)


def user_settings(vhost: str, name: str, password: str) -> Settings:
    url = url_with_vhost(f"amqp://{quote(name)}:{password}@127.0.0.1:5672/", vhost)
    return Settings(url=url, rpc_timeout=30.0, connect_timeout=5.0)


def registry_toml(users: dict, dns: dict[str, str] | None = None) -> str:
    """The Registry of the web tests: alice and bob (with ``dns``' DN each), the webapp a
    TrustedHost; ``users`` maps each to its broker user ``(name, password)``."""
    dns = dns or {}

    def dn(who: str) -> str:
        return f'DN = "{dns[who]}"' if who in dns else ""

    return textwrap.dedent(f'''\
        [Registry]
        DefaultGroup = "dirac_user"
        [Registry.Users.alice]
        BrokerUser = "{users['alice'][0]}"
        {dn("alice")}
        [Registry.Users.bob]
        BrokerUser = "{users['bob'][0]}"
        {dn("bob")}
        [Registry.Groups.dirac_user]
        Users = ["alice", "bob"]
        Properties = ["NormalUser"]
        [Registry.Hosts.webapp]
        BrokerUser = "{users['webapp'][0]}"
        Properties = ["TrustedHost"]
        ''')


@contextlib.contextmanager
def running_webapp(workdir: Path, broker_url: str, args: list[str],
                   https_ca: Path | None = None, env: dict[str, str] | None = None
                   ) -> Iterator[tuple[subprocess.Popen, str]]:
    """A ``dirac-webapp`` process and its base URL until the block ends; ``https_ca``:
    it serves HTTPS (``args`` name the TLS files) with a certificate that CA signed;
    ``env``: more environment variables."""
    port = free_closed_port()
    env = dict(os.environ, DIRAC_BROKER_URL=broker_url, PYTHONUNBUFFERED="1", **(env or {}))
    log_path = workdir / "webapp.log"
    with log_path.open("w") as log:
        webapp = subprocess.Popen(
            [str(Path(sys.executable).with_name("dirac-webapp")), "--port", str(port),
             "--refresh", "1", *args],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            base = f"{'https' if https_ca else 'http'}://127.0.0.1:{port}"
            trust = ssl.create_default_context(cafile=str(https_ca)) if https_ca else None

            def answers() -> bool:
                assert webapp.poll() is None, log_path.read_text()
                with contextlib.suppress(OSError):
                    with urllib.request.urlopen(base + "/healthz", timeout=2,
                                                context=trust) as response:
                        return response.status == 200
                return False

            wait_until(answers, 30, "dirac-webapp to answer")
            yield webapp, base
        finally:
            webapp.terminate()
            webapp.wait(15)


class Deployment:
    def __init__(self, base: str, users: dict, jobs: dict) -> None:
        self.base = base
        self.users = users  # "alice"/"bob"/"webapp" -> (broker user, password)
        self.jobs = jobs    # "alice"/"bob" -> [job IDs]

    def settings(self, who: str, vhost: str) -> Settings:
        return user_settings(vhost, *self.users[who])


def start_webapp(stack: contextlib.ExitStack, workdir: Path, broker_url: str, *args: str,
                 **env: str) -> tuple[subprocess.Popen, str]:
    """:func:`running_webapp`, stopped when ``stack`` closes: (process, base URL)."""
    return stack.enter_context(running_webapp(workdir, broker_url, list(args), env=env))


@pytest.fixture(scope="module")
def deployment(vhost_url, private_vhost, tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    vhost = url_vhost(vhost_url)
    workdir = tmp_path_factory.mktemp("webapp")
    with contextlib.ExitStack() as stack:
        users = {who: stack.enter_context(broker_user(vhost, who))
                 for who in ("alice", "bob", "webapp")}
        cs = workdir / "cs.toml"
        cs.write_text(registry_toml(users))
        pool = WorkerPool(vhost_url, workdir, private_vhost)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DIRAC_CS_FILE", str(cs))
            mp.setenv("DIRAC_DATA_DIR", str(workdir / "data"))
            mp.setenv("DIRAC_JOBDB_URL", "")
            metrics_port = free_closed_port()
            pool.start("WorkloadManagement", pythonpath=[],
                       args=["--metrics-port", str(metrics_port), "--metrics-addr", "127.0.0.1"])
        stack.callback(lambda: pool.stop_all())
        jobs = {}
        for who, sites in (("alice", ["LCG.CERN.cern", "LCG.CERN.cern", "LCG.IN2P3.fr"]),
                           ("bob", ["LCG.RAL.uk", "LCG.RAL.uk"])):
            manager = JobManagerClient(settings=user_settings(vhost, *users[who]))
            jobs[who] = [ok(manager.submitJob(JDL.format(name=f"{who}-{n}", site=site)))
                         for n, site in enumerate(sites)]
        _, base = stack.enter_context(running_webapp(
            workdir, user_settings(vhost, *users["webapp"]).url,
            ["--service", "WorkloadManagement/JobMonitoring",
             "--service", "WorkloadManagement/JobManager", "--service", "Nowhere/Nothing",
             "--worker-metrics", f"http://127.0.0.1:{metrics_port}/metrics"]))
        yield Deployment(base, users, jobs)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def login(deployment, browser):
    """``login("alice")``: a fresh browser context logged in as that user, its page."""
    contexts = []

    def make(who: str, password: str | None = None):
        context = browser.new_context(viewport={"width": 1500, "height": 900})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(LIVE)
        page.goto(deployment.base + "/")
        assert page.url.endswith("/login")
        name, real_password = deployment.users[who]
        page.fill("#username", name)
        page.fill("#password", real_password if password is None else password)
        page.click("#login")
        return page

    yield make
    for context in contexts:
        context.close()


def shot(page, name: str) -> None:
    if SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / f"webapp-{name}.png"), full_page=True)


def rows(page) -> list[int]:
    return [int(x) for x in page.eval_on_selector_all(
        "#jobs tbody tr", "trs => trs.map(tr => tr.dataset.jobId)")]


def test_a_wrong_password_is_refused(login):
    page = login("alice", password="not-the-password")
    assert "wrong user name or password" in page.inner_text("#login-error")
    assert page.url.endswith("/login")


def test_each_user_sees_filters_and_sorts_only_its_own_jobs(deployment, login):
    alice, bob = deployment.jobs["alice"], deployment.jobs["bob"]
    page = login("alice")
    page.wait_for_selector("#jobs tbody tr")
    assert page.inner_text("#whoami") == deployment.users["alice"][0]
    assert rows(page) == sorted(alice, reverse=True)          # JobID, newest first
    page.click("th[data-sort=JobID]")                          # now ascending
    page.wait_for_function("document.querySelector('th[data-sort=JobID]')"
                           ".classList.contains('asc')")
    wait_until(lambda: rows(page) == sorted(alice), 10, "ascending order")
    # The multi-selects offer only the values of alice's jobs.
    names = page.eval_on_selector_all("#f-JobName option", "os => os.map(o => o.value)")
    assert sorted(names) == ["alice-0", "alice-1", "alice-2"]
    page.select_option("#f-Site", ["LCG.CERN.cern"])
    page.click("#apply")
    wait_until(lambda: rows(page) == sorted(alice[:2]), 10, "the Site filter")
    page.click("#reset")
    page.fill("#f-JobID", f"{bob[0]} {alice[2]}")              # bob's job stays invisible
    page.click("#apply")
    wait_until(lambda: rows(page) == [alice[2]], 10, "the JobID filter")
    page.click("#reset")
    wait_until(lambda: len(rows(page)) == 3, 10, "the reset")
    page.fill("#f-FromDate", "2099-01-01T00:00")               # updated since: none
    page.click("#apply")
    wait_until(lambda: rows(page) == [], 10, "the time filter")
    page.click("#reset")
    wait_until(lambda: len(rows(page)) == 3, 10, "the reset")
    assert "LCG.CERN.cern" in page.inner_text("#chart-site")
    shot(page, "jobs")

    other = login("bob")
    other.wait_for_selector("#jobs tbody tr")
    assert sorted(rows(other)) == sorted(bob)


def test_kill_ones_own_job_but_not_anothers(deployment, login, vhost_url):
    alice, bob = deployment.jobs["alice"], deployment.jobs["bob"]
    page = login("alice")
    page.wait_for_selector(f"tr[data-job-id='{alice[1]}']")
    page.check(f"tr[data-job-id='{alice[1]}'] input.pick")
    page.click("#act-kill")
    page.wait_for_selector(f"tr[data-job-id='{alice[1]}'][data-status='Killed']")
    assert f"done for {alice[1]}" in page.inner_text("#action-result")
    # The web application will not act on bob's job for alice, whatever the page sends.
    answer = page.evaluate("""async (ids) => {
        const r = await fetch('/api/jobs/action', {method: 'POST',
            headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({action: 'kill', ids})});
        return await r.json(); }""", [bob[0]])
    assert answer["ok"] is False and answer["done"] == []
    assert "not authorized" in answer["failed"][str(bob[0])]
    assert page.goto(f"{deployment.base}/jobs/{bob[0]}").status == 404
    # bob's job is untouched
    status = Client(url="WorkloadManagement/JobMonitoring",
                    settings=deployment.settings("bob", url_vhost(vhost_url))
                    ).getJobsStatus(bob[0])
    assert ok(status)[bob[0]]["Status"] != "Killed"


def test_job_page_and_a_live_status_change(deployment, login, vhost_url):
    job = deployment.jobs["alice"][0]
    updater = JobStateUpdateClient(settings=deployment.settings("alice", url_vhost(vhost_url)))
    ok(updater.setJobParameter(job, "CPUNormalizationFactor", "12.5"))
    page = login("alice")
    page.wait_for_selector(f"tr[data-job-id='{job}']")
    page.click(f"tr[data-job-id='{job}'] a")
    page.wait_for_selector("#jdl")
    assert "/bin/echo" in page.inner_text("#jdl")
    assert "CPUNormalizationFactor" in page.inner_text("#parameters")
    assert "Received" in page.inner_text("#history")
    assert page.inner_text("#job-status") == "Received"
    for status in ("Checking", "Waiting"):
        ok(updater.setJobStatus(job, status, f"{status} for the web test", "test"))
    page.wait_for_function(
        "document.getElementById('job-status').textContent === 'Waiting'")  # no reload
    page.wait_for_function("document.querySelector('#history').textContent"
                           ".includes('Waiting for the web test')")
    assert page.inner_text("#attributes td[data-attr=Status]") == "Waiting"
    # (docs/webapp-job.png is taken by test_webapp_sandbox.py: a Done job, its sandbox)
    page.goto(deployment.base + "/")
    page.wait_for_selector(f"tr[data-job-id='{job}'][data-status='Waiting']")
    ok(updater.setJobStatus(job, "Matched", "picked", "test"))
    page.wait_for_selector(f"tr[data-job-id='{job}'][data-status='Matched']")


def test_services_page(deployment, login, vhost_url):
    # one refused call, so that JobManager has an error to show
    manager = JobManagerClient(settings=deployment.settings("alice", url_vhost(vhost_url)))
    assert manager.killJob(deployment.jobs["bob"][1])["OK"] is False
    page = login("bob")
    page.click("#nav-services")
    row = "#services tr[data-service='WorkloadManagement/JobMonitoring']"
    page.wait_for_selector(row)
    assert int(page.inner_text(f"{row} .col-consumers")) >= 1
    assert page.inner_text(f"{row} .col-status") == "OK"
    assert page.inner_text(f"{row} .col-ping_ms").endswith("ms")
    assert page.inner_text(f"{row} .col-answered") == "metrics of 1/1 worker endpoint(s)"
    assert int(page.inner_text(f"{row} .col-requests")) >= 1
    manager_row = "#services tr[data-service='WorkloadManagement/JobManager']"
    assert int(page.inner_text(f"{manager_row} .col-errors")) >= 1
    missing = "#services tr[data-service='Nowhere/Nothing']"
    assert "no queue" in page.inner_text(f"{missing} .col-status")
    shot(page, "services")


def test_only_a_trusted_host_may_act_for_a_user(deployment, vhost_url):
    """The rule the web application relies on, checked by the service itself."""
    vhost = url_vhost(vhost_url)
    monitor = Client(url="WorkloadManagement/JobMonitoring",
                     settings=deployment.settings("bob", vhost))
    with call_context(on_behalf_of=deployment.users["alice"][0]):
        refused = monitor.getJobPageSummaryWeb({}, None, 0, 10)
    assert refused["OK"] is False and refused["Errno"] == ENOAUTH
    assert "TrustedHost" in refused["Message"]
    webapp = Client(url="WorkloadManagement/JobMonitoring",
                    settings=deployment.settings("webapp", vhost))
    with call_context(on_behalf_of=deployment.users["alice"][0]):
        mine = ok(webapp.getJobPageSummaryWeb({}, None, 0, 10))
    owners = {record[mine["ParameterNames"].index("Owner")] for record in mine["Records"]}
    assert owners == {"alice"}


def test_unauthenticated_api_calls_are_refused(deployment):
    for path in ("/api/jobs", "/api/services", "/api/jobs/values"):
        with pytest.raises(urllib.error.HTTPError) as raised:
            urllib.request.urlopen(deployment.base + path, timeout=5)
        assert raised.value.code == 401



@pytest.mark.parametrize("args", [["--port", "0"], ["--refresh", "-1"],
                                  ["--service", "no-slash"]])
def test_dirac_webapp_usage_errors(args):
    done = subprocess.run([str(Path(sys.executable).with_name("dirac-webapp")), *args],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done.stderr
    assert "error:" in done.stderr


def test_bad_queries_get_a_clear_400(login):
    page = login("alice")
    page.wait_for_selector("#jobs tbody tr")
    answers = page.evaluate("""async () => {
        const out = {};
        for (const q of ['sort=Nope', 'dir=UP', 'JobID=abc', 'limit=x', 'FromDate=yesterday',
                         'Status=' + Array(201).fill('x').join('&Status=')]) {
            const r = await fetch('/api/jobs?' + q);
            out[q.slice(0, 20)] = [r.status, await r.text()];
        }
        const r = await fetch('/api/jobs/action', {method: 'POST', body: '{"action": "burn"}',
                                                   headers: {'Content-Type': 'application/json'}});
        out.action = [r.status, await r.text()];
        return out; }""")
    for query, (status, text) in answers.items():
        assert status == 400 and text, (query, status, text)
