"""Certificate login over TLS against a broker node the module starts itself (issue 12).

The node (broker/localrabbit.py) listens for plain AMQP (the workers log in as guest:
password users and certificate users coexist) and for ``amqps://`` with
``verify_peer``, ``fail_if_no_peer_cert`` and the EXTERNAL mechanism.  A test CA
(broker/testcerts.py) issues the broker's certificate and the users'.  The broker users
of the certificate users are their DNs as RabbitMQ spells them, created without a
password and with exactly the permissions docs/security.md gives.  The workers read a
Registry (``DIRAC_CS_FILE``) mapping alice's DN to the DIRAC user ``alice``.
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pika.exceptions
import pytest
from cryptography import x509
from diracmq.broker import dn, topology
from diracmq.broker.derrno import EMQCONN
from diracmq.broker.localrabbit import LocalCluster, NodeUnavailable
from diracmq.broker.testcerts import Authority
from diracmq.broker.tlsconfig import ssl_context
from diracmq.client.base import Client

from DIRAC.Core.Security.BrokerPermissions import client_permissions
from fault.faultlib import FaultPool, settings_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def subject_of(pem: bytes) -> str:
    return dn.subject_to_rfc4514(x509.load_pem_x509_certificate(pem).subject)


class Site:
    def __init__(self, folder: Path) -> None:
        self.dir = folder
        ca, other = Authority(), Authority("Other CA")
        (folder / "ca.pem").write_bytes(ca.ca_pem())
        cert, key = ca.issue(x509.Name.from_rfc4514_string("CN=localhost"),
                             hosts=["localhost", "127.0.0.1"])
        (folder / "host.pem").write_bytes(cert)
        (folder / "host.key").write_bytes(key)
        past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=2)
        self.files = {
            "alice": ca.user("alice"),
            "bob": ca.user("bob"),
            "carol": ca.user("carol"),  # a broker user, but not in the Registry
            "expired": ca.user("alice", not_before=past - datetime.timedelta(days=1),
                               not_after=past),
            "foreign": other.user("alice"),  # alice's DN, signed by another CA
        }
        for name, pem in self.files.items():
            (folder / f"{name}.pem").write_bytes(pem)
        self.subjects = {name: subject_of(pem) for name, pem in self.files.items()}

    def path(self, name: str) -> Path:
        return self.dir / f"{name}.pem"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[tuple[Site, LocalCluster]]:
    folder = tmp_path_factory.mktemp("tls")
    certs = Site(folder)
    try:
        node = LocalCluster(1, label="tls", tls={"ca": str(folder / "ca.pem"),
                                                 "cert": str(folder / "host.pem"),
                                                 "key": str(folder / "host.key")})
    except NodeUnavailable as exc:
        pytest.skip(str(exc))
    try:
        node.start()
        ctl = node.nodes[0].ctl
        for name in ("alice", "bob", "carol"):
            user = certs.subjects[name]
            ctl("add_user", user, "unused")
            ctl("clear_password", user)  # certificate login only
            ctl("set_permissions", "-p", "/", user, *client_permissions(user))
        (folder / "cs.toml").write_text(textwrap.dedent(f'''\
            [Registry]
            DefaultGroup = ["users"]
            [Registry.Users.alice]
            DN = "{dn.rfc4514_to_dirac(certs.subjects['alice'])}"
            Groups = ["users"]
            [Registry.Users.bob]
            DN = "{dn.rfc4514_to_dirac(certs.subjects['bob'])}"
            Groups = ["users"]
            [Registry.Hosts.worker]
            BrokerUser = "guest"
            Properties = ["TrustedHost"]
            [Registry.Groups.users]
            Properties = ["NormalUser"]
            '''))
        yield certs, node
    finally:
        node.close()


@pytest.fixture(scope="module")
def service(site, tmp_path_factory) -> Iterator[str]:
    certs, node = site
    pool = FaultPool(node.nodes[0].url(), tmp_path_factory.mktemp("tlsworkers"),
                     private_vhost=True)
    worker = pool.start(env={"DIRAC_CS_FILE": str(certs.dir / "cs.toml")})
    yield f"{worker.system}/Chaos"
    problems = pool.stop_all()
    assert not problems, problems


def tls_settings(site, name: str, **kw):
    certs, node = site
    return settings_for(node.nodes[0].tls_url(), tls_cert=str(certs.path(name)),
                        tls_ca=str(certs.dir / "ca.pem"), **kw)


def test_a_valid_certificate_gets_its_registry_identity(site, service, monkeypatch):
    certs, node = site
    # DIRAC's variables, no tls_* settings: X509_USER_PROXY and X509_CERT_DIR
    ca_dir = certs.dir / "cadir"
    ca_dir.mkdir(exist_ok=True)
    (ca_dir / "ca.pem").write_bytes((certs.dir / "ca.pem").read_bytes())
    monkeypatch.setenv("X509_USER_PROXY", str(certs.path("alice")))
    monkeypatch.setenv("X509_CERT_DIR", str(ca_dir))
    client = Client(url=service, settings=settings_for(node.nodes[0].tls_url()))
    result = client.whoami(timeout=10)
    assert result["OK"], result
    me = result["Value"]
    assert me["username"] == "alice" and me["group"] == "users"
    assert me["DN"] == "/DC=org/DC=diracmq-test/CN=alice"
    assert me["brokerUser"] == "CN=alice,DC=diracmq-test,DC=org"
    users = node.nodes[0].ctl("-q", "list_connections", "user", "auth_mechanism")
    assert "CN=alice,DC=diracmq-test,DC=org\tEXTERNAL" in users
    # and the calls work end to end
    assert client.record("tls-1", 0, timeout=10)["OK"]


def test_a_certificate_without_registry_entry_is_anonymous(site, service):
    client = Client(url=service, settings=tls_settings(site, "carol"))
    me = client.whoami(timeout=10)
    assert me["OK"], me
    assert me["Value"]["username"] == "anonymous"
    assert me["Value"]["DN"] == "/DC=org/DC=diracmq-test/CN=carol"


@pytest.mark.parametrize("name", ["expired", "foreign"])
def test_expired_and_foreign_certificates_are_refused(site, service, name):
    client = Client(url=service, settings=tls_settings(site, name, connect_timeout=8.0))
    started = time.monotonic()
    result = client.whoami(timeout=10)
    assert not result["OK"] and result["Errno"] == EMQCONN, result
    # refused at once (not retried until connect_timeout), saying why
    assert "refused" in result["Message"], result
    assert re.search("UNKNOWN_CA|CERTIFICATE_EXPIRED|CERTIFICATE_UNKNOWN", result["Message"]), \
        result
    assert time.monotonic() - started < 6.0


def test_plain_text_on_the_tls_port_is_refused(site):
    _, node = site
    params = pika.ConnectionParameters("127.0.0.1", node.nodes[0].tls_port,
                                       credentials=pika.PlainCredentials("guest", "guest"),
                                       socket_timeout=3, stack_timeout=5,
                                       connection_attempts=1)
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(params).close()


def test_a_user_cannot_use_another_users_identity(site, service):
    """alice, logged in by certificate, cannot send as bob nor read bob's replies."""
    certs, node = site
    settings = tls_settings(site, "alice")
    params = pika.URLParameters(node.nodes[0].tls_url())
    params.ssl_options = pika.SSLOptions(ssl_context(settings), "localhost")
    params.credentials = pika.credentials.ExternalCredentials()
    conn = pika.BlockingConnection(params)
    try:
        channel = conn.channel()
        channel.basic_publish(topology.REQUEST_EXCHANGE, service, b"x",
                              pika.BasicProperties(user_id=certs.subjects["bob"]))
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as refused:
            channel.queue_declare("dirac.reply.probe", passive=False)  # sync: see the close
        assert refused.value.reply_code == 406  # PRECONDITION_FAILED: user_id mismatch
        channel = conn.channel()
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as denied:
            channel.queue_declare(topology.reply_queue_name(certs.subjects["bob"]))
        assert denied.value.reply_code == 403
    finally:
        if conn.is_open:
            conn.close()


def test_dirac_proxy_info_shows_the_dn_and_the_certificate_validity(site, service):
    certs, node = site
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIRAC_", "X509_"))}
    env.update({"DIRAC_BROKER_URL": node.nodes[0].tls_url(),
                "X509_USER_PROXY": str(certs.path("alice")),
                "DIRAC_TLS_CA": str(certs.dir / "ca.pem"), "HOME": str(certs.dir)})
    done = subprocess.run([str(Path(sys.executable).with_name("dirac-proxy-info")),
                           "--service", service, "--json"], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    info = json.loads(done.stdout)
    assert info["username"] == "alice"
    assert info["DN"] == info["subject"] == "/DC=org/DC=diracmq-test/CN=alice"
    assert info["issuer"] == "/DC=org/DC=diracmq-test/CN=Test CA"
    assert 364 * 86400 < info["secondsLeft"] <= 365 * 86400
