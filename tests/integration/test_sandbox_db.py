"""Sandboxes stored in the SQL database (``DIRAC_SANDBOX_BACKEND=db``), through the broker.

A ``dirac-worker WorkloadManagement`` whose SandboxStore keeps contents as rows of its
JobDB, on SQLite and on PostgreSQL (a fresh database; skipped, saying why, when no
server answers); real broker users ``alice`` and ``bob`` (the Registry from a file).
The directory store's tests are in test_jobs_e2e.py; these check the same promises of
the database store: round trip, 200 MB within bounded memory on both sides, one copy
per content, removal with the job, and who may read what.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from diracmq.broker.config import Settings
from diracmq.broker.derrno import ENOAUTH
from diracmq_testing import WorkerPool, environment, url_vhost, url_with_vhost

from DIRAC.WorkloadManagementSystem.Client.JobManagerClient import JobManagerClient
from DIRAC.WorkloadManagementSystem.Client.SandboxStoreClient import SandboxStoreClient
from DIRAC.WorkloadManagementSystem.DB.JobDB import JobDB
from DIRAC.WorkloadManagementSystem.DB.SandboxMetadataDB import (
    contentChunksTable,
    contentsTable,
    uploadChunksTable,
)

from .test_jobs_e2e import HELD_ONLY, ROUND_TRIP
from .wms_conftest_helpers import broker_user, error, fresh_postgres_database, ok

pytestmark = pytest.mark.timeout(300)

CS = """\
[Registry]
DefaultGroup = ["users"]

[Registry.Users.alice]
BrokerUser = "{alice}"
Groups = ["users"]

[Registry.Users.bob]
BrokerUser = "{bob}"
Groups = ["users"]

