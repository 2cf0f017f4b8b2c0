"""``Configuration/Server``, ``DIRAC.initialize()`` and ``gConfig`` against a real broker.

Everything runs as the module vhost's administrator (guest); the Registry of the
files below registers guest as the DIRAC user ``gadmin``.  Broker users of their
own are tested in test_auth_security.py.
"""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
from diracmq.broker.config import Settings, set_default_settings
from diracmq.broker.derrno import ENOAUTH
from diracmq.client.base import Client
from diracmq_testing import environment, url_user, wait_until

import DIRAC
from DIRAC import gConfig
from DIRAC.ConfigurationSystem.Client.ConfigurationData import (
    ABSENT,
    LOADED,
    decode_compressed,
    gConfigurationData,
)
from DIRAC.ConfigurationSystem.Client.ConfigurationFile import parse, version_of

pytestmark = pytest.mark.timeout(120)

CS_QUEUE = "dirac.rpc.Configuration.Server"


def cs_text(broker_user: str, greeting: str = "hello", extra: str = "") -> str:
    return textwrap.dedent(f'''\
        [Registry]
        DefaultGroup = "dirac_admin"

        [Registry.Users.gadmin]
        BrokerUser = "{broker_user}"
        DN = "/DC=org/CN=Guest Admin"
        Groups = ["dirac_admin", "dirac_user"]

        [Registry.Groups.dirac_admin]
        Properties = ["CSAdministrator", "JobAdministrator"]

        [Registry.Groups.dirac_user]
        Properties = ["NormalUser"]

        [Operations]
        Greeting = "{greeting}"
        Sites = "LCG.CERN.ch, LCG.IN2P3.fr"
        {extra}
        ''')


