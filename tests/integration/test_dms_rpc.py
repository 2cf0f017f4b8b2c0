"""The DataManagement System end to end: DIRAC's clients -> RabbitMQ -> a real
``dirac-worker DataManagement --processes 2`` (the catalogue on SQLite, then PostgreSQL,
and two storage elements SE-A and SE-B with a 1 MB quota) with real broker users.
"""

from __future__ import annotations

import errno
import os
import zlib
from pathlib import Path

import pytest

from DIRAC.DataManagementSystem.Client.DataManager import DataManager
from DIRAC.Resources.Catalog.FileCatalog import FileCatalog
from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient
from DIRAC.Resources.Storage.StorageElement import StorageElement

from .dms_helpers import bulk_failed, bulk_ok, ok, running_dms

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def dms(request, vhost_url, private_vhost, tmp_path_factory):
    workdir = tmp_path_factory.mktemp(f"dms-{request.param}")
    with running_dms(vhost_url, private_vhost, workdir, request.param,
                     processes=2) as running:
        yield running


def fc(dms, who="alice"):
    return FileCatalogClient(settings=dms.settings[who])


def dm(dms, who="alice"):
    return DataManager(settings=dms.settings[who])


def se(dms, name, who="alice", **kw):
    return StorageElement(name, settings=dms.settings[who], **kw)


def make_file(path: Path, size: int, seed: int = 1) -> str:
    """A file of ``size`` pseudo-random bytes; its adler32 as 8 hex digits."""
    data = os.urandom(min(size, 1 << 20)) if seed else b"\0" * min(size, 1 << 20)
    value = 1
    with open(path, "wb") as fh:
        left = size
        while left:
            block = data[:left]
            fh.write(block)
            value = zlib.adler32(block, value)
            left -= len(block)
    return f"{value:08x}"


