"""The ``dirac-dms-*`` commands, run as the installed console scripts by a real broker user
(alice) against a ``dirac-worker DataManagement`` (SQLite catalogue, SE-A and SE-B);
``dirac-dms-filecatalog-cli`` driven through a pseudo-terminal, typed as a person would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from .dms_helpers import ok, running_dms

pytestmark = pytest.mark.timeout(240)

BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def dms(vhost_url, private_vhost, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("dms-cli")
    with running_dms(vhost_url, private_vhost, workdir, "sqlite") as running:
        yield running


@pytest.fixture
def env(dms, tmp_path):
    """A command's environment: alice's broker URL, a HOME of its own, nothing else of
    DIRAC's."""
    values = {k: v for k, v in os.environ.items()
              if not k.startswith(("DIRAC_", "DIRACTEST_", "PYTHONPATH"))}
    values.update(DIRAC_BROKER_URL=dms.urls["alice"], HOME=str(tmp_path))
    return values


def run(env, command, *args, cwd=None):
    return subprocess.run([str(BIN / command), *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


def test_commands_round_trip(dms, env, tmp_path):
    home = dms.home("alice")
    lfn = f"{home}/cli/run1.dat"
    local = tmp_path / "run1.dat"
    local.write_bytes(os.urandom(300_000))

    added = run(env, "dirac-dms-add-file", lfn, local, "SE-A")
    assert added.returncode == 0, added.stderr
    assert f"Successfully uploaded {lfn} to SE-A" in added.stdout
    again = run(env, "dirac-dms-add-file", lfn, local, "SE-A")
    assert again.returncode == 3 and "already exists" in again.stderr
    assert run(env, "dirac-dms-add-file", lfn + "x", tmp_path / "nope", "SE-A").returncode == 1
    assert run(env, "dirac-dms-add-file", lfn + "x", tmp_path, "SE-A").returncode == 2
    # a file of "LFN PATH SE" lines
    (tmp_path / "list").write_text(f"{home}/cli/run2.dat {local} SE-A\n")
    assert run(env, "dirac-dms-add-file", tmp_path / "list").returncode == 0

    replicas = run(env, "dirac-dms-lfn-replicas", lfn)
    assert replicas.returncode == 0 and f"SE-A : diracmq://SE-A{lfn}" in replicas.stdout

    copied = run(env, "dirac-dms-replicate-lfn", lfn, "SE-B")
    assert copied.returncode == 0, copied.stderr
    as_json = run(env, "dirac-dms-lfn-replicas", "--json", lfn)
    assert set(json.loads(as_json.stdout)["Successful"][lfn]) == {"SE-A", "SE-B"}

    out = tmp_path / "out"
    got = run(env, "dirac-dms-get-file", lfn, "-D", out)
    assert got.returncode == 0, got.stderr
    assert (out / "run1.dat").read_bytes() == local.read_bytes()

    found = run(env, "dirac-dms-find-lfns", f"--Path={home}/cli", "Size>1000")
    assert found.returncode == 0 and found.stdout.split() == [lfn, f"{home}/cli/run2.dat"]
    assert run(env, "dirac-dms-find-lfns", "Size").returncode == 2       # no operator
    bad_value = run(env, "dirac-dms-find-lfns", "Size>>1")
    assert bad_value.returncode == 1 and "invalid value" in bad_value.stderr
    mine = run(env, "dirac-dms-user-lfns")
    assert mine.returncode == 0, mine.stderr
    assert lfn in mine.stdout.splitlines() and f"files under {home}" in mine.stdout

    removed = run(env, "dirac-dms-remove-files", lfn, f"{home}/cli/run2.dat")
    assert removed.returncode == 0 and f"Successfully removed {lfn}" in removed.stdout
    missing = run(env, "dirac-dms-lfn-replicas", lfn)
    assert missing.returncode == 1 and "No such file" in missing.stderr
    assert run(env, "dirac-dms-get-file", "not-an-lfn").returncode == 2


def test_every_command_has_help(env):
    for command in ("dirac-dms-add-file", "dirac-dms-get-file", "dirac-dms-lfn-replicas",
                    "dirac-dms-remove-files", "dirac-dms-replicate-lfn", "dirac-dms-find-lfns",
                    "dirac-dms-user-lfns", "dirac-dms-filecatalog-cli"):
        shown = run(env, command, "--help")
        assert shown.returncode == 0 and "Example" in shown.stdout, command


def test_filecatalog_cli_in_a_terminal(dms, env, tmp_path):
    """Typed into a pseudo-terminal: the prompt, each command's output, errors that do
    not end the shell, and exit."""
    home = dms.home("alice")
    # a metadata field to play with (declaring one is the administrator's)
    from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient

    ok(FileCatalogClient(settings=dms.settings["admin"]).addMetadataField("Run", "INT", "-d"))
    data = tmp_path / "data.txt"
    data.write_text("hello from the shell\n" * 100)
    shell = pexpect.spawn(str(BIN / "dirac-dms-filecatalog-cli"), env=env, cwd=str(tmp_path),
                          encoding="utf-8", timeout=60, dimensions=(40, 200))
    try:
        shell.expect_exact("FC:/> ")

        def say(line, *expected, prompt=None):
            shell.sendline(line)
            seen = ""
            for text in (*expected, prompt or shell_prompt[0]):
                shell.expect_exact(text)
                seen += shell.before + shell.after
            return seen

        shell_prompt = ["FC:/> "]
        say("pwd", "/")
        say(f"mkdir {home}/shell", f"Created {home}/shell")
        shell_prompt[0] = f"FC:{home}/shell> "
        say(f"cd {home}/shell")
        say(f"add data.txt {data} SE-A", f"File {home}/shell/data.txt successfully uploaded")
        listing = say("ls -l", "data.txt")
        assert "-rw-r--r--" in listing and dms.names["alice"] in listing
        say("replicas data.txt", f"lfn: {home}/shell/data.txt", "SE-A")
        say("replicate data.txt SE-B", "successfully replicated to the SE-B SE")
        say("replicas data.txt", "SE-A", "SE-B")
        say("meta set . Run 7", "Run = 7 set on")
        say("meta get .", "Run : 7")
        say("find Run=7", f"{home}/shell/data.txt", "1 files found")
        say("find Run>7", "0 files found")
        say("size", "Logical Size: 2,100 Files: 1")
        (tmp_path / "down").mkdir()
        say(f"get data.txt {tmp_path / 'down'}", "downloaded to")
        assert (tmp_path / "down" / "data.txt").read_text() == data.read_text()
        # mistakes are reported and the shell goes on
        say("cd /no/such/dir", "ERROR:")
        say("frobnicate", "ERROR: unknown command 'frobnicate'")
        say("meta index Forbidden INT", "ERROR:")
        say("add only-two-args x", "ERROR: usage: add lfn localfile SE [GUID]")
        say("rm data.txt", f"Removed {home}/shell/data.txt")
        say("ls", prompt=shell_prompt[0])
        shell.sendline("exit")
        shell.expect(pexpect.EOF)
    finally:
        shell.close()
    assert shell.exitstatus == 0


def test_no_configuration_serves_se_user(fresh_vhost_url, private_vhost, tmp_path):
    """With no configuration at all: the catalogue and SE-USER under the data directory,
    and a new user's first dirac-dms-add-file works at once."""
    from diracmq_testing import WorkerPool, url_user

    data = tmp_path / "data"
    pool = WorkerPool(fresh_vhost_url, tmp_path / "w", private_vhost)
    with pytest.MonkeyPatch.context() as mp:
        for name in ("DIRAC_CS_FILE", "DIRAC_FILECATALOGDB_URL", "DIRAC_CONFIG_FILE"):
            mp.delenv(name, raising=False)
        mp.setenv("DIRAC_DATA_DIR", str(data))
        worker = pool.start("DataManagement", pythonpath=[])
    try:
        assert worker.services() == {"DataManagement/FileCatalog",
                                     "DataManagement/StorageElement_SE_USER"}
        user = url_user(fresh_vhost_url)
        values = {k: v for k, v in os.environ.items()
                  if not k.startswith(("DIRAC_", "DIRACTEST_", "PYTHONPATH"))}
        values.update(DIRAC_BROKER_URL=fresh_vhost_url, HOME=str(tmp_path))
        local = tmp_path / "hello.txt"
        local.write_text("hello\n")
        lfn = f"/dirac/user/{user[0]}/{user}/hello.txt"
        added = run(values, "dirac-dms-add-file", lfn, local, "SE-USER")
        assert added.returncode == 0, added.stderr
        assert (data / "SE-USER" / "data" / lfn.lstrip("/")).read_text() == "hello\n"
        assert (data / "FileCatalogDB.sqlite").exists()
        mine = run(values, "dirac-dms-user-lfns")
        assert mine.returncode == 0 and lfn in mine.stdout.splitlines(), mine
    finally:
        assert not pool.stop_all()