[Registry.Groups.users]
Properties = ["NormalUser"]
"""


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def store(request, vhost_url, private_vhost, tmp_path_factory):
    """The WorkloadManagement worker with DIRAC_SANDBOX_BACKEND=db on either database."""
    if not private_vhost:
        pytest.skip("needs rabbitmqctl (a private vhost and broker users)")
    vhost = url_vhost(vhost_url)
    workdir = tmp_path_factory.mktemp(f"sandbox-db-{request.param}")
    with contextlib.ExitStack() as stack:
        if request.param == "sqlite":
            db_url = f"sqlite:///{workdir / 'JobDB.sqlite'}"
        else:
            db_url = stack.enter_context(fresh_postgres_database("sandboxes"))
        names, urls, settings = {}, {}, {}
        for role in ("alice", "bob"):
            name, password = stack.enter_context(broker_user(vhost, role))
            names[role] = name
            urls[role] = url_with_vhost(f"amqp://{quote(name)}:{password}@127.0.0.1:5672/",
                                        vhost)
            settings[role] = Settings.load(url=urls[role], rpc_timeout=60.0,
                                           connect_timeout=5.0, group="")
        cs = workdir / "cs.toml"
        cs.write_text(CS.format(**names))
        env = {"DIRAC_CS_FILE": str(cs), "DIRAC_DATA_DIR": str(workdir / "data"),
               "DIRAC_JOBDB_URL": db_url, "DIRAC_SANDBOX_BACKEND": "db",
               "DIRAC_GROUP": None, **HELD_ONLY}
        pool = WorkerPool(vhost_url, workdir, private_vhost)
        with environment(**env):
            pool.start("WorkloadManagement", pythonpath=[])
        try:
            yield {"pool": pool, "urls": urls, "settings": settings, "db": JobDB(db_url),
                   "workdir": workdir}
        finally:
            problems = pool.stop_all()
            assert not problems, problems


def rows(store, table, **where):
    db = store["db"]
    stmt = sa.select(sa.func.count()).select_from(table).where(
        *(table.c[k] == v for k, v in where.items()))
    return db._run(lambda conn: conn.scalar(stmt), write=False)


def nothing_on_disk(store):
    """The database store writes no content file (the directory store's folder)."""
    folder = store["workdir"] / "data" / "sandboxes"
    return not folder.exists() or not [p for p in folder.rglob("*") if p.is_file()]


def test_a_200_mb_sandbox_round_trip_in_the_database_stays_within_bounded_memory(
        store, tmp_path):
    src, dst = tmp_path / "big.bin", tmp_path / "back.bin"
    digest = hashlib.sha256()
    with src.open("wb") as fh:
        for _ in range(200):
            block = os.urandom(1 << 20)
            digest.update(block)
            fh.write(block)
    wms = store["pool"].workers[0]
    done = subprocess.run([sys.executable, "-c", ROUND_TRIP, store["urls"]["alice"],
                           str(src), str(dst)], capture_output=True, text=True, timeout=280,
                          env=dict(os.environ, **HELD_ONLY))
    assert done.returncode == 0, done.stderr
    client_peak_mb = int(done.stdout.strip())
    status_text = Path(f"/proc/{wms.pid}/status").read_text()
    worker_peak_mb = int(next(line.split()[1] for line in status_text.splitlines()
                              if line.startswith("VmHWM:"))) // 1024
    assert src.stat().st_size == dst.stat().st_size == 200 << 20
    assert src.read_bytes() == dst.read_bytes()
    # the content is 200 rows of 1 MiB in the database, the upload's rows are gone
    sha = digest.hexdigest()
    assert rows(store, contentChunksTable, SHA256=sha) == 200
    assert rows(store, contentsTable, SHA256=sha) == 1
    assert rows(store, uploadChunksTable) == 0
    assert nothing_on_disk(store)
    print(f"VmHWM client {client_peak_mb} MB, worker {worker_peak_mb} MB")
    # neither side ever held the 200 MB (the same bounds as the directory store's test)
    assert client_peak_mb < 120, client_peak_mb
    assert worker_peak_mb < 160, worker_peak_mb


def test_database_sandboxes_are_stored_once_read_by_whom_may_and_go_with_the_job(
        store, tmp_path):
    alice = SandboxStoreClient(settings=store["settings"]["alice"])
    bob = SandboxStoreClient(settings=store["settings"]["bob"])
    (tmp_path / "input.txt").write_text("alice's input\n" * 1000)
    name = ok(alice.uploadFilesAsSandbox([tmp_path / "input.txt"]))
    sha = ok(alice.rpc.getSandboxInfo(name))["SHA256"]
    assert rows(store, contentChunksTable, SHA256=sha) == 1
    # dedup: the same content again is not sent again, nor stored twice
    assert ok(alice.uploadFilesAsSandbox([tmp_path / "input.txt"])) == name
    bobs = ok(bob.uploadFilesAsSandbox([tmp_path / "input.txt"]))  # his own record
    assert bobs != name
    assert rows(store, contentChunksTable, SHA256=sha) == 1
    # ownership: bob reads his sandbox, not alice's
    assert error(bob.rpc.getSandboxInfo(name))["Errno"] == ENOAUTH
    assert error(bob.rpc.downloadChunk(name, 0, 100))["Errno"] == ENOAUTH
    assert error(bob.downloadSandbox(name, str(tmp_path / "bob")))["Errno"] == ENOAUTH
    assert ok(bob.downloadSandbox(bobs, str(tmp_path / "bob"))) == ["input.txt"]
    assert ok(alice.downloadSandbox(name, str(tmp_path / "alice"))) == ["input.txt"]
    assert (tmp_path / "alice" / "input.txt").read_text() == "alice's input\n" * 1000
    # assigned to alice's job (bob may not assign his to it); deleting the job removes
    # alice's record, the content stays while bob's record uses it
    manager = JobManagerClient(settings=store["settings"]["alice"])
    job_id = ok(manager.submitJob('[Executable = "/bin/true";]'))
    assert error(bob.assignSandboxesToJob(job_id, [(bobs, "Input")]))["Errno"] == ENOAUTH
    ok(alice.assignSandboxesToJob(job_id, [(name, "Input")]))
    assert ok(alice.getSandboxesForJob(job_id))["Input"] == [name]
    ok(manager.deleteJob(job_id))
    assert "no sandbox" in error(alice.rpc.getSandboxInfo(name))["Message"]
    assert rows(store, contentChunksTable, SHA256=sha) == 1
    # bob's job goes too: now nothing uses the content, and its rows are deleted
    bob_manager = JobManagerClient(settings=store["settings"]["bob"])
    bob_job = ok(bob_manager.submitJob('[Executable = "/bin/true";]'))
    ok(bob.assignSandboxesToJob(bob_job, [(bobs, "Input")]))
    ok(bob_manager.deleteJob(bob_job))
    assert rows(store, contentChunksTable, SHA256=sha) == 0
    assert rows(store, contentsTable, SHA256=sha) == 0
    assert nothing_on_disk(store)
