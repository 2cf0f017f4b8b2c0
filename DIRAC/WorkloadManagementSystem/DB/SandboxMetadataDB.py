"""Sandboxes: the files stored (content-addressed) and who they belong to.

Files live under ``DIRAC_SANDBOX_DIR`` (default ``<data dir>/sandboxes``), one file per
content, named by its sha256 (``ab/abcdef...``): the same content is stored once.  The
records (who uploaded what, which job uses which sandbox) live in the JobDB's database.
Several hosts serving SandboxStore need the same directory (NFS or any shared
filesystem) and a shared JobDB (PostgreSQL).

A sandbox is named ``SB:SandboxSE|/SandBox/<owner>/<sha256>.tar`` (DIRAC's form
``SB:<SE>|<path>``); one record per (owner, content), so a user never learns whether
somebody else uploaded the same file.  Uploads in progress are files under
``<dir>/.partial/<uploadID>``, written chunk by chunk at their offsets, checked
against the announced sha256 and size, then renamed into place.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from diracmq.broker.derrno import EVALUE, EWMSUKN
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType
from sqlalchemy.engine import Connection

from DIRAC.WorkloadManagementSystem.DB.JobDB import JobDB, _now, _returns, jobsTable
from DIRAC.WorkloadManagementSystem.DB.TaskQueueDB import insertIgnore

__all__ = ["SandboxMetadataDB", "getSandboxDir", "sandboxName", "sbMetadata"]

#: The storage element name in sandbox names (DIRAC: the sandbox SE).
SANDBOX_SE = "SandboxSE"
#: Largest sandbox accepted (bytes): ``DIRAC_SANDBOX_MAX_SIZE``, default 1 GiB.
DEFAULT_MAX_SIZE = 1 << 30
#: Most bytes one chunk may carry (upload and download).
MAX_CHUNK = 4 << 20
#: Chunk size the store suggests to clients.
CHUNK_SIZE = 1 << 20
#: Unfinished uploads older than this (s) are removed.
PARTIAL_TTL = 24 * 3600

_SHA = re.compile(r"^[0-9a-f]{64}$")

sbMetadata = sa.MetaData()

sandboxesTable = sa.Table(
    "sb_SandBoxes", sbMetadata,
    sa.Column("SBId", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("Name", sa.String(512), nullable=False, unique=True),
    sa.Column("SHA256", sa.String(64), nullable=False),
    sa.Column("Owner", sa.String(255), nullable=False),
    sa.Column("OwnerGroup", sa.String(255), nullable=False, server_default=""),
    sa.Column("Bytes", sa.BigInteger, nullable=False),
    sa.Column("RegistrationTime", sa.DateTime, nullable=False),
    sa.Index("ix_sb_SandBoxes_SHA256", "SHA256"),
)

entityTable = sa.Table(
    "sb_EntityMapping", sbMetadata,
    sa.Column("SBId", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("EntityId", sa.String(128), primary_key=True),
    sa.Column("Type", sa.String(16), primary_key=True),
    sa.Index("ix_sb_EntityMapping_Entity", "EntityId"),
)

uploadsTable = sa.Table(
    "sb_Uploads", sbMetadata,
    sa.Column("UploadID", sa.String(64), primary_key=True),
    sa.Column("Owner", sa.String(255), nullable=False),
    sa.Column("OwnerGroup", sa.String(255), nullable=False, server_default=""),
    sa.Column("SHA256", sa.String(64), nullable=False),
    sa.Column("Bytes", sa.BigInteger, nullable=False),
    sa.Column("Started", sa.DateTime, nullable=False),
)


def getSandboxDir() -> Path:
    """``DIRAC_SANDBOX_DIR``, else ``<DIRAC_DATA_DIR or ~/.dirac/data>/sandboxes``."""
    explicit = os.environ.get("DIRAC_SANDBOX_DIR", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("DIRAC_DATA_DIR") or "~/.dirac/data").expanduser() / "sandboxes"


def maxSandboxSize() -> int:
    """The size limit in bytes (``DIRAC_SANDBOX_MAX_SIZE``)."""
    try:
        return int(os.environ.get("DIRAC_SANDBOX_MAX_SIZE") or DEFAULT_MAX_SIZE)
    except ValueError:
        return DEFAULT_MAX_SIZE


def maxUploads() -> int:
    """Uploads one owner may have in progress at once (``DIRAC_SANDBOX_MAX_UPLOADS``, 20):
    each may grow to the size limit on disk."""
    try:
        return int(os.environ.get("DIRAC_SANDBOX_MAX_UPLOADS") or 20)
    except ValueError:
        return 20


def sandboxName(owner: str, sha256: str) -> str:
    """``SB:SandboxSE|/SandBox/<owner>/<sha256>.tar``."""
    return f"SB:{SANDBOX_SE}|/SandBox/{owner}/{sha256}.tar"


def entityForJob(jobID: int) -> str:
    """DIRAC's entity name of a job: ``Job:<id>``."""
    return f"Job:{int(jobID)}"


