"""Identity and authorization on the worker: Registry lookups and rule precedence (no broker)."""

from __future__ import annotations

import textwrap

import pytest
from diracmq.broker.derrno import ENOAUTH
from diracmq.workers import identity
from diracmq.workers.handler import S_OK, Request, RequestHandler, dispatch

from DIRAC.ConfigurationSystem.Client.ConfigurationData import gConfigurationData
from DIRAC.ConfigurationSystem.Client.ConfigurationFile import parse
from DIRAC.ConfigurationSystem.Client.Helpers import Registry
from DIRAC.ConfigurationSystem.Client.Helpers.Registry import RegistryIndex
from DIRAC.Core.Security.BrokerPermissions import (
    check_broker_user_name,
    client_permissions,
    worker_permissions,
)
from DIRAC.Core.Security.Properties import JOB_ADMINISTRATOR

CS = textwrap.dedent('''\
    [Registry]
    DefaultGroup = ["dirac_user", "lhcb_user"]

    [Registry.Users.alice]
    BrokerUser = "rmq-alice"
    DN = "/DC=org/CN=Alice"
    Groups = ["lhcb_user", "dirac_admin"]

    [Registry.Users.bob]
    Groups = ["ops"]

    [Registry.Users.nogroup]

    [Registry.Groups.dirac_user]
    Properties = ["NormalUser"]

    [Registry.Groups.lhcb_user]
    Properties = ["NormalUser"]

    [Registry.Groups.dirac_admin]
    Properties = ["NormalUser", "JobAdministrator"]

    [Registry.Groups.ops]
    Users = ["alice"]
    Properties = "Operator"

    [Registry.Hosts.wms]
    BrokerUser = "dirac-wms"
    DN = "/DC=org/CN=wms.example.org"
    Properties = ["TrustedHost"]

    [Systems.Test.Services.Guarded.Authorization]
    configured = "group:ops"
    Default = ["Operator"]
    ''')


@pytest.fixture
def registry(tmp_path):
    path = tmp_path / "cs.toml"
    path.write_text(CS)
    assert gConfigurationData.useFile(path)["OK"]
    yield path
    gConfigurationData.reset()


@pytest.fixture
def no_registry(tmp_path):
    path = tmp_path / "cs.toml"
    path.write_text('[Operations]\nx = 1\n[Systems.Test.Services.Guarded.Authorization]\n'
                    'configured = "group:ops"\n')
    assert gConfigurationData.useFile(path)["OK"]
    yield path
    gConfigurationData.reset()


# ---------------------------------------------------------------- Registry
def test_a_user_gets_its_default_group_and_its_properties():
    index = RegistryIndex(parse(CS))
    assert index.credentials("rmq-alice") == {
        "username": "alice", "group": "lhcb_user", "properties": ["NormalUser"],
        "DN": "/DC=org/CN=Alice", "brokerUser": "rmq-alice"}
    # bob: no DefaultGroup it is in, so its first group; BrokerUser defaults to the name
    assert index.credentials("bob") == {"username": "bob", "group": "ops",
                                        "properties": ["Operator"], "brokerUser": "bob"}
    assert index.credentials("nogroup")["group"] == ""
    assert index.user_groups["alice"] == ["lhcb_user", "dirac_admin", "ops"]


def test_a_user_may_ask_for_one_of_its_groups_only():
    index = RegistryIndex(parse(CS))
    admin = index.credentials("rmq-alice", "dirac_admin")
    assert (admin["group"], admin["properties"]) == ("dirac_admin",
                                                     ["NormalUser", "JobAdministrator"])
    assert "validGroup" not in admin
    forged = index.credentials("bob", "dirac_admin")
    assert forged["validGroup"] is False and forged["properties"] == []
    assert index.credentials("rmq-alice", "lhcb_user")["group"] == "lhcb_user"


def test_unknown_broker_users_and_hosts():
    index = RegistryIndex(parse(CS))
    assert index.credentials("alice") == {"username": "anonymous", "group": "",
                                          "properties": [], "brokerUser": "alice"}
    assert index.credentials("dirac-wms") == {
        "username": "wms", "group": "hosts", "properties": ["TrustedHost"],
        "DN": "/DC=org/CN=wms.example.org", "brokerUser": "dirac-wms", "isHost": True}
    assert index.credentials("dirac-wms", "ops")["validGroup"] is False