# ------------------------------------------------------------------ catalogue
def test_catalogue_bulk_conventions(dms):
    cat = fc(dms)
    home = dms.home("alice")
    lfn1, lfn2 = f"{home}/bulk/one", f"{home}/bulk/two"
    done = bulk_ok(cat.addFile({
        f"LFN:{lfn1}": {"Size": 3, "Checksum": "0000000a", "GUID": f"G1-{dms.backend}",
                        "SE": "SE-A", "PFN": f"diracmq://SE-A{lfn1}"},
        lfn2 + "//": {"Size": 4},
        "relative/path": {"Size": 1},
        f"{home}/bulk/bad": {"Size": "big"},
    }), lfn1, lfn2)
    assert done == {lfn1: True, lfn2: True}
    failed = ok(cat.addFile({"relative/path": {"Size": 1}, f"{home}/bulk/x": {}}))["Failed"]
    assert set(failed) == {"relative/path", f"{home}/bulk/x"}

    # str, list and dict arguments; a missing LFN fails alone
    assert bulk_ok(cat.getReplicas(lfn1), lfn1) == {lfn1: {"SE-A": f"diracmq://SE-A{lfn1}"}}
    assert bulk_ok(cat.getReplicas([lfn1, lfn2]), lfn1, lfn2)[lfn2] == {}
    assert bulk_ok(cat.getReplicasForJobs([lfn1]))[lfn1] == {"SE-A": f"diracmq://SE-A{lfn1}"}
    assert "No such file" in bulk_failed(cat.getReplicas({lfn1: None, "/no/such": None}),
                                         "/no/such")["/no/such"]
    meta = bulk_ok(cat.getFileMetadata(lfn1), lfn1)[lfn1]
    for key in ("Size", "Checksum", "ChecksumType", "UID", "GID", "GUID", "CreationDate",
                "ModificationDate", "Mode", "Status"):
        assert key in meta, key
    assert meta["Size"] == 3 and meta["Checksum"] == "0000000a"
    assert meta["Owner"] == dms.names["alice"] and meta["Mode"] == 0o644
    assert bulk_ok(cat.getFileSize([lfn1, lfn2])) == {lfn1: 3, lfn2: 4}
    assert bulk_ok(cat.isFile([lfn1, f"{home}/bulk"])) == {lfn1: True, f"{home}/bulk": False}
    assert bulk_ok(cat.isDirectory(f"{home}/bulk")) == {f"{home}/bulk": True}
    assert bulk_ok(cat.exists([lfn1, "/nothing/here"])) == {lfn1: "File",
                                                           "/nothing/here": False}

    listing = bulk_ok(cat.listDirectory(f"{home}/bulk", True))[f"{home}/bulk"]
    assert set(listing) == {"Files", "SubDirs", "Links"}
    assert set(listing["Files"]) == {lfn1, lfn2}
    assert listing["Files"][lfn1]["Replicas"]["SE-A"]["PFN"] == f"diracmq://SE-A{lfn1}"
    assert f"{home}/bulk" in bulk_ok(cat.listDirectory(home))[home]["SubDirs"]

    size = bulk_ok(cat.getDirectorySize(home, True))[home]
    assert size["LogicalFiles"] >= 2 and size["LogicalSize"] >= 7
    assert size["PhysicalSize"]["SE-A"]["Files"] >= 1

    # an empty or wrongly typed argument is a clear S_ERROR, not a crash
    for bad in ([], {}, "", 42, None):
        result = cat.getReplicas(bad)
        assert result["OK"] is False, (bad, result)
    empty = cat.getReplicas([])
    assert empty["Errno"] == errno.EINVAL

    # replicas: add, list, remove; removing one not there counts as done
    bulk_ok(cat.addReplica({lfn2: {"SE": "SE-B", "PFN": "p"}}), lfn2)
    assert bulk_ok(cat.getReplicas(lfn2))[lfn2] == {"SE-B": "p"}
    bulk_ok(cat.removeReplica({lfn2: {"SE": "SE-B"}, lfn1: {"SE": "SE-X"}}), lfn1, lfn2)
    assert bulk_ok(cat.getReplicas(lfn2))[lfn2] == {}

    # removal; a second removal reports the file missing
    bulk_ok(cat.removeFile([lfn1, lfn2]), lfn1, lfn2)
    assert "No such file" in bulk_failed(cat.removeFile(lfn1), lfn1)[lfn1]
    # an identical re-registration (same GUID) is accepted, a different one refused
    lfn3 = f"{home}/bulk/three"
    bulk_ok(cat.addFile({lfn3: {"Size": 1, "GUID": f"G3-{dms.backend}"}}), lfn3)
    bulk_ok(cat.addFile({lfn3: {"Size": 1, "GUID": f"G3-{dms.backend}"}}), lfn3)
    assert "alternative" in bulk_failed(cat.addFile({lfn3: {"Size": 2}}), lfn3)[lfn3]
    assert "GUID" in bulk_failed(cat.addFile(
        {f"{home}/bulk/four": {"Size": 1, "GUID": f"G3-{dms.backend}"}}),
        f"{home}/bulk/four")[f"{home}/bulk/four"]


