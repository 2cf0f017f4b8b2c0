"""``Configuration/Server``'s handler, driven through ``dispatch`` (no broker)."""

from __future__ import annotations

import os

import pytest
from diracmq.broker.derrno import ECONF, ENOAUTH
from diracmq.workers.handler import Request, dispatch
from diracmq.workers.identity import auth_rules_for

from DIRAC.ConfigurationSystem.Client.ConfigurationData import (
    decode_compressed,
    gConfigurationData,
)
from DIRAC.ConfigurationSystem.Client.ConfigurationFile import parse, version_of
from DIRAC.ConfigurationSystem.Service.ServerHandler import ServerHandler

CS = '[Registry.Users.alice]\nBrokerUser = "alice"\n\n[Operations]\nGreeting = "hello"\n'
ALICE = {"username": "alice", "group": "", "properties": []}


@pytest.fixture
def server(tmp_path, monkeypatch):
    path = tmp_path / "cs.toml"
    path.write_text(CS)
    monkeypatch.setenv("DIRAC_CS_FILE", str(path))
    assert ServerHandler.initializeHandler({})["OK"]
    yield path
    ServerHandler.csFile = None
    gConfigurationData.reset()


def call(method, *args, credentials=ALICE):
    request = Request("Configuration/Server", method, args, credentials=credentials)
    return dispatch(ServerHandler, request,
                    auth_rules_for("Configuration/Server", ServerHandler, method))


def test_version_and_data(server):
    tree = parse(CS)
    assert call("getVersion") == {"OK": True, "Value": version_of(tree)}
    whole = call("getConfiguration")["Value"]
    assert whole["Data"] == tree and whole["Version"] == version_of(tree)
    assert decode_compressed(call("getCompressedData")["Value"]) == tree
    assert call("getCompressedDataIfNewer", version_of(tree))["Value"] == {
        "newestVersion": version_of(tree)}
    newer = call("getCompressedDataIfNewer", "")["Value"]
    assert decode_compressed(newer["data"]) == tree


def test_the_process_own_configuration_is_the_served_file(server):
    """The Configuration worker never asks itself (a deadlock) for its callers' identity."""
    assert gConfigurationData.source == f"file:{server}"
    assert gConfigurationData.getServedTree() == parse(CS)


def test_an_edit_is_served_at_the_next_call(server):
    first = call("getVersion")["Value"]
    before = server.stat().st_mtime_ns
    server.write_text(CS.replace("hello", "bonjour"))
    os.utime(server, ns=(before + 10_000_000, before + 10_000_000))
    assert call("getVersion")["Value"] != first
    data = decode_compressed(call("getCompressedDataIfNewer", first)["Value"]["data"])
    assert data["Operations"]["Greeting"] == "bonjour"


def test_anonymous_callers_cannot_read_the_configuration(server):
    anonymous = {"username": "anonymous", "group": "", "properties": []}
    for method, args in (("getVersion", ()), ("getConfiguration", ()),
                         ("getCompressedData", ()), ("getCompressedDataIfNewer", ("",))):
        result = call(method, *args, credentials=anonymous)
        assert not result["OK"] and result["Errno"] == ENOAUTH, method
    assert call("whoami", credentials=anonymous)["OK"]
    assert call("ping", credentials=anonymous)["OK"]


def test_it_refuses_to_start_without_a_usable_file(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.dirac/cs.toml either
    monkeypatch.delenv("DIRAC_CS_FILE", raising=False)
    result = ServerHandler.initializeHandler({})
    assert not result["OK"] and result["Errno"] == ECONF and "DIRAC_CS_FILE" in result["Message"]
    bad = tmp_path / "bad.toml"
    bad.write_text("[Registry.Users.a]\nGroups = ['missing']\n")
    monkeypatch.setenv("DIRAC_CS_FILE", str(bad))
    result = ServerHandler.initializeHandler({})
    assert not result["OK"] and "'missing', which is not defined" in result["Message"]
    gConfigurationData.reset()
