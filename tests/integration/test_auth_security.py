"""Identity and authorization with real broker users (docs/security.md), end to end.

The module creates broker users on its own vhost with ``rabbitmqctl``, with exactly
the permissions docs/security.md gives (``DIRAC.Core.Security.BrokerPermissions``):
``alice`` and ``bob`` (registered, in different groups), ``carol`` (a broker user the
Registry does not know) and ``worker`` (the workers' own user, a Registry host).
A ``Configuration`` worker serves the Registry from a TOML file; an ``AuthGuard``
worker (handlers written below) gets it from the Configuration service, as a
worker without ``DIRAC_CS_FILE`` does.  Users are deleted after the module.
"""

from __future__ import annotations

import contextlib
import secrets
import textwrap
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import pika
import pika.exceptions
import pytest
from diracmq.broker import codec
from diracmq.broker.config import Settings
from diracmq.broker.derrno import ENOAUTH
from diracmq.client.base import Client
from diracmq.client.transport import get_transport
from diracmq_testing import WorkerPool, environment, url_vhost, wait_until

from DIRAC.Core.Security.BrokerPermissions import client_permissions, worker_permissions

pytestmark = pytest.mark.timeout(180)

SYSTEM = "AuthGuard"
#: DIRAC's message for S_ERROR(ENOAUTH, "Unauthorized query")
DENIED = "Unauthorized query ( 1111 : Unauthorized query)"
EXTENSION = "authguard_ext"

GUARD = '''
from DIRAC import S_OK
from DIRAC.Core.DISET.RequestHandler import RequestHandler


class GuardHandler(RequestHandler):
    """One method per kind of auth_ rule; each returns the caller's credentials."""

    auth_forAll = ["all"]
    auth_forAuthenticated = ["authenticated"]
    auth_forAdmins = ["group:admins"]
    auth_forJobAdmins = ["JobAdministrator"]
    auth_forOpsOrAdmins = ["Operator", "group:admins"]

    def _me(self):
        return S_OK(self.getRemoteCredentials())

    export_forAll = export_forAuthenticated = export_forAdmins = _me
    export_forJobAdmins = export_forOpsOrAdmins = _me
    export_noRule = _me  # no auth_: DIRAC's rule, authenticated callers only
'''

OVERRIDE = '''
from DIRAC import S_OK
from DIRAC.Core.DISET.RequestHandler import RequestHandler


class OverrideHandler(RequestHandler):
    """Methods whose rules the configuration overrides (see the module's CS file)."""

    auth_lockedDown = ["all"]            # configuration: lockedDown = ["group:admins"]
    auth_coded = ["authenticated"]       # configuration Default does not override this

    def _me(self):
        return S_OK(self.getRemoteCredentials()["username"])

    export_lockedDown = export_coded = _me
    export_byDefault = _me               # no auth_: configuration Default = ["Operator"]
    export_dynamic = _me                 # a test changes its rule in the file
'''


@dataclass
class Account:
    role: str
    name: str
    password: str
    url: str


def _user_url(vhost_url: str, user: str, password: str) -> str:
    parts = urlsplit(vhost_url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}:{parts.port or 5672}"
    return urlunsplit(parts._replace(netloc=netloc))


def cs_text(acc: dict[str, Account], dynamic: str = "") -> str:
    return textwrap.dedent(f'''\
        [Registry]
        DefaultGroup = ["users"]

        [Registry.Users.alice]
        BrokerUser = "{acc['alice'].name}"
        DN = "/DC=org/DC=example/CN=Alice"
        Groups = ["users", "admins"]

        [Registry.Users.bob]
        BrokerUser = "{acc['bob'].name}"

        [Registry.Groups.users]
        Properties = ["NormalUser"]

        [Registry.Groups.admins]
        Properties = ["NormalUser", "JobAdministrator"]

        [Registry.Groups.ops]
        Users = ["bob"]
        Properties = ["Operator"]

        [Registry.Hosts.worker]
        BrokerUser = "{acc['worker'].name}"
        Properties = ["TrustedHost"]

        [Systems.{SYSTEM}.Services.Override.Authorization]
        lockedDown = ["group:admins"]
        Default = "Operator"
        {dynamic}
        ''')