@pytest.fixture(autouse=True)
def fresh_process_state(monkeypatch, workers) -> Iterator[None]:
    """Each test starts (and leaves) this process without configuration or settings.

    (It uses ``workers`` so that the refresher stops before the test's workers do.)
    """
    for name in ("DIRAC_CS_FILE", "DIRAC_GROUP", "DIRAC_CS_REFRESH", "DIRAC_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    gConfigurationData.reset()
    set_default_settings(None)
    yield
    gConfigurationData.reset()
    set_default_settings(None)


@pytest.fixture
def cs_file(tmp_path, vhost_url) -> Path:
    path = tmp_path / "cs.toml"
    path.write_text(cs_text(url_user(vhost_url)))
    return path


def start_configuration(workers, cs_file: Path):
    with environment(DIRAC_CS_FILE=str(cs_file)):
        return workers.start("Configuration", pythonpath=[])


def delete_cs_queue(vhost_url: str) -> None:
    """No Configuration service on the vhost any more (as on a fresh broker)."""
    conn = pika.BlockingConnection(pika.URLParameters(vhost_url))
    try:
        conn.channel().queue_delete(CS_QUEUE)
    finally:
        conn.close()


def cs_client(settings: Settings) -> Client:
    return Client(url="Configuration/Server", settings=settings)


# ------------------------------------------------------------- the service
def test_the_service_serves_the_file_and_its_version(workers, cs_file, settings):
    start_configuration(workers, cs_file)
    tree = parse(cs_file.read_text())
    server = cs_client(settings)
    version = server.getVersion()
    assert version == {"OK": True, "Value": version_of(tree)}
    whole = server.getConfiguration()["Value"]
    assert whole["Version"] == version["Value"] and whole["Data"] == tree
    assert whole["LoadError"] == ""
    assert decode_compressed(server.getCompressedData()["Value"]) == tree
    assert server.getCompressedDataIfNewer(version["Value"])["Value"] == {
        "newestVersion": version["Value"]}
    newer = server.getCompressedDataIfNewer("an-old-version")["Value"]
    assert decode_compressed(newer["data"]) == tree
    me = server.whoami()["Value"]
    assert (me["username"], me["group"], me["DN"]) == ("gadmin", "dirac_admin",
                                                      "/DC=org/CN=Guest Admin")


def test_the_service_serves_an_edit_at_once_and_keeps_a_good_version(workers, cs_file,
                                                                       settings):
    start_configuration(workers, cs_file)
    server = cs_client(settings)
    first = server.getVersion()["Value"]
    cs_file.write_text(cs_text(url_user(settings.url), greeting="bonjour"))
    second = server.getVersion()["Value"]
    assert second != first
    assert server.getConfiguration()["Value"]["Data"]["Operations"]["Greeting"] == "bonjour"
    # a broken file is not served: the last good version stays, and says why
    cs_file.write_text("[Operations\nbroken = ")
    assert server.getVersion()["Value"] == second
    assert "not valid TOML" in server.getConfiguration()["Value"]["LoadError"]
    # the same content, reformatted with a comment: the same version
    cs_file.write_text("# a comment\n" + cs_text(url_user(settings.url), greeting="bonjour"))
    assert server.getVersion()["Value"] == second
    assert server.getConfiguration()["Value"]["LoadError"] == ""


def test_the_service_refuses_to_start_without_a_file(workers, tmp_path):
    with environment(DIRAC_CS_FILE=str(tmp_path / "missing.toml")):
        worker = workers.start("Configuration", pythonpath=[], wait_ready=False)
    worker.expected_returncode = 1
    assert worker.wait(30) == 1
    assert "missing.toml" in worker.stderr()


# -------------------------------------------------------------- initialize
def test_initialize_loads_the_configuration(workers, cs_file, vhost_url):
    start_configuration(workers, cs_file)
    DIRAC.initialize(extra_config={"url": vhost_url, "rpc_timeout": 20,
                                   "Operations": {"Local": "yes"}})
    assert gConfigurationData.state == LOADED and gConfigurationData.source == "service"
    assert gConfig.getVersion() == version_of(parse(cs_file.read_text()))
    assert gConfig.getValue("/Operations/Greeting", "") == "hello"
    assert gConfig.getValue("/Operations/Sites", []) == ["LCG.CERN.ch", "LCG.IN2P3.fr"]
    assert gConfig.getValue("/Operations/Local", False) is True  # extra_config overlay
    assert gConfig.getValue("/Registry/Users/gadmin/DN") == "/DC=org/CN=Guest Admin"
    assert gConfig.getSections("/Registry/Groups")["Value"] == ["dirac_admin", "dirac_user"]


def test_the_refresher_picks_up_a_change_while_a_client_runs(workers, cs_file, vhost_url):
    start_configuration(workers, cs_file)
    DIRAC.initialize(extra_config={"url": vhost_url, "rpc_timeout": 20, "cs_refresh": 0.3})
    old = gConfig.getVersion()
    assert gConfig.getValue("/Operations/Greeting") == "hello"

    stop, errors, calls = threading.Event(), [], [0]

    def keep_calling() -> None:  # a client busy with RPC meanwhile
        server = Client(url="Configuration/Server", timeout=20)
        while not stop.is_set():
            result = server.whoami()
            if not result["OK"]:
                errors.append(result)
            calls[0] += 1

    thread = threading.Thread(target=keep_calling, daemon=True)
    thread.start()
    try:
        wait_until(lambda: calls[0] > 5, 10, "the client thread calling")
        cs_file.write_text(cs_text(url_user(vhost_url), greeting="bonjour"))
        assert gConfigurationData.waitForNewVersion(old, timeout=20), \
            "the refresher did not pick up the new version within 20 s"
        assert gConfig.getValue("/Operations/Greeting") == "bonjour"
        assert gConfig.getVersion() == version_of(parse(cs_file.read_text()))
        calls_at_change = calls[0]
        wait_until(lambda: calls[0] > calls_at_change + 5, 10, "the client still calling")
    finally:
        stop.set()
        thread.join(10)
    assert not errors, errors[:3]


def test_initialize_without_a_configuration_service_runs_without_one(vhost_url):
    """A broker where no Configuration service was ever started: dev mode, no error."""
    delete_cs_queue(vhost_url)
    DIRAC.initialize(extra_config={"url": vhost_url, "rpc_timeout": 20})
    assert gConfigurationData.state == ABSENT
    assert gConfig.getValue("/Operations/Greeting", "none") == "none"
    assert gConfig.getSections("/Registry")["OK"] is False


def test_initialize_raises_when_the_configuration_service_does_not_answer(workers, cs_file,
                                                                          vhost_url):
    worker = start_configuration(workers, cs_file)
    assert worker.stop() == 0  # its queue stays, nobody consumes it
    with pytest.raises(DIRAC.DIRACInitError, match="Configuration/Server did not confirm .*"
                                                   "no consumer"):
        DIRAC.initialize(extra_config={"url": vhost_url, "rpc_timeout": 2})
    # without require_auth it goes on, with an empty configuration for now
    DIRAC.initialize(require_auth=False, extra_config={"url": vhost_url, "rpc_timeout": 2})
    assert gConfig.getValue("/Operations/Greeting", "none") == "none"


def test_initialize_refuses_a_broker_user_the_registry_does_not_know(workers, tmp_path,
                                                                     vhost_url):
    cs = tmp_path / "cs.toml"
    cs.write_text(cs_text("somebody-else"))
    start_configuration(workers, cs)
    with pytest.raises(DIRAC.DIRACInitError, match="is not registered"):
        DIRAC.initialize(extra_config={"url": vhost_url, "rpc_timeout": 20})


def test_initialize_refuses_a_group_the_user_is_not_in(workers, cs_file, vhost_url):
    start_configuration(workers, cs_file)
    with pytest.raises(DIRAC.DIRACInitError, match="not a member of group 'lhcb_prod'"):
        DIRAC.initialize(extra_config={"url": vhost_url, "rpc_timeout": 20,
                                       "group": "lhcb_prod"})
    DIRAC.initialize(extra_config={"url": vhost_url, "rpc_timeout": 20,
                                   "group": "dirac_user"})
    me = Client(url="Configuration/Server").whoami()["Value"]
    assert (me["group"], me["properties"]) == ("dirac_user", ["NormalUser"])


# --------------------------------------------------------- without initialize
def test_a_client_without_initialize_needs_no_configuration_service(workers, vhost_url):
    delete_cs_queue(vhost_url)
    system = workers.start().system
    set_default_settings(Settings.load(url=vhost_url, rpc_timeout=20))
    me = Client(url=f"{system}/Dispatch").whoami()
    assert me["OK"] and me["Value"]["username"] == url_user(vhost_url), me  # dev mode
    assert gConfigurationData.state == "unloaded"  # plain RPC never touched the configuration


def test_gconfig_loads_on_first_use_without_initialize(workers, cs_file, vhost_url):
    start_configuration(workers, cs_file)
    set_default_settings(Settings.load(url=vhost_url, rpc_timeout=20))
    assert gConfig.getValue("/Operations/Greeting") == "hello"
    assert gConfigurationData.source == "service"
    assert gConfig.getOptionsDict("/Registry/Groups/dirac_user")["Value"] == {
        "Properties": ["NormalUser"]}


# ----------------------------------------------------- workers' configuration
def test_a_worker_reads_the_registry_from_its_local_file(workers, cs_file, vhost_url):
    """``DIRAC_CS_FILE`` on a worker: no Configuration service needed; edits apply."""
    delete_cs_queue(vhost_url)
    with environment(DIRAC_CS_FILE=str(cs_file)):
        system = workers.start().system
    dispatch = Client(url=f"{system}/Dispatch",
                      settings=Settings.load(url=vhost_url, rpc_timeout=20))
    me = dispatch.whoami()["Value"]
    assert (me["username"], me["group"]) == ("gadmin", "dirac_admin")
    cs_file.write_text(cs_text(url_user(vhost_url)).replace('DefaultGroup = "dirac_admin"',
                                                           'DefaultGroup = "dirac_user"'))
    wait_until(lambda: dispatch.whoami()["Value"]["group"] == "dirac_user", 10,
               "the worker re-reading its file")


def test_a_worker_fails_closed_while_the_configuration_service_is_down(workers, cs_file,
                                                                       vhost_url):
    """A Configuration service that exists but does not answer: callers are anonymous
    (no Registry means no properties, not everyone authenticated) until it is back."""
    configuration = start_configuration(workers, cs_file)
    assert configuration.stop() == 0
    with environment(DIRAC_RPC_TIMEOUT="2", DIRAC_CS_REFRESH="0.5"):
        system = workers.start().system
    dispatch = Client(url=f"{system}/Dispatch",
                      settings=Settings.load(url=vhost_url, rpc_timeout=20))
    me = dispatch.whoami()["Value"]
    assert me["username"] == "anonymous", me
    denied = dispatch.echoArgs(1)  # a method without auth_: authenticated callers only
    assert not denied["OK"] and denied["Errno"] == ENOAUTH
    start_configuration(workers, cs_file)
    wait_until(lambda: dispatch.whoami()["Value"]["username"] == "gadmin", 30,
               "the worker loading the Registry once the service is back")
    assert dispatch.echoArgs(1) == {"OK": True, "Value": [1]}