def test_permissions_between_two_users(dms):
    alice, bob, admin = fc(dms, "alice"), fc(dms, "bob"), fc(dms, "admin")
    ahome, bhome = dms.home("alice"), dms.home("bob")
    mine = f"{ahome}/perm/private"
    bulk_ok(alice.addFile({mine: {"Size": 1}}), mine)
    bulk_ok(bob.addFile({f"{bhome}/perm/own": {"Size": 1}}))

    # bob reads alice's files but cannot write in her home, nor remove her files
    assert bulk_ok(bob.getFileSize(mine)) == {mine: 1}
    intruder = f"{ahome}/perm/from-bob"
    assert "Permission denied" in bulk_failed(bob.addFile({intruder: {"Size": 1}}),
                                              intruder)[intruder]
    assert "Permission denied" in bulk_failed(bob.removeFile(mine), mine)[mine]
    assert "Permission denied" in bulk_failed(bob.createDirectory(f"{ahome}/x"),
                                              f"{ahome}/x")[f"{ahome}/x"]
    assert "Permission denied" in bulk_failed(
        bob.addReplica({mine: {"SE": "SE-B", "PFN": ""}}), mine)[mine]
    # nor outside any home
    assert "Permission denied" in bulk_failed(bob.addFile({"/dirac/data/f": {"Size": 1}}),
                                              "/dirac/data/f")["/dirac/data/f"]
    # one refused LFN does not fail the others
    both = ok(bob.addFile({intruder: {"Size": 1}, f"{bhome}/perm/two": {"Size": 1}}))
    assert list(both["Successful"]) == [f"{bhome}/perm/two"] and list(both["Failed"]) == [
        intruder]

    # where the directory's mode lets others write, bob may
    shared = f"{ahome}/perm"
    assert "only the owner" in bulk_failed(bob.changePathMode({shared: 0o777}),
                                           shared)[shared]
    bulk_ok(alice.changePathMode({shared: 0o777}), shared)
    bulk_ok(bob.addFile({intruder: {"Size": 1}}), intruder)

    # FileCatalogManagement writes anywhere
    bulk_ok(admin.addFile({f"/dirac/data/{dms.backend}/f": {"Size": 1}}))
    bulk_ok(admin.removeFile(mine), mine)


def test_metadata_fields_and_queries(dms):
    admin, alice, bob = fc(dms, "admin"), fc(dms, "alice"), fc(dms, "bob")
    home = dms.home("alice")
    assert alice.addMetadataField("Energy", "INT", "-d")["Errno"] == errno.EACCES
    ok(admin.addMetadataField("Energy", "INT", "-d"))
    ok(admin.addMetadataField("Particle", "VARCHAR(32)", "-d"))
    ok(admin.addMetadataField("Quality", "FLOAT", "-f"))
    assert admin.addMetadataField("Bad", "BLOB")["OK"] is False
    fields = ok(alice.getMetadataFields())
    assert fields["DirectoryMetaFields"]["Energy"] == "int"
    assert fields["FileMetaFields"]["Quality"] == "float"

    files = {}
    for energy, particle in ((100, "electron"), (200, "muon"), (300, "muon")):
        directory = f"{home}/meta/e{energy}"
        lfns = [f"{directory}/f{i}" for i in range(2)]
        bulk_ok(alice.addFile({lfn: {"Size": energy + i} for i, lfn in enumerate(lfns)}))
        ok(alice.setMetadata(directory, {"Energy": energy, "Particle": particle}))
        for i, lfn in enumerate(lfns):
            ok(alice.setMetadata(lfn, {"Quality": 0.5 * i}))
        files[energy] = lfns
    # a subdirectory inherits, and can override
    sub = f"{home}/meta/e300/low"
    bulk_ok(alice.addFile({f"{sub}/g": {"Size": 1}}))
    ok(alice.setMetadata(sub, {"Energy": 50}))
    assert ok(alice.getDirectoryUserMetadata(sub)) == {"Energy": 50, "Particle": "muon"}
    assert ok(alice.getFileUserMetadata(files[100][1])) == {
        "Energy": 100, "Particle": "electron", "Quality": 0.5}

    def find(query):
        return sorted(ok(alice.findFilesByMetadata(query, f"{home}/meta")))

    assert find({"Energy": 200}) == files[200]
    assert find({"Particle": "muon"}) == sorted(files[200] + files[300] + [f"{sub}/g"])
    assert find({"Particle": {"!=": "muon"}}) == files[100]
    assert find({"Energy": {">": 150}}) == sorted(files[200] + files[300])
    assert find({"Energy": {"<": 150}}) == sorted(files[100] + [f"{sub}/g"])
    assert find({"Energy": {"in": [100, 300]}}) == sorted(files[100] + files[300])
    assert find({"Energy": [100, 300], "Quality": {">": 0.1}}) == sorted(
        [files[100][1], files[300][1]])
    assert find({"Size": {">": 250}}) == sorted(files[300])
    # errors: unknown field, bad value, wrong kind of path, someone else's directory
    assert alice.findFilesByMetadata({"Nope": 1})["Errno"] == errno.EINVAL
    assert alice.findFilesByMetadata({"Energy": "lots"})["Errno"] == errno.EINVAL
    assert alice.findFilesByMetadata({"Energy": {"~": 1}})["Errno"] == errno.EINVAL
    assert alice.setMetadata(files[100][0], {"Energy": 1})["Errno"] == errno.EINVAL
    assert alice.setMetadata(f"{home}/meta/e100", {"Energy": "x"})["Errno"] == errno.EINVAL
    assert bob.setMetadata(f"{home}/meta/e100", {"Energy": 1})["Errno"] == errno.EACCES