@pytest.fixture(scope="module")
def accounts(broker, vhost_url, private_vhost) -> Iterator[dict[str, Account]]:
    """Real broker users with docs/security.md's permissions, deleted afterwards."""
    if broker.ctl is None or not private_vhost:
        pytest.skip("creating broker users needs rabbitmqctl on the test broker")
    vhost = url_vhost(vhost_url)
    tag = uuid.uuid4().hex[:8]
    made = {role: Account(role, f"{role}_{tag}", password := secrets.token_hex(12),
                          _user_url(vhost_url, f"{role}_{tag}", password))
            for role in ("alice", "bob", "carol", "worker")}

    def create(account: Account) -> str:  # "" or what went wrong
        perms = (worker_permissions if account.role == "worker" else client_permissions)(
            account.name)
        for args in (["add_user", account.name, account.password],
                     ["set_permissions", "-p", vhost, account.name, *perms]):
            code, output = broker.ctl(["-q", *args])
            if code != 0:
                return f"rabbitmqctl {args[0]} {account.name} failed: {output}"
        return ""

    # rabbitmqctl takes a second or so per call: create (and delete) the users in parallel
    with ThreadPoolExecutor(len(made)) as pool:
        try:
            errors = [e for e in pool.map(create, made.values()) if e]
            assert not errors, errors
            yield made
        finally:
            list(pool.map(lambda a: broker.ctl(["-q", "delete_user", a.name]), made.values()))


@dataclass
class Deployment:
    accounts: dict[str, Account]
    cs_file: Path
    pool: WorkerPool


@pytest.fixture(scope="module")
def deployment(accounts, private_vhost, tmp_path_factory) -> Iterator[Deployment]:
    """A Configuration worker (the file) and an AuthGuard worker (Registry via the service),
    both running as the ``worker`` broker user."""
    root = tmp_path_factory.mktemp("authsec")
    cs_file = root / "cs.toml"
    cs_file.write_text(cs_text(accounts))
    service_dir = root / "ext" / EXTENSION / f"{SYSTEM}System" / "Service"
    service_dir.mkdir(parents=True)
    for init in (service_dir.parent.parent, service_dir.parent, service_dir):
        (init / "__init__.py").write_text("")
    (service_dir / "GuardHandler.py").write_text(GUARD)
    (service_dir / "OverrideHandler.py").write_text(OVERRIDE)

    pool = WorkerPool(accounts["worker"].url, root / "workers", private_vhost)
    try:
        with environment(DIRAC_CS_FILE=str(cs_file), DIRAC_GROUP=None):
            pool.start("Configuration", pythonpath=[])
        with environment(DIRAC_CS_FILE=None, DIRAC_CS_REFRESH="0.5", DIRAC_GROUP=None):
            pool.start(SYSTEM, extension=EXTENSION, pythonpath=[root / "ext"])
        yield Deployment(accounts, cs_file, pool)
    finally:
        problems = pool.stop_all()
    assert not problems, "\n\n".join(problems)


def client(account: Account, service: str = f"{SYSTEM}/Guard", group: str = "",
           **options: Any) -> Client:
    settings = Settings.load(url=account.url, rpc_timeout=20.0, connect_timeout=5.0,
                             group=group, **options)
    return Client(url=service, settings=settings)


def ok(result: dict) -> Any:
    assert result["OK"], result
    return result["Value"]


def refused(result: dict) -> str:
    assert not result["OK"], result
    assert result["Errno"] == ENOAUTH, result
    return result["Message"]


# ----------------------------------------------------------------- identity
def test_each_user_sees_only_its_own_identity(deployment):
    acc = deployment.accounts
    alice = ok(client(acc["alice"]).whoami())
    assert alice == {"username": "alice", "group": "users", "properties": ["NormalUser"],
                     "DN": "/DC=org/DC=example/CN=Alice", "brokerUser": acc["alice"].name}
    bob = ok(client(acc["bob"]).whoami())
    assert bob == {"username": "bob", "group": "ops", "properties": ["Operator"],
                   "brokerUser": acc["bob"].name}
    # the Configuration service (its Registry from the file) agrees with the AuthGuard
    # worker (its Registry fetched from the Configuration service)
    assert ok(client(acc["alice"], "Configuration/Server").whoami()) == alice
    assert ok(client(acc["bob"], "Configuration/Server").whoami()) == bob
    # and the handler sees the same credentials as whoami reports
    assert ok(client(acc["alice"]).forAuthenticated()) == alice