def test_an_index_without_users_is_not_enabled():
    assert not RegistryIndex({}).enabled
    assert not RegistryIndex({"Registry": {"DefaultGroup": "x"}}).enabled
    assert RegistryIndex(parse(CS)).enabled


def test_dirac_style_registry_helpers(registry):
    assert Registry.getUsernameForDN("/DC=org/CN=Alice") == {"OK": True, "Value": "alice"}
    assert not Registry.getUsernameForDN("/nobody")["OK"]
    assert Registry.getDNForUsername("alice")["Value"] == ["/DC=org/CN=Alice"]
    assert not Registry.getDNForUsername("bob")["OK"]
    assert Registry.getGroupsForUser("alice")["Value"] == ["lhcb_user", "dirac_admin", "ops"]
    assert Registry.getPropertiesForGroup("dirac_admin") == ["NormalUser", "JobAdministrator"]
    assert Registry.getPropertiesForGroup("nope") == []
    assert sorted(Registry.getUsersInGroup("ops")) == ["alice", "bob"]
    assert Registry.getGroupsWithProperty(JOB_ADMINISTRATOR)["Value"] == ["dirac_admin"]
    assert Registry.getDefaultUserGroup() == "dirac_user"
    assert Registry.getUsernameForBrokerUser("rmq-alice")["Value"] == "alice"
    assert not Registry.getUsernameForBrokerUser("dirac-wms")["OK"]  # a host, not a user


# ------------------------------------------------------- worker credentials
def test_credentials_for_uses_the_registry_and_the_group_header(registry):
    assert identity.credentials_for("rmq-alice")["username"] == "alice"
    chosen = identity.credentials_for("rmq-alice", {"x-dirac-group": b"dirac_admin"})
    assert chosen["group"] == "dirac_admin" and JOB_ADMINISTRATOR in chosen["properties"]
    forged = identity.credentials_for("bob", {"x-dirac-group": "dirac_admin"})
    refusal = identity.group_refusal(forged)
    assert refusal["Errno"] == ENOAUTH
    assert "'bob' is not a member of group 'dirac_admin'" in refusal["Message"]
    assert identity.group_refusal(chosen) is None
    # an unset or non-string header asks for nothing
    assert identity.credentials_for("bob", {"x-dirac-group": 5})["group"] == "ops"
    assert identity.credentials_for("bob", {"x-dirac-group": " "})["group"] == "ops"
    assert identity.credentials_for(None, {"x-dirac-group": "ops"}) == {
        "username": "anonymous", "group": "", "properties": []}


def test_without_a_registry_the_broker_user_is_the_username(no_registry):
    """Dev mode: today's behaviour, and the group header is not believed."""
    assert identity.credentials_for("guest", {"x-dirac-group": "dirac_admin"}) == {
        "username": "guest", "group": "", "properties": [], "brokerUser": "guest"}
    assert identity.credentials_for(None)["username"] == "anonymous"


def test_a_registry_that_cannot_be_loaded_makes_everyone_anonymous(tmp_path):
    path = tmp_path / "cs.toml"
    path.write_text("[Registry\n")
    assert not gConfigurationData.useFile(path)["OK"]
    try:
        creds = identity.credentials_for("rmq-alice")
        assert creds["username"] == "anonymous" and creds["properties"] == []
    finally:
        gConfigurationData.reset()


# ------------------------------------------------------------ authorization
class GuardedHandler(RequestHandler):
    auth_coded = ["authenticated"]
    auth_configured = ["all"]
    auth_byProperty = [JOB_ADMINISTRATOR]
    auth_byGroup = ["group:dirac_admin"]

    def _ok(self):
        return S_OK(self.getRemoteCredentials()["username"])

    export_coded = export_configured = export_byProperty = export_byGroup = _ok
    export_uncoded = _ok


def rules(method):
    return identity.auth_rules_for("Test/Guarded", GuardedHandler, method)


def test_rule_precedence(registry):
    assert rules("configured") == ["group:ops"]      # configuration beats auth_
    assert rules("coded") == ["authenticated"]       # auth_ beats configuration Default
    assert rules("uncoded") == ["Operator"]          # configuration Default
    assert list(identity.auth_rules_for("Test/Other", GuardedHandler, "uncoded")) == [
        "authenticated"]                             # nothing anywhere: DIRAC's rule
    assert rules("ping") == ["all"] and rules("whoami") == ["all"]


