"""``dirac-webapp`` over HTTPS with client-certificate login, in a real headless Chromium.

Certificates from ``dirac-make-test-certs`` (a CA; alice, bob and carol signed by it;
carol is in no Registry entry) and from a second, unrelated CA.  A real ``dirac-worker
WorkloadManagement`` and a real ``dirac-webapp --ssl-cert --client-ca`` process; the
browser presents a certificate through Playwright's ``client_certificates``.
"""

from __future__ import annotations

import contextlib
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from diracmq_testing import WorkerPool, free_closed_port, url_vhost, wait_until

from DIRAC.WorkloadManagementSystem.Client.JobManagerClient import JobManagerClient

from .test_webapp import (  # noqa: F401  (browser: the module's browser fixture, shared)
    CHROMIUM,
    JDL,
    LIVE,
    browser,
    registry_toml,
    rows,
    running_webapp,
    user_settings,
)
from .wms_conftest_helpers import broker_user, ok

pytestmark = pytest.mark.timeout(240)

BIN = Path(sys.executable).parent


def make_certs(directory: Path, *users: str) -> Path:
    subprocess.run([str(BIN / "dirac-make-test-certs"), str(directory),
                    *(arg for user in users for arg in ("--user", user))],
                   check=True, capture_output=True, timeout=60)
    return directory