def test_a_user_may_choose_one_of_its_groups(deployment):
    alice_admin = client(deployment.accounts["alice"], group="admins")
    me = ok(alice_admin.whoami())
    assert (me["username"], me["group"]) == ("alice", "admins")
    assert me["properties"] == ["NormalUser", "JobAdministrator"]
    assert ok(alice_admin.forAdmins())["group"] == "admins"


@pytest.mark.parametrize("role, group", [("alice", "ops"), ("bob", "admins"),
                                         ("bob", "no-such-group")])
def test_a_group_the_user_is_not_in_is_refused(deployment, role, group):
    forged = client(deployment.accounts[role], group=group)
    for method in ("whoami", "ping", "forAll"):
        message = refused(getattr(forged, method)())
        assert f"is not a member of group '{group}'" in message, message


def test_an_unknown_broker_user_is_anonymous(deployment):
    carol = client(deployment.accounts["carol"])
    me = ok(carol.whoami())
    assert me == {"username": "anonymous", "group": "", "properties": [],
                  "brokerUser": deployment.accounts["carol"].name}
    assert ok(carol.forAll())["username"] == "anonymous"
    assert ok(carol.ping())["name"] == f"{SYSTEM}/Guard"
    for method in ("forAuthenticated", "noRule", "forAdmins", "forJobAdmins"):
        assert refused(getattr(carol, method)()) == DENIED
    # and it cannot read the configuration (it names users and DNs)
    refused(client(deployment.accounts["carol"], "Configuration/Server").getVersion())


# ------------------------------------------------------------ raw AMQP checks
class RawUser:
    """A bare pika connection as a broker user, with a reply queue it may declare."""

    def __init__(self, account: Account) -> None:
        self.account = account
        self.conn = pika.BlockingConnection(pika.URLParameters(account.url))
        self.channel = self.conn.channel()
        self.reply_queue = f"dirac.reply.{account.name}.raw.{uuid.uuid4().hex[:8]}"
        self.channel.queue_declare(self.reply_queue, auto_delete=True)
        self.replies: dict[str, Any] = {}
        self.channel.basic_consume(self.reply_queue, self._on_reply, auto_ack=True)
        # Direct Reply-to too: a request without user_id may not name a dirac.reply.<user>
        # queue (the worker cannot tell whose it is), so anonymous requests use this.
        self.channel.basic_consume("amq.rabbitmq.reply-to", self._on_reply, auto_ack=True)

    def _on_reply(self, _ch: Any, _m: Any, props: pika.BasicProperties, body: bytes) -> None:
        self.replies[props.correlation_id] = codec.unpackb(body)

    def publish(self, service: str, method: str, *args: Any, user_id: str | None = None,
                headers: dict | None = None) -> str:
        corr = uuid.uuid4().hex
        props = pika.BasicProperties(
            content_type=codec.CONTENT_TYPE, correlation_id=corr, message_id=corr,
            reply_to=self.reply_queue if user_id else "amq.rabbitmq.reply-to",
            user_id=user_id, headers=headers)
        body = codec.packb({"v": 1, "method": method, "args": list(args)})
        self.channel.basic_publish("dirac.rpc", service, body, props, mandatory=True)
        return corr

    def call(self, service: str, method: str, *args: Any, **kw: Any) -> dict:
        corr = self.publish(service, method, *args, **kw)
        wait_until(lambda: self.conn.process_data_events(0.1) or corr in self.replies, 20,
                   f"the reply to {method}")
        return self.replies.pop(corr)

    def close(self) -> None:
        with contextlib.suppress(pika.exceptions.AMQPError, OSError):
            if self.conn.is_open:
                self.conn.close()


@pytest.fixture
def raw_user(deployment) -> Iterator[Callable[[str], RawUser]]:
    opened: list[RawUser] = []

    def make(role: str) -> RawUser:
        user = RawUser(deployment.accounts[role])
        opened.append(user)
        return user

    yield make
    for user in opened:
        user.close()


