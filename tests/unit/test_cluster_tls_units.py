"""Units of issue 12: DN conversion, user tokens, queue arguments, URL lists, TLS files."""

from __future__ import annotations

import re

import pika.exceptions
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from diracmq.broker import connection, dn, topology
from diracmq.broker.config import Settings
from diracmq.broker.testcerts import Authority, name_of
from diracmq.broker.tlsconfig import certificate_info, find_tls_files
from hypothesis import given
from hypothesis import strategies as st

from DIRAC.ConfigurationSystem.Client.Helpers.Registry import RegistryIndex
from DIRAC.Core.Security.BrokerPermissions import client_permissions

# (RFC 4514 as RabbitMQ spells it, DIRAC's slash form)
PAIRS = [
    ("CN=alice,DC=example,DC=org", "/DC=org/DC=example/CN=alice"),
    ("CN=dirac.example.org,OU=hosts,O=Example", "/O=Example/OU=hosts/CN=dirac.example.org"),
    ("CN=Alice Smith,OU=Users,DC=cern,DC=ch", "/DC=ch/DC=cern/OU=Users/CN=Alice Smith"),
    (r"CN=Smith\, John,O=Ex\+Co", r"/O=Ex\+Co/CN=Smith, John"),
    ("CN=a/b=c,DC=org", r"/DC=org/CN=a\/b=c"),
    ("EMAILADDRESS=alice@example.org,CN=alice,DC=org",
     "/DC=org/CN=alice/emailAddress=alice@example.org"),
    ("UID=u1+CN=alice,DC=org", "/DC=org/UID=u1+CN=alice"),
    (r"CN=\ lead and trail\ ,O=x", "/O=x/CN= lead and trail "),
    (r"CN=\#hash\;semi\<\>\"q\\b,C=CH", '/C=CH/CN=#hash;semi<>"q\\\\b'),
    ("CN=Jürgen,O=Universität", "/O=Universität/CN=Jürgen"),
    ("1.2.3.4=odd,CN=x", "/CN=x/1.2.3.4=odd"),
]


@pytest.mark.parametrize("rfc,slash", PAIRS)
def test_dn_conversion_both_ways(rfc, slash):
    assert dn.rfc4514_to_dirac(rfc) == slash
    assert dn.dirac_to_rfc4514(slash) == rfc


def test_rfc4514_input_spellings_are_normalised():
    assert dn.canonical_rfc4514("cn=alice, dc=example;dc=org") == "CN=alice,DC=example,DC=org"
    assert dn.rfc4514_to_dirac(r"CN=a\2Cb,E=x@y") == "/emailAddress=x@y/CN=a,b"
    assert dn.canonical_dirac("/dc=org/Email=x@y") == "/DC=org/emailAddress=x@y"


@pytest.mark.parametrize("bad", ["", "alice", "CN", "CN=a,=b", "CN=a\\", "XX=1,CN=a",
                                 "CN=#0403", "CN=\\FF"])
def test_bad_rfc4514_dns_are_refused(bad):
    with pytest.raises(dn.DNError):
        dn.rfc4514_to_dirac(bad)


@pytest.mark.parametrize("bad", ["", "CN=a", "/", "/CN", "/CN=a/XX=b", None])
def test_bad_slash_dns_are_refused(bad):
    with pytest.raises(dn.DNError):
        dn.dirac_to_rfc4514(bad)


VALUES = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x24F), min_size=1,
                 max_size=12)
ATTRS = st.sampled_from(["CN", "DC", "O", "OU", "UID", "emailAddress", "C", "L"])
RDNS = st.lists(st.lists(st.tuples(ATTRS, VALUES), min_size=1, max_size=2), min_size=1,
                max_size=5)


@given(RDNS)
def test_any_dn_round_trips(rdns):
    slash = "".join("/" + "+".join(f"{a}={dn._escape_dirac(v)}" for a, v in rdn)
                    for rdn in rdns)
    rfc = dn.dirac_to_rfc4514(slash)
    assert dn.rfc4514_to_dirac(rfc) == slash
    assert dn.canonical_rfc4514(rfc) == rfc


def test_the_client_names_a_certificate_as_rabbitmq_does():
    """The subject formatting follows rabbit_ssl: reversed RDNs, DER order inside a
    multi-valued one, RabbitMQ's attribute names (checked against RabbitMQ 3.10 in
    tests/fault/test_tls.py)."""
    ca = Authority()
    subject = name_of([[(NameOID.DOMAIN_COMPONENT, "org")],
                       [(NameOID.COMMON_NAME, "dirac.example.org"), (NameOID.USER_ID, "u1")],
                       [(NameOID.EMAIL_ADDRESS, "a@b.org")]])
    cert, _ = ca.issue(subject)
    loaded = x509.load_pem_x509_certificate(cert)
    assert dn.subject_to_rfc4514(loaded.subject) == \
        "EMAILADDRESS=a@b.org,UID=u1+CN=dirac.example.org,DC=org"  # DER sorts UID first


