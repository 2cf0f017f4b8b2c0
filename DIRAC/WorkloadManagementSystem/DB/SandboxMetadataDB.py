"""Sandboxes: the files stored (content-addressed) and who they belong to.

The records (who uploaded what, which job uses which sandbox) live in the JobDB's
database.  The contents, once per content (named by its sha256), live in one of two
stores, ``DIRAC_SANDBOX_BACKEND``:

* ``dir`` (default): files under ``DIRAC_SANDBOX_DIR`` (default ``<data
  dir>/sandboxes``), ``ab/abcdef...``; uploads in progress are files under
  ``<dir>/.partial/<uploadID>``, written chunk by chunk at their offsets, checked
  against the announced sha256 and size, then renamed into place.  Several hosts
  serving SandboxStore need the same directory (NFS or any shared filesystem).
* ``db``: rows of the JobDB's own database (SQLite or PostgreSQL), nothing else to
  share between hosts.  A content is rows of at most :data:`CHUNK_SIZE` bytes
  (``sb_ContentChunks``, by sha256 and sequence number) plus one row saying it is
  complete (``sb_Contents``); an upload in progress is its chunks as sent
  (``sb_UploadChunks``, at most :data:`MAX_CHUNK` each).  Every step reads or writes
  a few rows at a time, so a sandbox of any size moves within bounded memory.

A sandbox is named ``SB:SandboxSE|/SandBox/<owner>/<sha256>.tar`` (DIRAC's form
``SB:<SE>|<path>``); one record per (owner, content), so a user never learns whether
somebody else uploaded the same file.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from diracmq.broker.derrno import EVALUE, EWMSUKN
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType, SErrorException
from sqlalchemy.engine import Connection

from DIRAC.WorkloadManagementSystem.DB.JobDB import JobDB, _now, _returns, jobsTable
from DIRAC.WorkloadManagementSystem.DB.TaskQueueDB import insertIgnore

__all__ = ["BACKENDS", "SandboxMetadataDB", "getSandboxBackend", "getSandboxDir",
           "sandboxName", "sbMetadata"]

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

# The database store (DIRAC_SANDBOX_BACKEND=db).  The tables exist whichever store is
# used (created with the others), so a store can be switched without a schema step.
contentsTable = sa.Table(
    "sb_Contents", sbMetadata,
    sa.Column("SHA256", sa.String(64), primary_key=True),
    sa.Column("Bytes", sa.BigInteger, nullable=False),
    sa.Column("Chunks", sa.Integer, nullable=False),
)

contentChunksTable = sa.Table(
    "sb_ContentChunks", sbMetadata,
    sa.Column("SHA256", sa.String(64), primary_key=True),
    sa.Column("Seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("Data", sa.LargeBinary, nullable=False),
)

uploadChunksTable = sa.Table(
    "sb_UploadChunks", sbMetadata,
    sa.Column("UploadID", sa.String(64), primary_key=True),
    sa.Column("Offset", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("Bytes", sa.Integer, nullable=False),
    sa.Column("Data", sa.LargeBinary, nullable=False),
)

#: The content stores ``DIRAC_SANDBOX_BACKEND`` may name.
BACKENDS = ("dir", "db")


def getSandboxDir() -> Path:
    """``DIRAC_SANDBOX_DIR``, else ``<DIRAC_DATA_DIR or ~/.dirac/data>/sandboxes``."""
    explicit = os.environ.get("DIRAC_SANDBOX_DIR", "").strip()
    if explicit:
        return Path(explicit).expanduser()
    return Path(os.environ.get("DIRAC_DATA_DIR") or "~/.dirac/data").expanduser() / "sandboxes"


def getSandboxBackend() -> str:
    """``DIRAC_SANDBOX_BACKEND``: ``dir`` (default) or ``db``; anything else is refused."""
    backend = (os.environ.get("DIRAC_SANDBOX_BACKEND") or "dir").strip().lower()
    if backend not in BACKENDS:
        raise ValueError(f"DIRAC_SANDBOX_BACKEND={backend!r}: expected one of "
                         f"{', '.join(BACKENDS)}")
    return backend


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


class _DirectoryStore:
    """Contents as files: ``<directory>/<sha[:2]>/<sha>``; uploads in ``.partial``."""

    def __init__(self, jobDB: JobDB, directory: Path) -> None:
        self.jobDB = jobDB
        self.directory = directory

    def prepare(self) -> None:
        (self.directory / ".partial").mkdir(parents=True, exist_ok=True)

    def blobPath(self, sha256: str) -> Path:
        return self.directory / sha256[:2] / sha256

    def _partial(self, uploadID: str) -> Path:
        return self.directory / ".partial" / uploadID

    def has(self, sha256: str) -> bool:
        return self.blobPath(sha256).exists()

    def purge(self) -> None:
        cutoff = time.time() - PARTIAL_TTL
        for path in (self.directory / ".partial").glob("*"):
            try:
                if path.stat().st_mtime < cutoff:
                    path.unlink()
            except OSError:
                continue

    def start(self, uploadID: str) -> None:
        self._partial(uploadID).touch()

    def write(self, uploadID: str, offset: int, data: bytes) -> DReturnType:
        try:
            fd = os.open(self._partial(uploadID), os.O_WRONLY)
        except FileNotFoundError:
            return S_ERROR(EVALUE, f"upload {uploadID} is gone (expired?)")
        try:
            os.pwrite(fd, data, offset)
        finally:
            os.close(fd)
        return S_OK(len(data))

    def finish(self, upload: dict[str, Any], record: Callable[[Connection], None]
               ) -> DReturnType:
        uploadID, sha = upload["UploadID"], upload["SHA256"]
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
        checked = _checked(upload, size, digest.hexdigest())
        if not checked["OK"]:
            return checked
        blob = self.blobPath(sha)
        blob.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, blob)  # same content under the same name: replacing is harmless
        self.jobDB._run(record)
        return S_OK()

    def read(self, sha256: str, offset: int, length: int) -> DReturnType:
        try:
            with self.blobPath(sha256).open("rb") as fh:
                fh.seek(offset)
                return S_OK(fh.read(length))
        except FileNotFoundError:
            return S_ERROR(EWMSUKN, "the sandbox file is missing from the store")

    def removeInTransaction(self, conn: Connection, shas: set[str]) -> None:
        del conn, shas  # files go after the commit (removeAfter)

    def removeAfter(self, shas: set[str]) -> int:
        removed = 0
        for sha in sorted(shas):
            try:
                self.blobPath(sha).unlink()
                removed += 1
            except FileNotFoundError:
                pass
        return removed


class _DatabaseStore:
    """Contents as rows of the JobDB's database (see the module's docstring).

    Memory: an upload chunk is one row written as it comes; finishing an upload reads
    its chunks one row at a time (checksum), then copies them into content rows of
    :data:`CHUNK_SIZE` in transactions of :data:`COPY_BYTES_PER_TRANSACTION` (a long
    copy does not hold SQLite's write lock for its whole length); a download reads the
    few content rows its range covers.
    """

    #: Bytes of content rows written per transaction while an upload is stored.
    COPY_BYTES_PER_TRANSACTION = 16 << 20

    def __init__(self, jobDB: JobDB) -> None:
        self.jobDB = jobDB

    def prepare(self) -> None:
        pass  # the tables are in sbMetadata

    def has(self, sha256: str) -> bool:
        c = contentsTable.c
        return self.jobDB._run(lambda conn: conn.scalar(
            sa.select(c.SHA256).where(c.SHA256 == sha256)), write=False) is not None

    def purge(self) -> None:
        u, k = uploadsTable.c, uploadChunksTable.c
        self.jobDB._run(lambda conn: conn.execute(sa.delete(uploadChunksTable).where(
            ~sa.exists().where(u.UploadID == k.UploadID))))

    def start(self, uploadID: str) -> None:
        del uploadID  # nothing until the first chunk

    def write(self, uploadID: str, offset: int, data: bytes) -> DReturnType:
        k, u = uploadChunksTable.c, uploadsTable.c

        def store(conn: Connection) -> DReturnType:
            if conn.scalar(sa.select(u.UploadID).where(u.UploadID == uploadID)) is None:
                return S_ERROR(EVALUE, f"upload {uploadID} is gone (expired?)")
            # A chunk sent again at its offset replaces itself; one overlapping another
            # is refused, so what an upload stores never exceeds its announced size.
            end = offset + len(data)
            clash = conn.scalar(sa.select(k.Offset).where(
                k.UploadID == uploadID, k.Offset != offset, k.Offset < end,
                k.Offset + k.Bytes > offset).limit(1))
            if clash is not None:
                return S_ERROR(EVALUE, f"chunk at {offset} of {len(data)} bytes overlaps the "
                                       f"chunk at {clash}")
            conn.execute(sa.delete(uploadChunksTable).where(k.UploadID == uploadID,
                                                            k.Offset == offset))
            conn.execute(sa.insert(uploadChunksTable), {
                "UploadID": uploadID, "Offset": offset, "Bytes": len(data), "Data": data})
            return S_OK(len(data))

        return self.jobDB._run(store)

    def _chunks(self, uploadID: str) -> Iterator[tuple[int, bytes]]:
        """The upload's chunks in offset order, one row in memory at a time."""
        k = uploadChunksTable.c
        after = -1
        while True:
            stmt = (sa.select(k.Offset, k.Data).where(k.UploadID == uploadID, k.Offset > after)
                    .order_by(k.Offset).limit(1))
            row = self.jobDB._run(lambda conn, stmt=stmt: conn.execute(stmt).first(),
                                  write=False)
            if row is None:
                return
            after = int(row.Offset)
            yield after, bytes(row.Data)

    def _contiguous(self, uploadID: str) -> Iterator[bytes]:
        """The upload's bytes in order; raises _Refused at a gap."""
        position = 0
        for offset, data in self._chunks(uploadID):
            if offset != position:
                raise _Refused(S_ERROR(EVALUE, f"upload {uploadID} is incomplete: nothing "
                                               f"at offset {position}"))
            position += len(data)
            yield data

    def _copy(self, uploadID: str, sha: str) -> int:
        """Write the upload as content rows of CHUNK_SIZE; the number of rows."""
        t = contentChunksTable
        buffer = bytearray()
        seq = 0
        pending: list[dict[str, Any]] = []
        pending_bytes = 0

        def flush() -> None:
            nonlocal pending, pending_bytes
            if pending:
                rows = pending
                self.jobDB._run(lambda conn: [insertIgnore(conn, t, row) for row in rows])
            pending, pending_bytes = [], 0

        for data in self._contiguous(uploadID):
            buffer += data
            while len(buffer) >= CHUNK_SIZE:
                pending.append({"SHA256": sha, "Seq": seq, "Data": bytes(buffer[:CHUNK_SIZE])})
                del buffer[:CHUNK_SIZE]
                seq += 1
                pending_bytes += CHUNK_SIZE
                if pending_bytes >= self.COPY_BYTES_PER_TRANSACTION:
                    flush()
        if buffer or seq == 0:  # the last (or only, maybe empty) row
            pending.append({"SHA256": sha, "Seq": seq, "Data": bytes(buffer)})
            seq += 1
        flush()
        return seq

    def finish(self, upload: dict[str, Any], record: Callable[[Connection], None]
               ) -> DReturnType:
        uploadID, sha, size = upload["UploadID"], upload["SHA256"], int(upload["Bytes"])
        try:
            digest = hashlib.sha256()
            total = 0
            for data in self._contiguous(uploadID):
                digest.update(data)
                total += len(data)
        except _Refused as exc:
            return exc.result
        checked = _checked(upload, total, digest.hexdigest())
        if not checked["OK"]:
            return checked
        rows = -(-size // CHUNK_SIZE) or 1
        c, d = contentsTable.c, contentChunksTable.c
        for _attempt in range(3):
            if not self.has(sha):
                self._copy(uploadID, sha)

            def register(conn: Connection) -> bool:
                # The content's rows, locked (PostgreSQL) against a removal of the same
                # content running at once (see removeInTransaction), then counted: a
                # removal that went first means copying again.
                held = conn.execute(sa.select(d.Seq, sa.func.length(d.Data).label("n"))
                                    .where(d.SHA256 == sha).with_for_update()).all()
                if len(held) != rows or sum(int(r.n) for r in held) != size:
                    conn.execute(sa.delete(contentsTable).where(c.SHA256 == sha))
                    return False
                insertIgnore(conn, contentsTable, {"SHA256": sha, "Bytes": size,
                                                   "Chunks": rows})
                conn.execute(sa.delete(uploadChunksTable).where(
                    uploadChunksTable.c.UploadID == uploadID))
                record(conn)
                return True

            if self.jobDB._run(register):
                return S_OK()
        return S_ERROR(EVALUE, f"upload {uploadID}: its content kept being removed while "
                               f"it was stored; try again")

    def read(self, sha256: str, offset: int, length: int) -> DReturnType:
        c, d = contentsTable.c, contentChunksTable.c

        def read(conn: Connection) -> bytes | None:
            size = conn.scalar(sa.select(c.Bytes).where(c.SHA256 == sha256))
            if size is None:
                return None
            end = min(offset + length, int(size))
            if end <= offset:
                return b""
            first, last = offset // CHUNK_SIZE, (end - 1) // CHUNK_SIZE
            out = bytearray()
            for (data,) in conn.execute(sa.select(d.Data).where(
                    d.SHA256 == sha256, d.Seq >= first, d.Seq <= last).order_by(d.Seq)):
                out += data
            start = offset - first * CHUNK_SIZE
            return bytes(out[start:start + end - offset])

        found = self.jobDB._run(read, write=False)
        if found is None:
            return S_ERROR(EWMSUKN, "the sandbox content is missing from the store")
        return S_OK(found)

    def removeInTransaction(self, conn: Connection, shas: set[str]) -> None:
        if not shas:
            return
        d = contentChunksTable.c
        conn.execute(sa.delete(contentsTable).where(contentsTable.c.SHA256.in_(shas)))
        conn.execute(sa.delete(contentChunksTable).where(d.SHA256.in_(shas)))

    def removeAfter(self, shas: set[str]) -> int:
        return len(shas)


def _checked(upload: dict[str, Any], size: int, sha: str) -> DReturnType:
    if size != upload["Bytes"] or sha != upload["SHA256"]:
        return S_ERROR(EVALUE, f"upload {upload['UploadID']} is incomplete or corrupt: "
                               f"{size} of {upload['Bytes']} bytes, checksum "
                               f"{'matches' if sha == upload['SHA256'] else 'differs'}")
    return S_OK()


class SandboxMetadataDB:
    """Sandbox records in the JobDB's database and files in :func:`getSandboxDir`."""

    def __init__(self, jobDB: JobDB, directory: Path | None = None,
                 backend: str | None = None) -> None:
        """``backend``: ``dir`` or ``db`` (default ``DIRAC_SANDBOX_BACKEND``, else
        ``dir``); ``directory``: the ``dir`` store's (default :func:`getSandboxDir`)."""
        self.jobDB = jobDB
        self.directory = Path(directory) if directory else getSandboxDir()
        self.backend = backend or getSandboxBackend()
        if self.backend not in BACKENDS:
            raise ValueError(f"sandbox backend {self.backend!r}: expected one of "
                             f"{', '.join(BACKENDS)}")
        self.store: _DirectoryStore | _DatabaseStore = (
            _DatabaseStore(jobDB) if self.backend == "db"
            else _DirectoryStore(jobDB, self.directory))
        self._ready = False

    # ----------------------------------------------------------------- schema
    @_returns
    def initialize(self) -> DReturnType:
        """Create the tables and the directories."""
        if not self._ready:
            self.jobDB.createTables(sbMetadata)  # under the schema lock
            self.store.prepare()
            self._ready = True
        return S_OK()

    def dropTables(self) -> None:
        """Drop the sandbox tables (tests use it)."""
        self.jobDB._run(lambda conn: sbMetadata.drop_all(conn, checkfirst=True))
        self._ready = False

    # ------------------------------------------------------------------ paths
    def blobPath(self, sha256: str) -> Path:
        """Where the ``dir`` store keeps the content with this sha256."""
        return self.directory / sha256[:2] / sha256

    def hasContent(self, sha256: str) -> bool:
        """Whether the store holds this content (complete)."""
        return self.store.has(sha256)

    def _purge_partials(self) -> None:
        started = _now() - dt.timedelta(seconds=PARTIAL_TTL)
        self.jobDB._run(lambda conn: conn.execute(
            sa.delete(uploadsTable).where(uploadsTable.c.Started < started)))
        self.store.purge()

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
        if existing is not None and self.store.has(sha256):
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
        self.store.start(upload_id)
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
        return self.store.write(uploadID, offset, data)

    @_returns
    def finishUpload(self, uploadID: str, owner: str) -> DReturnType:
        """Check the upload's size and sha256, store it: ``S_OK(sandbox name)``."""
        try:
            upload = self._upload(uploadID, owner)
        except _Refused as exc:
            return exc.result
        sha = upload["SHA256"]
        name = sandboxName(owner, sha)

        def record(conn: Connection) -> None:
            conn.execute(sa.delete(uploadsTable).where(uploadsTable.c.UploadID == uploadID))
            insertIgnore(conn, sandboxesTable, dict(
                Name=name, SHA256=sha, Owner=owner, OwnerGroup=upload["OwnerGroup"],
                Bytes=upload["Bytes"], RegistrationTime=_now()))

        stored = self.store.finish(upload, record)
        return stored if not stored["OK"] else S_OK(name)

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
        return self.store.read(sha256, int(offset), length)

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
            try:
                rows += [(str(entity), name, kind) for name, kind in _pairs(pairs)]
            except _Refused as exc:
                return exc.result

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
            for entity, name, kind in rows:
                self._assign(conn, entity, name, kind, owner)
            return len(rows)

        try:
            return S_OK(self.jobDB._run(assign))
        except _Refused as exc:
            return exc.result

    @staticmethod
    def _assign(conn: Connection, entity: str, name: str, kind: str, owner: str | None
                ) -> None:
        t = sandboxesTable.c
        sb = conn.execute(sa.select(t.SBId, t.Owner).where(t.Name == name)).first()
        if sb is None:
            raise _Refused(S_ERROR(EWMSUKN, f"no sandbox {name}"))
        if owner is not None and sb.Owner != owner:
            raise _Refused(S_ERROR(EVALUE, f"sandbox {name} is not {owner}'s"))
        insertIgnore(conn, entityTable, dict(SBId=sb.SBId, EntityId=entity, Type=kind))

    def assignInTransaction(self, conn: Connection, jobID: int, pairs: Any,
                            owner: str | None = None) -> None:
        """Assign ``pairs`` (``[(name, "Input"|"Output")]``) to job ``jobID`` inside the
        caller's transaction (JobStateUpdate.reportJobs: a job's output sandbox with its
        final status).  With ``owner``, only that owner's sandboxes.  The caller checked
        the rights on the job; SErrorException refuses (nothing of it is assigned if the
        caller rolls back)."""
        try:
            for name, kind in _pairs(pairs):
                self._assign(conn, entityForJob(jobID), name, kind, owner)
        except _Refused as exc:
            raise SErrorException(exc.result) from None

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

        def unassign(conn: Connection) -> set[str]:
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
            if shas and self.backend == "db":
                # lock the contents' rows before looking for other users of them: an
                # upload of the same content finishing meanwhile (it locks them too)
                # is then either seen here or sees the removal (and stores it again)
                d = contentChunksTable.c
                conn.execute(sa.select(d.Seq).where(d.SHA256.in_(shas)).with_for_update())
            still = set(conn.scalars(sa.select(t.SHA256).where(t.SHA256.in_(shas))))
            gone = shas - still
            self.store.removeInTransaction(conn, gone)
            return gone

        return S_OK(self.store.removeAfter(self.jobDB._run(unassign)))

    @_returns
    def sandboxesOlderThan(self, seconds: float) -> DReturnType:
        """Names of sandboxes assigned to nothing and registered before now - ``seconds``."""
        t, m = sandboxesTable.c, entityTable.c
        cutoff = _now() - dt.timedelta(seconds=seconds)
        stmt = sa.select(t.Name).where(t.RegistrationTime < cutoff,
                                       ~sa.exists().where(m.SBId == t.SBId))
        return S_OK(self.jobDB._run(lambda conn: list(conn.scalars(stmt)), write=False))


def _pairs(pairs: Any) -> list[tuple[str, str]]:
    """``[(sandbox name, "Input"|"Output")]`` checked; _Refused for anything else."""
    if not isinstance(pairs, (list, tuple)):
        raise _Refused(S_ERROR(EVALUE, f"expected [(sandbox, 'Input'|'Output')], not "
                                       f"{pairs!r}"))
    out = []
    for pair in pairs:
        if not isinstance(pair, (list, tuple)) or len(pair) != 2 \
                or pair[1] not in ("Input", "Output"):
            raise _Refused(S_ERROR(EVALUE, f"expected (sandbox, 'Input'|'Output'), not "
                                           f"{pair!r}"))
        out.append((str(pair[0]), pair[1]))
    return out


class _Refused(Exception):
    """Internal: carry an S_ERROR out of a transaction (which is rolled back)."""

    def __init__(self, result: dict) -> None:
        super().__init__(result.get("Message"))
        self.result = result