# ------------------------------------------------------------ data management
def test_put_get_replicate_remove(dms, tmp_path):
    manager = dm(dms)
    lfn = f"{dms.home('alice')}/data/{dms.backend}/file.dat"
    source = tmp_path / "file.dat"
    adler = make_file(source, 600_000)

    done = bulk_ok(manager.putAndRegister(lfn, str(source), "SE-A"), lfn)[lfn]
    assert set(done) == {"put", "register"}
    meta = bulk_ok(fc(dms).getFileMetadata(lfn))[lfn]
    assert meta["Size"] == 600_000 and meta["Checksum"] == adler
    assert (dms.ses["SE-A"] / "data" / lfn.lstrip("/")).read_bytes() == source.read_bytes()
    # a second put of the same LFN is refused (the catalogue has it)
    assert manager.putAndRegister(lfn, str(source), "SE-A")["Errno"] == errno.EEXIST
    # empty and missing files are refused
    (tmp_path / "empty").write_bytes(b"")
    assert manager.putAndRegister(lfn + "2", str(tmp_path / "empty"), "SE-A")["OK"] is False
    assert manager.putAndRegister(lfn + "2", str(tmp_path / "nope"), "SE-A")["OK"] is False

    out = tmp_path / "out"
    got = bulk_ok(manager.getFile(lfn, str(out)), lfn)
    assert Path(got[lfn]).read_bytes() == source.read_bytes()

    bulk_ok(manager.replicateAndRegister(lfn, "SE-B"), lfn)
    replicas = bulk_ok(manager.getReplicas(lfn))[lfn]
    assert set(replicas) == {"SE-A", "SE-B"}
    assert bulk_ok(manager.getActiveReplicas(lfn))[lfn] == replicas
    assert (dms.ses["SE-B"] / "data" / lfn.lstrip("/")).read_bytes() == source.read_bytes()

    bulk_ok(manager.removeReplica("SE-A", lfn), lfn)
    assert set(bulk_ok(manager.getReplicas(lfn))[lfn]) == {"SE-B"}
    assert not (dms.ses["SE-A"] / "data" / lfn.lstrip("/")).exists()
    assert "sole replica" in bulk_failed(manager.removeReplica("SE-B", lfn), lfn)[lfn]
    # and it is still readable from the one left
    bulk_ok(manager.getFile(lfn, str(tmp_path / "again")), lfn)

    # bob can neither remove alice's file nor write it to an SE
    assert bulk_failed(dm(dms, "bob").removeFile(lfn), lfn)
    assert (dms.ses["SE-B"] / "data" / lfn.lstrip("/")).exists()

    bulk_ok(manager.removeFile([lfn, f"{dms.home('alice')}/never/was"]), lfn)
    assert not (dms.ses["SE-B"] / "data" / lfn.lstrip("/")).exists()
    assert "No such file" in bulk_failed(fc(dms).getReplicas(lfn), lfn)[lfn]