def test_proxy_cns_are_stripped():
    assert dn.strip_proxy_cns("/DC=org/CN=alice/CN=12345/CN=proxy") == "/DC=org/CN=alice"
    assert dn.strip_proxy_cns("/CN=12345") == "/CN=12345"


# ------------------------------------------------------------------ user tokens
@pytest.mark.parametrize("user", ["alice", "al.ice", "CN=dirac.example.org,O=Example",
                                  "CN=Alice Smith/x=y", "é" * 80, "a" * 300])
def test_reply_queues_and_permissions_work_for_any_user(user):
    name = topology.reply_queue_name(user)
    assert len(name.encode()) <= 255
    _, _, read = client_permissions(user)
    assert re.match(read, name)
    token = topology.user_token(user)
    assert "." not in token and token == topology.user_token(user)
    assert topology.is_reply_queue_of(user, name)
    assert not topology.is_reply_queue_of(user + "x", name)
    assert not topology.is_reply_queue_of(None, name) and not topology.is_reply_queue_of("", name)


def test_user_tokens_never_collide_or_overlap():
    users = ["al", "al.ice", "al~2eice", "al_ice", "a" * 300, "a" * 301, "CN=a,O=b", "CN=a+O=b"]
    tokens = [topology.user_token(u) for u in users]
    assert len(set(tokens)) == len(users)
    for user in users:
        _, _, read = client_permissions(user)
        for other in users:
            if other != user:
                assert not re.match(read, topology.reply_queue_name(other)), (user, other)


# ------------------------------------------------------------------ quorum queues
def test_quorum_service_queue_arguments():
    args = topology.service_queue_arguments("quorum")
    assert args["x-queue-type"] == "quorum"
    assert args["x-delivery-limit"] == topology.QUORUM_DELIVERY_LIMIT
    assert args["x-overflow"] == "reject-publish"
    assert args["x-dead-letter-strategy"] == "at-least-once"
    assert topology.service_queue_arguments()["x-queue-type"] == "classic"
    with pytest.raises(ValueError):
        topology.service_queue_arguments("stream")


def test_death_count_reads_the_broker_counter_of_each_queue_type():
    queue = "dirac.rpc.A.B"
    classic = {"x-death": [{"queue": queue, "reason": "rejected", "count": 3}]}
    quorum = {"x-delivery-count": 2}
    assert topology.death_count(classic, queue, "classic") == 3
    assert topology.death_count(quorum, queue, "quorum") == 2
    assert topology.death_count(quorum, queue, "classic") == 0
    assert topology.death_count(classic, queue, "quorum") == 0
    assert topology.death_count(quorum, queue) == 2 and topology.death_count(classic, queue) == 3
    for junk in (None, [], {"x-delivery-count": "9"}, {"x-delivery-count": True},
                 {"x-delivery-count": -1}, {"x-death": "x"}):
        assert topology.death_count(junk, queue) == 0