def test_a_raw_request_with_a_forged_group_header_is_refused(deployment, raw_user):
    alice = raw_user("alice")
    name = deployment.accounts["alice"].name
    me = alice.call(f"{SYSTEM}/Guard", "whoami", user_id=name)
    assert me["OK"] and me["Value"]["username"] == "alice"
    ops = alice.call(f"{SYSTEM}/Guard", "whoami", user_id=name,
                     headers={"x-dirac-group": "ops"})
    assert not ops["OK"] and ops["Errno"] == ENOAUTH, ops
    admins = alice.call(f"{SYSTEM}/Guard", "forAdmins", user_id=name,
                        headers={"x-dirac-group": "admins"})
    assert admins["OK"] and admins["Value"]["group"] == "admins", admins
    # without user_id the broker vouches for nobody: anonymous, whatever the headers say
    anon = alice.call(f"{SYSTEM}/Guard", "whoami", headers={"x-dirac-group": "admins"})
    assert anon["OK"] and anon["Value"]["username"] == "anonymous", anon


def test_a_request_cannot_direct_replies_into_another_users_reply_queue(deployment, raw_user):
    """Alice names Bob's reply queue: the worker drops the request and counts it."""
    alice, bob = raw_user("alice"), raw_user("bob")
    guard = client(deployment.accounts["alice"])
    before = ok(guard.ping())["counters"].get("foreign_reply_to", 0)
    corr = uuid.uuid4().hex
    alice.channel.basic_publish("dirac.rpc", f"{SYSTEM}/Guard", codec.packb(
        {"v": 1, "method": "whoami", "args": []}), pika.BasicProperties(
        content_type=codec.CONTENT_TYPE, correlation_id=corr, message_id=corr,
        reply_to=bob.reply_queue, user_id=deployment.accounts["alice"].name))
    wait_until(lambda: ok(guard.ping())["counters"].get("foreign_reply_to", 0) > before, 20,
               "the worker to refuse the foreign reply queue")
    bob.conn.process_data_events(0.2)
    assert corr not in bob.replies


def test_a_user_cannot_pretend_to_be_another(deployment, raw_user):
    """A forged user_id never reaches a worker: the broker closes the channel (406)."""
    bob_name = deployment.accounts["bob"].name
    guard = client(deployment.accounts["alice"])
    before = ok(guard.ping())["counters"].get("requests", 0)
    alice = raw_user("alice")
    alice.channel.confirm_delivery()
    with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
        alice.publish(f"{SYSTEM}/Guard", "whoami", user_id=bob_name)
        alice.conn.process_data_events(1.0)
    assert info.value.reply_code == 406, info.value
    assert "PRECONDITION_FAILED" in info.value.reply_text, info.value
    assert bob_name in info.value.reply_text
    after = ok(guard.ping())["counters"]["requests"]
    assert after == before + 1  # only the second ping: the forged request never arrived


# ------------------------------------------------------------ authorization
ALICE, ALICE_ADMIN, BOB, CAROL = "alice", "alice/admins", "bob", "carol"
EVERYONE = (ALICE, ALICE_ADMIN, BOB, CAROL)
RULES = [
    # (service, method, who is allowed)
    ("Guard", "forAll", EVERYONE),
    ("Guard", "ping", EVERYONE),
    ("Guard", "forAuthenticated", (ALICE, ALICE_ADMIN, BOB)),
    ("Guard", "noRule", (ALICE, ALICE_ADMIN, BOB)),
    ("Guard", "echo", (ALICE, ALICE_ADMIN, BOB)),
    ("Guard", "forAdmins", (ALICE_ADMIN,)),
    ("Guard", "forJobAdmins", (ALICE_ADMIN,)),
    ("Guard", "forOpsOrAdmins", (ALICE_ADMIN, BOB)),
    # configuration overrides: Authorization/<method> beats auth_<method>; Default
    # applies only where the handler has no auth_
    ("Override", "lockedDown", (ALICE_ADMIN,)),
    ("Override", "byDefault", (BOB,)),
    ("Override", "coded", (ALICE, ALICE_ADMIN, BOB)),
]


def caller(deployment: Deployment, who: str, service: str) -> Client:
    role, _, group = who.partition("/")
    return client(deployment.accounts[role], f"{SYSTEM}/{service}", group=group)


@pytest.mark.parametrize("service, method, allowed", RULES,
                         ids=[f"{s}.{m}" for s, m, _ in RULES])
def test_auth_rules_are_enforced(deployment, service, method, allowed):
    outcome = {}
    for who in EVERYONE:
        args = ("x",) if method == "echo" else ()
        result = getattr(caller(deployment, who, service), method)(*args)
        if not result["OK"]:
            assert result["Errno"] == ENOAUTH, (who, result)
            assert result["Message"] == DENIED
        outcome[who] = result["OK"]
    assert outcome == {who: who in allowed for who in EVERYONE}