def test_put_that_cannot_register_removes_the_copy(dms, tmp_path):
    home = dms.home("alice")
    first, second = f"{home}/reg/{dms.backend}/first", f"{home}/reg/{dms.backend}/second"
    source = tmp_path / "f"
    make_file(source, 1000)
    manager = dm(dms)
    guid = f"SAME-GUID-{dms.backend}"
    bulk_ok(manager.putAndRegister(first, str(source), "SE-A", guid=guid), first)
    result = manager.putAndRegister(second, str(source), "SE-A", guid=guid)
    reason = bulk_failed(result, second)[second]
    assert "registration failed" in reason and "was removed" in reason, reason
    assert not (dms.ses["SE-A"] / "data" / second.lstrip("/")).exists()
    assert bulk_ok(se(dms, "SE-A").exists(second)) == {second: False}


def test_storage_element_methods_quota_and_checksums(dms, tmp_path):
    home = dms.home("alice")
    sea, seb = se(dms, "SE-A"), se(dms, "SE-B")
    lfn = f"{home}/se/{dms.backend}/a"
    source = tmp_path / "a"
    make_file(source, 300_000)
    assert bulk_ok(sea.putFile({lfn: str(source)}), lfn) == {lfn: 300_000}
    assert bulk_ok(sea.exists([lfn, lfn + "x"])) == {lfn: True, lfn + "x": False}
    assert bulk_ok(sea.isFile(lfn)) == {lfn: True}
    assert bulk_ok(sea.getFileSize(lfn)) == {lfn: 300_000}
    meta = bulk_ok(sea.getFileMetadata(lfn))[lfn]
    assert meta["Size"] == 300_000
    assert meta["Checksum"] == f"{zlib.adler32(source.read_bytes()):08x}"
    directory = f"{home}/se/{dms.backend}"
    assert lfn in bulk_ok(sea.listDirectory(directory))[directory]["Files"]
    bulk_ok(sea.createDirectory(f"{directory}/sub"))
    assert f"{directory}/sub" in bulk_ok(sea.listDirectory(directory))[directory]["SubDirs"]
    bulk_ok(sea.removeDirectory(f"{directory}/sub"))
    assert isinstance(ok(sea.getFreeDiskSpace()), int)
    assert bulk_ok(sea.getURL(lfn)) == {lfn: f"diracmq://SE-A{lfn}"}

    # quota: SE-B holds 1 MB
    big = tmp_path / "big"
    make_file(big, 1_200_000)
    reason = bulk_failed(seb.putFile({f"{directory}/big": str(big)}), f"{directory}/big")
    assert "quota" in reason[f"{directory}/big"]
    assert bulk_ok(seb.exists(f"{directory}/big")) == {f"{directory}/big": False}

    # a corrupted stored file is caught on read, and no local file is left
    stored = dms.ses["SE-A"] / "data" / lfn.lstrip("/")
    data = bytearray(stored.read_bytes())
    data[1000] ^= 0xFF
    stored.write_bytes(bytes(data))
    out = tmp_path / "out"
    reason = bulk_failed(sea.getFile(lfn, str(out)), lfn)[lfn]
    assert "checksum mismatch" in reason
    assert not out.exists() or not any(out.iterdir())

    # bob may not overwrite or remove alice's file
    assert bulk_failed(se(dms, "SE-A", "bob").removeFile(lfn), lfn)
    bulk_ok(sea.removeFile([lfn, lfn + "-never-existed"]), lfn, lfn + "-never-existed")
    assert not stored.exists()