@pytest.fixture(scope="module")
def site(vhost_url, private_vhost, tmp_path_factory):
    """The deployment: ``(https base URL, certs dir, other CA's certs dir, jobs)``."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    vhost = url_vhost(vhost_url)
    workdir = tmp_path_factory.mktemp("webapp-tls")
    certs = make_certs(workdir / "certs", "alice", "bob", "carol")
    other = make_certs(workdir / "other-ca", "alice")
    with contextlib.ExitStack() as stack:
        users = {who: stack.enter_context(broker_user(vhost, who))
                 for who in ("alice", "bob", "webapp")}
        cs = workdir / "cs.toml"
        cs.write_text(registry_toml(users, {who: f"/DC=org/DC=diracmq-test/CN={who}"
                                            for who in ("alice", "bob")}))
        pool = WorkerPool(vhost_url, workdir, private_vhost)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DIRAC_CS_FILE", str(cs))
            mp.setenv("DIRAC_DATA_DIR", str(workdir / "data"))
            mp.setenv("DIRAC_JOBDB_URL", "")
            pool.start("WorkloadManagement", pythonpath=[])
        stack.callback(lambda: pool.stop_all())
        jobs = {}
        for who, count in (("alice", 2), ("bob", 1)):
            manager = JobManagerClient(settings=user_settings(vhost, *users[who]))
            jobs[who] = [ok(manager.submitJob(JDL.format(name=f"{who}-{n}", site="LCG.CERN.cern")))
                         for n in range(count)]
        _, base = stack.enter_context(running_webapp(
            workdir, user_settings(vhost, *users["webapp"]).url,
            ["--ssl-cert", str(certs / "host.pem"), "--ssl-key", str(certs / "host.key"),
             "--client-ca", str(certs / "ca.pem")], https_ca=certs / "ca.pem"))
        yield base, certs, other, jobs


@pytest.fixture
def open_page(site, browser):  # noqa: F811  (the imported fixture)
    """``open_page(cert_dir, user)``: a new browser context presenting that certificate
    (none if ``cert_dir`` is None), and its page."""
    base = site[0]
    contexts = []

    def make(cert_dir: Path | None, user: str | None = None):
        options = {}
        if cert_dir is not None:
            pem = str(cert_dir / f"{user}.pem")  # certificate and key in one file
            options["client_certificates"] = [{"origin": base, "certPath": pem,
                                               "keyPath": pem}]
        # The browser does not know the test CA that signed the server's certificate.
        context = browser.new_context(ignore_https_errors=True, **options)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(LIVE)
        return context, page

    yield make
    for context in contexts:
        context.close()


@pytest.mark.parametrize(("who", "other_user"), [("alice", "bob"), ("bob", "alice")])
def test_a_certificate_logs_in_as_its_registry_user_who_sees_only_own_jobs(
        site, open_page, who, other_user):
    base, certs, _other, jobs = site
    context, page = open_page(certs, who)
    page.goto(base + "/")
    page.wait_for_selector("#jobs tbody tr")
    assert page.inner_text("#whoami") == who
    wait_until(lambda: sorted(rows(page)) == sorted(jobs[who]), 10, f"{who}'s jobs")
    # The other user's job stays out of reach (the service decides).
    assert page.goto(f"{base}/jobs/{jobs[other_user][0]}").status == 404
    assert page.request.get(f"{base}/api/jobs?JobID={jobs[other_user][0]}").json()["rows"] == []
    assert any(c["name"] == "dirac_webapp" and c["secure"] for c in context.cookies())


def test_log_out_then_in_again_with_the_certificate(site, open_page):
    base, certs, _other, _jobs = site
    _context, page = open_page(certs, "alice")
    page.goto(base + "/")
    page.click("#logout")
    page.wait_for_selector("#login")    # the form, not an automatic login
    assert page.inner_text("#certificate-subject") == "CN=alice,DC=diracmq-test,DC=org"
    page.click("#login-certificate")
    page.wait_for_selector("#jobs tbody tr")
    assert page.inner_text("#whoami") == "alice"


def test_a_certificate_no_registry_user_has_is_refused_without_session(site, open_page):
    base, certs, _other, _jobs = site
    context, page = open_page(certs, "carol")
    response = page.goto(base + "/")
    assert response.status == 403
    assert "CN=carol,DC=diracmq-test,DC=org" in page.inner_text("#certificate-subject")
    assert "knows no user" in page.inner_text("#certificate-why")
    assert not [c for c in context.cookies() if c["name"] == "dirac_webapp"]
    assert page.request.get(base + "/api/jobs").status == 401
    # The password form stays open to carol.
    page.click("#password-login")
    page.wait_for_selector("#login")


def test_a_certificate_from_another_ca_is_refused(site, open_page):
    from playwright.sync_api import Error

    base, _certs, other, _jobs = site
    context, page = open_page(other, "alice")
    with pytest.raises(Error) as refused:
        page.goto(base + "/")  # the TLS handshake fails: the CA did not sign it
    assert "ERR_" in refused.value.message
    assert not context.cookies()
    # What the browser met: the server ends the TLS handshake (TLS 1.2 here, where the
    # client certificate is checked within the handshake); the same client with a
    # certificate of the right CA gets its answer.
    def healthz(cert_dir: Path) -> int:
        client = ssl.create_default_context(cafile=str(site[1] / "ca.pem"))
        client.maximum_version = ssl.TLSVersion.TLSv1_2
        client.load_cert_chain(str(cert_dir / "alice.pem"))
        with urllib.request.urlopen(base + "/healthz", timeout=10, context=client) as answer:
            return answer.status

    assert healthz(site[1]) == 200
    with pytest.raises(urllib.error.URLError) as failed:
        healthz(other)
    assert isinstance(failed.value.reason, ssl.SSLError)


def test_no_certificate_gets_the_password_form(site, open_page):
    base, _certs, _other, _jobs = site
    context, page = open_page(None)
    page.goto(base + "/")
    assert page.url == base + "/login"
    page.wait_for_selector("#login")
    assert page.query_selector("#certificate-login") is None
    assert not context.cookies()


@pytest.mark.parametrize("args", [
    ["--client-ca", "{certs}/ca.pem"],                                 # no --ssl-cert
    ["--ssl-cert", "/nonexistent.pem"],
    ["--ssl-cert", "{certs}/ca.pem"],                                  # no key in it
    ["--ssl-cert", "{certs}/host.pem", "--ssl-key", "{certs}/ca.pem"],  # not a key
    ["--ssl-cert", "{certs}/host.pem", "--ssl-key", "{certs}/host.key",
     "--client-ca", "{certs}/host.key"]])                             # not a certificate
def test_tls_usage_errors(site, args):
    args = [arg.format(certs=site[1]) for arg in args]
    done = subprocess.run([str(BIN / "dirac-webapp"), "--port", str(free_closed_port()),
                           *args], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done.stderr
    assert "error:" in done.stderr