def jobOfEntity(entity: Any) -> int | None:
    """The job ID of an entity name ``Job:<id>``; None for anything else."""
    if isinstance(entity, str) and entity.startswith("Job:") and entity[4:].isdigit():
        return int(entity[4:])
    return None


class SandboxMetadataDB:
    """Sandbox records in the JobDB's database and files in :func:`getSandboxDir`."""

    def __init__(self, jobDB: JobDB, directory: Path | None = None) -> None:
        self.jobDB = jobDB
        self.directory = Path(directory) if directory else getSandboxDir()
        self._ready = False

    # ----------------------------------------------------------------- schema
    @_returns
    def initialize(self) -> DReturnType:
        """Create the tables and the directories."""
        if not self._ready:
            self.jobDB._run(lambda conn: sbMetadata.create_all(conn, checkfirst=True))
            (self.directory / ".partial").mkdir(parents=True, exist_ok=True)
            self._ready = True
        return S_OK()

    def dropTables(self) -> None:
        """Drop the sandbox tables (tests use it)."""
        self.jobDB._run(lambda conn: sbMetadata.drop_all(conn, checkfirst=True))
        self._ready = False

    # ------------------------------------------------------------------ paths
    def blobPath(self, sha256: str) -> Path:
        """Where the content with this sha256 is stored."""
        return self.directory / sha256[:2] / sha256

    def _partial(self, uploadID: str) -> Path:
        return self.directory / ".partial" / uploadID

    def _purge_partials(self) -> None:
        cutoff = time.time() - PARTIAL_TTL
        for path in (self.directory / ".partial").glob("*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                continue
        started = _now() - dt.timedelta(seconds=PARTIAL_TTL)
        self.jobDB._run(lambda conn: conn.execute(
            sa.delete(uploadsTable).where(uploadsTable.c.Started < started)))

    # ---------------------------------------------------------------- uploads
    @_returns
    def initiateUpload(self, sha256: str, size: int, owner: str, ownerGroup: str
                       ) -> DReturnType:
        """Start an upload: ``S_OK({"Exists": True, "Sandbox": name})`` when this owner
        already has this content, else ``S_OK({"Exists": False, "UploadID", "ChunkSize"})``."""
        sha256 = str(sha256).lower()
        if not _SHA.match(sha256):
            return S_ERROR(EVALUE, "the checksum must be a sha256 in hexadecimal")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            return S_ERROR(EVALUE, f"invalid sandbox size {size!r}")
        limit = maxSandboxSize()
        if size > limit:
            return S_ERROR(EVALUE, f"sandbox of {size} bytes is larger than the limit "
                                   f"({limit} bytes, DIRAC_SANDBOX_MAX_SIZE)")
        name = sandboxName(owner, sha256)
        t = sandboxesTable.c
        existing = self.jobDB._run(lambda conn: conn.scalar(
            sa.select(t.SBId).where(t.Name == name)), write=False)
        if existing is not None and self.blobPath(sha256).exists():
            return S_OK({"Exists": True, "Sandbox": name})
        self._purge_partials()
        u = uploadsTable.c
        busy = self.jobDB._run(lambda conn: conn.scalar(
            sa.select(sa.func.count()).select_from(uploadsTable).where(u.Owner == owner)),
            write=False)
        if busy >= maxUploads():
            return S_ERROR(EVALUE, f"{owner} has {busy} uploads in progress already (at most "
                                   f"{maxUploads()}, DIRAC_SANDBOX_MAX_UPLOADS): finish them, "
                                   f"or wait a day for them to expire")
        upload_id = uuid.uuid4().hex
        self._partial(upload_id).touch()
        self.jobDB._run(lambda conn: conn.execute(sa.insert(uploadsTable).values(
            UploadID=upload_id, Owner=owner, OwnerGroup=ownerGroup, SHA256=sha256,
            Bytes=size, Started=_now())))
        return S_OK({"Exists": False, "UploadID": upload_id, "ChunkSize": CHUNK_SIZE})

    def _upload(self, uploadID: Any, owner: str) -> dict[str, Any]:
        if not isinstance(uploadID, str) or not re.fullmatch(r"[0-9a-f]{32}", uploadID):
            raise _Refused(S_ERROR(EVALUE, f"invalid upload ID {uploadID!r}"))
        u = uploadsTable.c
        row = self.jobDB._run(lambda conn: conn.execute(
            sa.select(uploadsTable).where(u.UploadID == uploadID)).mappings().first(),
            write=False)
        if row is None or row["Owner"] != owner:
            raise _Refused(S_ERROR(EVALUE, f"no upload {uploadID} of yours in progress"))
        return dict(row)

    @_returns
    def uploadChunk(self, uploadID: str, offset: int, data: bytes, owner: str) -> DReturnType:
        """Write ``data`` at ``offset`` of an upload in progress."""
        try:
            upload = self._upload(uploadID, owner)
        except _Refused as exc:
            return exc.result
        if not isinstance(data, bytes) or len(data) > MAX_CHUNK:
            return S_ERROR(EVALUE, f"a chunk is bytes of at most {MAX_CHUNK}")
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0 \
                or offset + len(data) > upload["Bytes"]:
            return S_ERROR(EVALUE, f"chunk at {offset!r} of {len(data)} bytes is outside the "
                                   f"announced size {upload['Bytes']}")
        path = self._partial(uploadID)
        try:
            fd = os.open(path, os.O_WRONLY)
        except FileNotFoundError:
            return S_ERROR(EVALUE, f"upload {uploadID} is gone (expired?)")
        try:
            os.pwrite(fd, data, offset)
        finally:
            os.close(fd)
        return S_OK(len(data))

    @_returns
    def finishUpload(self, uploadID: str, owner: str) -> DReturnType:
        """Check the upload's size and sha256, store it: ``S_OK(sandbox name)``."""
        try:
            upload = self._upload(uploadID, owner)
        except _Refused as exc:
            return exc.result
        path = self._partial(uploadID)
        digest = hashlib.sha256()
        try:
            with path.open("rb") as fh:
                size = 0
                while block := fh.read(1 << 20):
                    digest.update(block)
                    size += len(block)
        except FileNotFoundError:
            return S_ERROR(EVALUE, f"upload {uploadID} is gone (expired?)")
        sha = upload["SHA256"]
        if size != upload["Bytes"] or digest.hexdigest() != sha:
            return S_ERROR(EVALUE, f"upload {uploadID} is incomplete or corrupt: {size} of "
                                   f"{upload['Bytes']} bytes, checksum "
                                   f"{'matches' if digest.hexdigest() == sha else 'differs'}")
        blob = self.blobPath(sha)
        blob.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, blob)  # same content under the same name: replacing is harmless
        name = sandboxName(owner, sha)

        def record(conn: Connection) -> None:
            conn.execute(sa.delete(uploadsTable).where(uploadsTable.c.UploadID == uploadID))
            insertIgnore(conn, sandboxesTable, dict(
                Name=name, SHA256=sha, Owner=owner, OwnerGroup=upload["OwnerGroup"],
                Bytes=size, RegistrationTime=_now()))

        self.jobDB._run(record)
        return S_OK(name)

    # ------------------------------------------------------------------ reads
    @_returns
    def getSandbox(self, name: str) -> DReturnType:
        """``S_OK({SBId, Name, SHA256, Owner, OwnerGroup, Bytes, Entities})``."""
        if not isinstance(name, str):
            return S_ERROR(EVALUE, f"invalid sandbox name {name!r}")
        t, m = sandboxesTable.c, entityTable.c

        def read(conn: Connection) -> dict[str, Any] | None:
            row = conn.execute(sa.select(sandboxesTable).where(t.Name == name)
                               ).mappings().first()
            if row is None:
                return None
            entities = [tuple(r) for r in conn.execute(
                sa.select(m.EntityId, m.Type).where(m.SBId == row["SBId"]))]
            return dict(row, Entities=entities)

        found = self.jobDB._run(read, write=False)
        if found is None:
            return S_ERROR(EWMSUKN, f"no sandbox {name}")
        return S_OK(found)

    @_returns
    def readChunk(self, sha256: str, offset: int, length: int) -> DReturnType:
        """``S_OK(bytes)`` of a stored content (``b""`` past its end)."""
        length = min(int(length), MAX_CHUNK)
        if offset < 0 or length < 0:
            return S_ERROR(EVALUE, "offset and length must not be negative")
        try:
            with self.blobPath(sha256).open("rb") as fh:
                fh.seek(offset)
                return S_OK(fh.read(length))
        except FileNotFoundError:
            return S_ERROR(EWMSUKN, "the sandbox file is missing from the store")

    # -------------------------------------------------------------- entities
    @_returns
    def assignSandboxesToEntities(self, enDict: dict[str, list], owner: str | None = None,
                                  authorize: Callable[[int, dict[str, Any] | None], None]
                                  | None = None) -> DReturnType:
        """``{"Job:1": [(name, "Input"|"Output"), ...]}``: record the assignments.

        With ``owner``, only that owner's sandboxes may be assigned.  ``authorize(jobID,
        attributes)`` (attributes: ``Owner``, ``OwnerGroup``; None for a job that does
        not exist) is called for each ``Job:<id>`` entity in the same transaction and
        raises SErrorException to refuse.  ``S_OK(count)``.
        """
        rows = []
        for entity, pairs in enDict.items():
            for pair in pairs:
                if not isinstance(pair, (list, tuple)) or len(pair) != 2 \
                        or pair[1] not in ("Input", "Output"):
                    return S_ERROR(EVALUE, f"expected (sandbox, 'Input'|'Output'), not {pair!r}")
                rows.append((str(entity), str(pair[0]), pair[1]))
        t = sandboxesTable.c

        def assign(conn: Connection) -> int:
            if authorize is not None:
                j = jobsTable.c
                for entity in enDict:
                    job_id = jobOfEntity(entity)
                    if job_id is None:
                        raise _Refused(S_ERROR(EVALUE, f"unknown entity {entity!r}: expected "
                                                       f"'Job:<id>'"))
                    row = conn.execute(sa.select(j.Owner, j.OwnerGroup)
                                       .where(j.JobID == job_id)).mappings().first()
                    authorize(job_id, None if row is None else dict(row))
            count = 0
            for entity, name, kind in rows:
                sb = conn.execute(sa.select(t.SBId, t.Owner).where(t.Name == name)).first()
                if sb is None:
                    raise _Refused(S_ERROR(EWMSUKN, f"no sandbox {name}"))
                if owner is not None and sb.Owner != owner:
                    raise _Refused(S_ERROR(EVALUE, f"sandbox {name} is not {owner}'s"))
                insertIgnore(conn, entityTable, dict(SBId=sb.SBId, EntityId=entity, Type=kind))
                count += 1
            return count

        try:
            return S_OK(self.jobDB._run(assign))
        except _Refused as exc:
            return exc.result

    @_returns
    def getSandboxesAssignedToEntity(self, entity: str, kind: str | None = None
                                     ) -> DReturnType:
        """``S_OK([(name, type, bytes), ...])`` assigned to ``entity``."""
        t, m = sandboxesTable.c, entityTable.c
        stmt = (sa.select(t.Name, m.Type, t.Bytes).join(entityTable, m.SBId == t.SBId)
                .where(m.EntityId == str(entity)).order_by(m.Type, t.Name))
        if kind:
            stmt = stmt.where(m.Type == kind)
        return S_OK(self.jobDB._run(lambda conn: [tuple(r) for r in conn.execute(stmt)],
                                    write=False))

    @_returns
    def unassignEntities(self, entities: list[str]) -> DReturnType:
        """Forget the entities' sandboxes; contents no longer used by any record are
        deleted from the store.  ``S_OK(number of files removed)``."""
        names = [str(e) for e in entities]
        t, m = sandboxesTable.c, entityTable.c

        def unassign(conn: Connection) -> list[str]:
            sb_ids = [r for r in conn.scalars(sa.select(m.SBId).where(m.EntityId.in_(names)))]
            conn.execute(sa.delete(entityTable).where(m.EntityId.in_(names)))
            orphans = [r for r in conn.execute(
                sa.select(t.SBId, t.SHA256).where(
                    t.SBId.in_(sb_ids),
                    ~sa.exists().where(m.SBId == t.SBId)))]
            if orphans:
                conn.execute(sa.delete(sandboxesTable).where(
                    t.SBId.in_([o.SBId for o in orphans])))
            shas = {o.SHA256 for o in orphans}
            still = set(conn.scalars(sa.select(t.SHA256).where(t.SHA256.in_(shas))))
            return sorted(shas - still)

        removed = 0
        for sha in self.jobDB._run(unassign):
            try:
                self.blobPath(sha).unlink()
                removed += 1
            except FileNotFoundError:
                pass
        return S_OK(removed)

    @_returns
    def sandboxesOlderThan(self, seconds: float) -> DReturnType:
        """Names of sandboxes assigned to nothing and registered before now - ``seconds``."""
        t, m = sandboxesTable.c, entityTable.c
        cutoff = _now() - dt.timedelta(seconds=seconds)
        stmt = sa.select(t.Name).where(t.RegistrationTime < cutoff,
                                       ~sa.exists().where(m.SBId == t.SBId))
        return S_OK(self.jobDB._run(lambda conn: list(conn.scalars(stmt)), write=False))


class _Refused(Exception):
    """Internal: carry an S_ERROR out of a transaction (which is rolled back)."""

    def __init__(self, result: dict) -> None:
        super().__init__(result.get("Message"))
        self.result = result