def test_transfer_protocol_refuses_bad_input(dms):
    """Low-level calls a hostile user could send: each is a clear S_ERROR."""
    from diracmq.client.base import Client

    client = Client(url="DataManagement/StorageElement_SE_A", settings=dms.settings["alice"])
    bob = Client(url="DataManagement/StorageElement_SE_A", settings=dms.settings["bob"])
    home = dms.home("alice")
    lfn = f"{home}/proto/{dms.backend}/x"
    assert client.openTransfer("relative", 3)["Errno"] == errno.EINVAL
    assert client.openTransfer(lfn, -1)["Errno"] == errno.EINVAL
    assert client.openTransfer(lfn, 3, "not-hex")["Errno"] == errno.EINVAL
    assert bob.openTransfer(lfn, 3)["Errno"] == errno.EACCES
    assert client.openTransfer("/dirac/elsewhere/x", 3)["Errno"] == errno.EACCES
    opened = ok(client.openTransfer(lfn, 6, f"{zlib.adler32(b'abcdef'):08x}"))
    tid = opened["TransferID"]
    assert client.writeChunk("../../etc/passwd", 0, b"abc")["Errno"] == errno.EINVAL
    assert client.writeChunk(tid, 4, b"abc")["Errno"] == errno.EINVAL      # beyond the size
    assert client.writeChunk(tid, -1, b"a")["Errno"] == errno.EINVAL
    assert client.writeChunk(tid, 0, "text")["OK"] is False               # not bytes
    assert bob.writeChunk(tid, 0, b"abc")["Errno"] == errno.EACCES
    # chunks in any order, one of them twice
    ok(client.writeChunk(tid, 3, b"def"))
    ok(client.writeChunk(tid, 0, b"abc"))
    ok(client.writeChunk(tid, 3, b"def"))
    assert bulk_ok(se(dms, "SE-A").exists(lfn)) == {lfn: False}   # nothing before the commit
    assert ok(client.commitTransfer(tid))["Size"] == 6
    assert (dms.ses["SE-A"] / "data" / lfn.lstrip("/")).read_bytes() == b"abcdef"
    assert client.commitTransfer(tid)["Errno"] == errno.ENOENT

    # a wrong checksum: refused at commit, nothing visible
    wrong = ok(client.openTransfer(lfn + "w", 3, "00000001"))["TransferID"]
    ok(client.writeChunk(wrong, 0, b"xyz"))
    assert client.commitTransfer(wrong)["Errno"] == errno.EBADMSG
    # an incomplete upload: refused at commit, nothing visible
    short = ok(client.openTransfer(lfn + "s", 10))["TransferID"]
    ok(client.writeChunk(short, 0, b"12345"))
    assert "incomplete" in client.commitTransfer(short)["Message"]
    assert bulk_ok(se(dms, "SE-A").exists([lfn + "w", lfn + "s"])) == {
        lfn + "w": False, lfn + "s": False}
    # reads
    assert client.readChunk(lfn, -1, 3)["Errno"] == errno.EINVAL
    assert client.readChunk(lfn, 0, 10**9)["Errno"] == errno.EINVAL
    assert client.readChunk(lfn + "nope", 0, 3)["Errno"] == errno.ENOENT
    assert ok(client.readChunk(lfn, 2, 3)) == b"cde"
    # exists overwrite rules
    assert client.openTransfer(lfn, 1)["Errno"] == errno.EEXIST

    # an open upload reserves its size in the quota (SE-B holds 1 MB) until it ends
    seb = Client(url="DataManagement/StorageElement_SE_B", settings=dms.settings["alice"])
    first = ok(seb.openTransfer(lfn + "q1", 600_000))["TransferID"]
    assert seb.openTransfer(lfn + "q2", 600_000)["Errno"] == errno.ENOSPC
    ok(seb.abortTransfer(first))
    ok(seb.abortTransfer(ok(seb.openTransfer(lfn + "q2", 600_000))["TransferID"]))


def test_front_classes(dms):
    catalog = FileCatalog(settings=dms.settings["alice"])
    assert catalog.isOK() is True
    assert ok(catalog.getMasterCatalogNames()) == ["FileCatalog"]
    assert StorageElement("bad name!").isValid()["OK"] is False
    assert StorageElement("bad name!").exists("/a")["Errno"] == errno.EINVAL
    # an SE nobody serves: a clear error, not a hang
    missing = StorageElement("SE-NOWHERE", settings=dms.settings["alice"], timeout=10)
    assert missing.exists("/dirac/x")["OK"] is False