# ------------------------------------------------------------------ settings
def test_url_lists_and_queue_type_from_environment_and_toml(tmp_path, monkeypatch):
    monkeypatch.setenv("DIRAC_BROKER_URL", "amqp://u:p@a:1/%2F, amqp://u:p@b:2/%2F")
    monkeypatch.setenv("DIRAC_QUEUE_TYPE", "quorum")
    monkeypatch.delenv("DIRAC_CONFIG_FILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    settings = Settings.load()
    settings.validate()
    assert settings.urls == ["amqp://u:p@a:1/%2F", "amqp://u:p@b:2/%2F"]
    assert settings.queue_type == "quorum"
    toml = tmp_path / "d.toml"
    toml.write_text('[broker]\nurl = ["amqp://u:p@a:1/v", "amqp://u:p@c:3/v"]\n')
    monkeypatch.delenv("DIRAC_BROKER_URL")
    monkeypatch.setenv("DIRAC_CONFIG_FILE", str(toml))
    assert Settings.load().urls == ["amqp://u:p@a:1/v", "amqp://u:p@c:3/v"]
    for bad in ({"queue_type": "stream"}, {"url": "http://x"}, {"url": " , "}):
        with pytest.raises(ValueError):
            Settings(**bad).validate()


def test_connection_parameters_shuffle_and_put_failed_nodes_last(monkeypatch):
    settings = Settings(url=",".join(f"amqp://u:p@127.0.0.1:{p}/%2F" for p in (1, 2, 3)))
    seen = {tuple(p.port for p in connection.connection_parameters(settings, "t"))
            for _ in range(60)}
    assert len(seen) > 1  # shuffled
    monkeypatch.setitem(connection._failed_at, "127.0.0.1:2", __import__("time").monotonic())
    for _ in range(20):
        params = connection.connection_parameters(settings, "t")
        assert params[-1].port == 2
        assert all(p.connection_attempts == 1 for p in params)


def test_broker_user_must_be_one_identity():
    assert connection.broker_user(Settings(url="amqp://bob:x@a/%2F,amqp://bob:y@b/%2F")) == "bob"
    with pytest.raises(ValueError):
        connection.broker_user(Settings(url="amqp://bob:x@a/%2F,amqp://eve:y@b/%2F"))


def test_errors_that_would_repeat_are_final():
    closed = pika.exceptions.ConnectionClosedByBroker
    assert connection._final(closed(403, "ACCESS_REFUSED"))
    assert connection._final(closed(530, "NOT_ALLOWED"))
    assert not connection._final(closed(320, "CONNECTION_FORCED"))
    assert connection._final(pika.exceptions.ProbableAuthenticationError())
    assert not connection._final(ConnectionRefusedError())
    lost = pika.exceptions.StreamLostError(
        "Stream connection lost: SSLError(1, '[SSL: TLSV1_ALERT_UNKNOWN_CA] tlsv1 alert')")
    assert connection._final(pika.exceptions.AMQPConnectionError(lost))
    assert not connection._final(pika.exceptions.StreamLostError("ConnectionResetError(104)"))


def test_connect_walks_the_list_to_a_living_node():
    """Two dead ports and the shared broker: connect() gets through (skip if no broker)."""
    from diracmq_testing import free_closed_port, tcp_open

    if not tcp_open("127.0.0.1", 5672):
        pytest.skip("no broker on 127.0.0.1:5672")
    dead = [f"amqp://guest:guest@127.0.0.1:{free_closed_port()}/%2F" for _ in range(2)]
    settings = Settings(url=",".join([*dead, "amqp://guest:guest@127.0.0.1:5672/%2F"]))
    for _ in range(3):
        conn = connection.connect(settings, "unit", timeout=5)
        try:
            assert conn.is_open
        finally:
            conn.close()


# ------------------------------------------------------------------ certificates, Registry
def test_tls_files_follow_dirac_variables(tmp_path, monkeypatch):
    ca = Authority()
    (tmp_path / "ca.pem").write_bytes(ca.ca_pem())
    (tmp_path / "alice.pem").write_bytes(ca.user("alice"))
    for var in ("X509_USER_PROXY", "X509_USER_CERT", "X509_USER_KEY", "X509_CERT_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("X509_USER_PROXY", str(tmp_path / "alice.pem"))
    monkeypatch.setenv("X509_CERT_DIR", str(tmp_path))
    files = find_tls_files(Settings())
    assert files.cert == files.key == tmp_path / "alice.pem" and files.ca == tmp_path
    info = certificate_info(files.cert)
    assert info.dn == "/DC=org/DC=diracmq-test/CN=alice"
    assert info.subject == "CN=alice,DC=diracmq-test,DC=org"
    assert 364 * 86400 < info.seconds_left <= 365 * 86400
    url = "amqps://localhost:5671/%2F"
    assert connection.uses_certificate_login(url)
    assert not connection.uses_certificate_login("amqps://u:p@localhost:5671/%2F")
    assert connection.broker_user(Settings(url=url)) == info.subject
    monkeypatch.setenv("X509_USER_PROXY", str(tmp_path / "missing.pem"))
    with pytest.raises(FileNotFoundError):
        find_tls_files(Settings())


def test_registry_maps_certificate_users_by_dn():
    tree = {"Registry": {
        "Users": {"alice": {"DN": "/DC=org/DC=example/CN=Alice Smith", "Groups": ["users"]},
                  "bob": {"BrokerUser": "bob"}},
        "Hosts": {"dirac.example.org": {"DN": "/DC=org/CN=dirac.example.org"}},
        "Groups": {"users": {"Properties": ["NormalUser"]}}}}
    index = RegistryIndex(tree)
    alice = index.credentials("CN=Alice Smith,DC=example,DC=org")
    assert alice["username"] == "alice" and alice["group"] == "users"
    assert alice["DN"] == "/DC=org/DC=example/CN=Alice Smith"
    assert index.credentials("CN=12345,CN=Alice Smith,DC=example,DC=org")["username"] == "alice"
    assert index.credentials("CN=dirac.example.org,DC=org").get("isHost") is True
    stranger = index.credentials("CN=Mallory,DC=example,DC=org")
    assert stranger["username"] == "anonymous" and stranger["DN"] == "/DC=example/CN=Mallory" \
        .replace("/DC=example/CN=Mallory", "/DC=org/DC=example/CN=Mallory")
    assert index.credentials("bob")["username"] == "bob"
