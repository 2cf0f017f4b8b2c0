"""The catalogue's rule for job agents (``GenericPilot``), on SQLite and PostgreSQL: files
and directories in a user's home are made in that user's name; nothing is replaced or
removed; outside homes the agent has only its own rights (docs/security.md, "Job
agents and the owner's data").  tests/integration/test_jobs_data_e2e.py checks the same
through the broker, with the storage elements.
"""

from __future__ import annotations

import pytest

from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB

from .wms_conftest_helpers import fresh_postgres_database, ok

pytestmark = pytest.mark.timeout(120)

ALICE = {"username": "alice", "group": "users", "properties": ["NormalUser"]}
PILOT = {"username": "pilot", "group": "pilots", "properties": ["GenericPilot"]}
HOME = "/dirac/user/a/alice"


@pytest.fixture(params=["sqlite", "postgresql"])
def fcdb(request, tmp_path):
    if request.param == "sqlite":
        db = FileCatalogDB(f"sqlite:///{tmp_path / 'fc.sqlite'}")
        ok(db.initialize())
        yield db
        return
    with fresh_postgres_database("fcjob") as url:
        db = FileCatalogDB(url)
        ok(db.initialize())
        yield db
        db.engine.dispose()


def entry(guid: str, size: int = 5) -> dict:
    return {"Size": size, "GUID": guid, "Checksum": "00000001", "SE": "SE-A",
            "PFN": "diracmq://SE-A/x"}


def test_a_job_agent_registers_in_the_owners_name(fcdb):
    ok(fcdb.createDirectory([HOME], ALICE))
    lfns = {f"{HOME}/1/1/out.root": entry("G1"), "/dirac/user/b/bob/2/2/out.root": entry("G2"),
            "/dirac/data/run/x.root": entry("G3")}
    result = ok(fcdb.addFile(lfns, PILOT))
    assert set(result["Successful"]) == {f"{HOME}/1/1/out.root", "/dirac/user/b/bob/2/2/out.root"}
    assert "Permission denied" in result["Failed"]["/dirac/data/run/x.root"]
    meta = ok(fcdb.getFileMetadata([f"{HOME}/1/1/out.root",
                                    "/dirac/user/b/bob/2/2/out.root"]))["Successful"]
    assert (meta[f"{HOME}/1/1/out.root"]["Owner"],
            meta[f"{HOME}/1/1/out.root"]["OwnerGroup"]) == ("alice", "users")
    assert meta["/dirac/user/b/bob/2/2/out.root"]["Owner"] == "bob"
    dirs = ok(fcdb.getFileMetadata(["/dirac/user/b/bob", f"{HOME}/1"]))["Successful"]
    assert dirs["/dirac/user/b/bob"]["Owner"] == "bob" and dirs[f"{HOME}/1"]["Owner"] == "alice"
    # what alice owns, alice removes
    assert f"{HOME}/1/1/out.root" in ok(fcdb.removeFile([f"{HOME}/1/1/out.root"],
                                                        ALICE))["Successful"]


def test_a_job_agent_neither_replaces_nor_removes(fcdb):
    lfn = f"{HOME}/data/in.dat"
    ok(fcdb.addFile({lfn: entry("A1")}, ALICE))
    again = ok(fcdb.addFile({lfn: entry("OTHER", size=7)}, PILOT))
    assert "alternative metadata" in again["Failed"][lfn]
    assert lfn in ok(fcdb.removeFile([lfn], PILOT))["Failed"]
    assert lfn in ok(fcdb.removeReplica({lfn: {"SE": "SE-A"}}, PILOT))["Failed"]
    assert ok(fcdb.exists([lfn]))["Successful"][lfn] == "File"
    # in alice's home the agent only adds: the same registration again is a success
    assert lfn in ok(fcdb.addFile({lfn: entry("A1")}, PILOT))["Successful"]


def test_a_job_agent_makes_directories_in_homes_only(fcdb):
    made = ok(fcdb.createDirectory([f"{HOME}/new/dir", "/dirac/data/new",
                                    "/dirac/user/p/pilot/own"], PILOT))
    assert set(made["Successful"]) == {f"{HOME}/new/dir", "/dirac/user/p/pilot/own"}
    assert "Permission denied" in made["Failed"]["/dirac/data/new"]
    meta = ok(fcdb.getFileMetadata([f"{HOME}/new/dir", "/dirac/user/p/pilot/own"]))
    assert meta["Successful"][f"{HOME}/new/dir"]["Owner"] == "alice"
    assert meta["Successful"]["/dirac/user/p/pilot/own"]["Owner"] == "pilot"  # its own home