def test_without_a_registry_unruled_methods_stay_open(no_registry):
    assert identity.auth_rules_for("Test/Other", GuardedHandler, "uncoded") is None
    assert rules("configured") == ["group:ops"]  # configured rules still apply


def served(method, broker_user, group=None):
    creds = identity.credentials_for(broker_user, {"x-dirac-group": group} if group else None)
    return identity.group_refusal(creds) or dispatch(
        GuardedHandler, Request("Test/Guarded", method, (), credentials=creds),
        rules(method))


@pytest.mark.parametrize("method, caller, group, allowed", [
    ("configured", "bob", None, True),
    ("configured", "rmq-alice", None, False),
    ("configured", "rmq-alice", "ops", True),
    ("coded", "rmq-alice", None, True),
    ("coded", "stranger", None, False),
    ("uncoded", "bob", None, True),
    ("uncoded", "rmq-alice", "dirac_admin", False),
    ("byProperty", "rmq-alice", "dirac_admin", True),
    ("byProperty", "rmq-alice", None, False),
    ("byGroup", "rmq-alice", "dirac_admin", True),
    ("byGroup", "bob", None, False),
    ("byGroup", "bob", "dirac_admin", False),   # forged group: refused before dispatch
    ("ping", "stranger", None, True),
])
def test_rules_are_enforced(registry, method, caller, group, allowed):
    result = served(method, caller, group)
    assert result["OK"] is allowed, result
    if not allowed:
        assert result["Errno"] == ENOAUTH


def test_broker_permissions():
    configure, write, read = client_permissions("alice")
    assert (configure, write, read) == (r"^dirac\.reply\.alice\..+$", r"^dirac\.rpc$",
                                        r"^dirac\.reply\.alice\..+$")
    import re

    assert re.match(read, "dirac.reply.alice.host.1.abc")
    assert not re.match(read, "dirac.reply.alice2.host.1.abc")
    assert not re.match(read, "dirac.rpc.WorkloadManagement.JobMonitoring")
    configure, write, read = worker_permissions("dirac-wms")
    for name in ("dirac.rpc", "dirac.rpc.retry", "dirac.rpc.parked", "dirac.rpc.A.B",
                 "dirac.reply.dirac-wms.h.1.x"):
        assert re.match(configure, name) and re.match(read, name), name
    assert re.match(write, "amq.default") and not re.match(read, "dirac.reply.alice.h.1.x")
    # Any name works now, DNs with dots included; "al" must not reach "al.ice"'s queues.
    assert check_broker_user_name("al.ice") == "al.ice"
    _, _, read_al = client_permissions("al")
    _, _, read_alice = client_permissions("al.ice")
    from diracmq.broker.topology import reply_queue_name

    assert re.match(read_alice, reply_queue_name("al.ice"))
    assert not re.match(read_al, reply_queue_name("al.ice"))
    with pytest.raises(ValueError):
        check_broker_user_name("")


def test_only_a_trusted_host_may_act_for_another_user(registry):
    # The wms host has TrustedHost: it acts for alice, with alice's identity and groups.
    creds = identity.credentials_for("dirac-wms", {"x-dirac-delegated-user": "rmq-alice"})
    assert creds["username"] == "alice" and creds["delegatedBy"] == "wms"
    assert identity.group_refusal(creds) is None
    chosen = identity.credentials_for("dirac-wms", {"x-dirac-delegated-user": b"rmq-alice",
                                                    "x-dirac-group": "dirac_admin"})
    assert chosen["group"] == "dirac_admin" and "JobAdministrator" in chosen["properties"]
    # A user without TrustedHost may not, not even for itself; nor for an unknown user.
    for sender, target in (("bob", "rmq-alice"), ("rmq-alice", "rmq-alice"),
                           ("dirac-wms", "nobody"), (None, "rmq-alice")):
        refused = identity.credentials_for(sender, {"x-dirac-delegated-user": target})
        assert refused["username"] == "anonymous", (sender, target)
        error = identity.group_refusal(refused)
        assert error is not None and error["Errno"] == ENOAUTH, (sender, target)
        assert "delegation refused" in error["Message"]


def test_without_a_registry_nobody_may_delegate(no_registry):
    refused = identity.credentials_for("guest", {"x-dirac-delegated-user": "alice"})
    assert refused["username"] == "anonymous"
    assert "no Registry" in identity.group_refusal(refused)["Message"]