def test_a_rule_changed_in_the_file_reaches_the_worker(deployment):
    """Edit the CS file; the AuthGuard worker's refresher (0.5 s) applies the new rule."""
    alice = caller(deployment, ALICE, "Override")
    bob = caller(deployment, BOB, "Override")
    assert not alice.dynamic()["OK"] and bob.dynamic()["OK"]  # Default = Operator
    original = deployment.cs_file.read_text()
    try:
        deployment.cs_file.write_text(cs_text(deployment.accounts,
                                              dynamic='dynamic = ["group:users"]'))
        wait_until(lambda: alice.dynamic()["OK"], 20, "alice allowed by the new rule")
        assert refused(bob.dynamic())
    finally:
        deployment.cs_file.write_text(original)
        wait_until(lambda: not alice.dynamic()["OK"], 20, "the original rule back")


# ------------------------------------------------------- broker permissions
def _refused_by_broker(account: Account, action: Callable[[Any], Any]) -> str:
    conn = pika.BlockingConnection(pika.URLParameters(account.url))
    try:
        channel = conn.channel()
        channel.confirm_delivery()  # a refused publish raises instead of passing silently
        with pytest.raises(pika.exceptions.ChannelClosedByBroker) as info:
            action(channel)
            channel.basic_qos(prefetch_count=1)  # a round trip: any closure has arrived
        assert info.value.reply_code == 403, info.value
        return info.value.reply_text
    finally:
        with contextlib.suppress(pika.exceptions.AMQPError, OSError):
            conn.close()


def test_broker_permissions_keep_users_apart(deployment):
    acc = deployment.accounts
    bob = client(acc["bob"])
    ok(bob.whoami())  # bob's reply queue exists now
    bob_queue = get_transport(Settings.load(url=acc["bob"].url, rpc_timeout=20.0,
                                            connect_timeout=5.0, group=""))._reply_queue
    assert bob_queue.startswith(f"dirac.reply.{acc['bob'].name}.")
    service_queue = f"dirac.rpc.{SYSTEM}.Guard"
    alice = acc["alice"]
    cases = {
        "consume bob's replies": lambda ch: ch.basic_consume(bob_queue, lambda *a: None),
        "consume others' requests": lambda ch: ch.basic_consume(service_queue, lambda *a: None),
        "get others' requests": lambda ch: ch.basic_get(service_queue),
        "declare a queue in bob's name": lambda ch: ch.queue_declare(
            f"dirac.reply.{acc['bob'].name}.x.1"),
        "declare a queue of its own choosing": lambda ch: ch.queue_declare("alice-tap"),
        "declare a server-named queue": lambda ch: ch.queue_declare("", exclusive=True),
        "delete bob's reply queue": lambda ch: ch.queue_delete(bob_queue),
        "delete a service queue": lambda ch: ch.queue_delete(service_queue),
        "publish into bob's reply queue": lambda ch: ch.basic_publish("", bob_queue, b"x"),
        "bind its reply queue to the requests": lambda ch: (
            ch.queue_declare(f"dirac.reply.{alice.name}.tap.1", auto_delete=True),
            ch.queue_bind(f"dirac.reply.{alice.name}.tap.1", "dirac.rpc", f"{SYSTEM}/Guard")),
        "declare an exchange": lambda ch: ch.exchange_declare("dirac.rpc.tap"),
    }
    for what, action in cases.items():
        text = _refused_by_broker(alice, action)
        assert "ACCESS_REFUSED" in text, (what, text)
    # what a client does need still works: its own reply queue, and publishing requests
    assert ok(client(alice).whoami())["username"] == "alice"


def test_direct_reply_to_works_with_the_client_permissions(deployment):
    alice = client(deployment.accounts["alice"], reply_mode="direct")
    assert ok(alice.whoami())["username"] == "alice"


def test_a_passive_declare_needs_no_permission(deployment):
    """The client asks a service queue's consumer count after a timeout (EMQNOWORKER)."""
    conn = pika.BlockingConnection(pika.URLParameters(deployment.accounts["alice"].url))
    try:
        frame = conn.channel().queue_declare(f"dirac.rpc.{SYSTEM}.Guard", passive=True)
        assert frame.method.consumer_count >= 1
    finally:
        conn.close()
