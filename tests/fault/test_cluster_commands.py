"""The commands of issue 12: ``dirac-rabbitmq-cluster`` and ``dirac-make-test-certs``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pika
import pytest
from cryptography import x509
from diracmq.broker import dn
from diracmq.broker.localrabbit import LocalNode, NodeUnavailable, port_open

pytestmark = pytest.mark.timeout(180)


def command(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def test_make_test_certs_writes_a_ca_host_and_user_certificates(tmp_path):
    out = tmp_path / "certs"
    done = subprocess.run([command("dirac-make-test-certs"), str(out), "--user", "alice",
                           "--user", "Bob Smith", "--host", "dirac.example.org"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "/DC=org/DC=diracmq-test/CN=Bob Smith" in done.stdout
    assert "'CN=Bob Smith,DC=diracmq-test,DC=org'" in done.stdout
    ca = x509.load_pem_x509_certificate((out / "ca.pem").read_bytes())
    host = x509.load_pem_x509_certificate((out / "host.pem").read_bytes())
    alice = x509.load_pem_x509_certificate((out / "alice.pem").read_bytes())
    assert host.issuer == ca.subject == alice.issuer
    names = host.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "dirac.example.org" in names.get_values_for_type(x509.DNSName)
    assert dn.subject_to_rfc4514(alice.subject) == "CN=alice,DC=diracmq-test,DC=org"
    assert b"PRIVATE KEY" in (out / "alice.pem").read_bytes()  # proxy-style: cert + key
    assert (out / "alice.pem").stat().st_mode & 0o077 == 0
    assert (out / "certificates" / "ca.pem").read_bytes() == (out / "ca.pem").read_bytes()


@pytest.mark.slow
def test_rabbitmq_cluster_command_starts_and_stops_nodes(tmp_path):
    folder = tmp_path / "cluster"
    port = 0
    try:
        done = subprocess.run([command("dirac-rabbitmq-cluster"), "start", "--nodes", "1",
                               "--dir", str(folder)], capture_output=True, text=True,
                              timeout=150)
        if done.returncode != 0 and "no rabbitmq-server" in done.stderr:
            pytest.skip(done.stderr)
        assert done.returncode == 0, done.stderr[-2000:]
        urls = done.stdout.strip().split(",")
        assert len(urls) == 1 and urls[0].startswith("amqp://guest:guest@127.0.0.1:")
        state = json.loads((folder / "cluster.json").read_text())
        port = state["nodes"][0]["amqp"]
        conn = pika.BlockingConnection(pika.URLParameters(urls[0]))
        conn.close()
        again = subprocess.run([command("dirac-rabbitmq-cluster"), "start", "--dir",
                                str(folder)], capture_output=True, text=True, timeout=30)
        assert again.returncode == 2 and "already holds" in again.stderr
    finally:
        stop = subprocess.run([command("dirac-rabbitmq-cluster"), "stop", "--dir",
                               str(folder)], capture_output=True, text=True, timeout=60)
    assert stop.returncode == 0, stop.stderr
    assert port and not port_open(port)
    assert not (folder / "cluster.json").exists()


def test_a_node_can_be_given_ra_wal_sync_method(tmp_path):
    """bench/cluster.py's ``quorum-3-nosync`` setup and ``--wal-sync-method``: the setting
    goes into the node's advanced.config, beside net_ticktime (RabbitMQ 3.10's
    rabbitmq.conf has no key for it); only Ra's values are accepted."""
    try:
        node = LocalNode(tmp_path / "n", tmp_path, "x@localhost", net_ticktime=20,
                         wal_sync_method="none")
    except NodeUnavailable as exc:
        pytest.skip(str(exc))
    assert (node.dir / "advanced.config").read_text() == \
        "[{kernel, [{net_ticktime, 20}]}, {ra, [{wal_sync_method, none}]}].\n"
    plain = LocalNode(tmp_path / "p", tmp_path, "y@localhost")
    assert (plain.dir / "advanced.config").read_text() == "[].\n"
    with pytest.raises(ValueError, match="wal_sync_method"):
        LocalNode(tmp_path / "q", tmp_path, "z@localhost", wal_sync_method="fast")


def test_a_node_can_be_given_ra_wal_write_strategy_and_erl_args(tmp_path):
    """bench/cluster.py's ``quorum-3-notify`` setup, ``--wal-write-strategy`` and
    ``--erl-args``: Ra's write strategy joins the sync method in advanced.config's ``ra``
    section; extra Erlang flags go after the start scripts' own (so they win); only
    Ra's strategies are accepted."""
    node = LocalNode(tmp_path / "n", tmp_path, "x@localhost", wal_sync_method="none",
                     wal_write_strategy="sync_after_notify", erl_args=["+stbt", "u"])
    assert (node.dir / "advanced.config").read_text() == \
        "[{ra, [{wal_sync_method, none}, {wal_write_strategy, sync_after_notify}]}].\n"
    assert node.env["RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS"].endswith(" +stbt u")
    with pytest.raises(ValueError, match="wal_write_strategy"):
        LocalNode(tmp_path / "q", tmp_path, "z@localhost", wal_write_strategy="fast")
