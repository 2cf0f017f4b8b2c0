"""Storage elements: the handler class behind every ``DataManagement/StorageElement_<name>``.

A storage element (SE) is a directory tree on the disk of the worker serving it
(``BasePath``), declared in the Configuration under ``Resources/StorageElements/<name>``
(``BasePath``, ``MaxStorageSize`` in MB, 0 or absent: no quota).  With none declared a
DataManagement worker serves ``SE-USER`` under ``$DIRAC_DATA_DIR/SE-USER``.  The
module is not named ``...Handler`` on purpose: the loader does not serve the base class;
``DIRAC.DataManagementSystem.Service.dynamicServices`` makes one subclass per SE.

Layout of ``BasePath``: ``data/<lfn>`` (the files), ``meta/<lfn>.json`` (size,
adler32 and owner of each file, written at commit), ``transfers/<id>.part`` and
``transfers/<id>.json`` (uploads in progress).

Uploads are chunked (``openTransfer``, ``writeChunk`` at any offset, ``commitTransfer``):
chunks land in the ``.part`` file, never in ``data/``; the commit checks the size and
the adler32 the client declared, then moves the file into place with one rename (or
one hard link when overwriting is not allowed), so a transfer cut anywhere leaves no
file under its LFN.  Abandoned transfers are deleted after ``TransferTimeout`` seconds
of inactivity (default 3600).  Downloads read ``readChunk`` by offset; the client
compares the adler32 of what it received with the one recorded at commit.

Who may write: the owner of the LFN's home (``/<vo>/user/<i>/<name>``) in that home,
and the ``FileCatalogManagement`` property anywhere; a file is replaced or removed by
whoever put it or by that property.  Anybody authenticated reads.  A job agent
(``GenericPilot``) puts a job's output data into its owner's home in the owner's name
(the file's owner is the home's user, ``Uploader`` the agent): it may create new files
in any user's home, and neither replace nor remove any there (a copy whose registration
failed stays for its owner to remove); docs/security.md.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import json
import logging
import os
import re
import shutil
import time
import uuid
import zlib
from pathlib import Path
from typing import Any, ClassVar

from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType
from diracmq.workers.handler import RequestHandler

from DIRAC.DataManagementSystem.DB.FileCatalogDB import ADMIN_PROPERTY
from DIRAC.DataManagementSystem.Utilities.DMSUtilities import (
    formatAdler,
    getVOForCredentials,
    homeOwner,
    isJobAgent,
    normalizeLFN,
    sameChecksum,
    splitLFNs,
    userHome,
)

__all__ = ["MAX_CHUNK", "StorageElementHandler"]

log = logging.getLogger(__name__)

#: Largest chunk accepted by ``writeChunk`` and served by ``readChunk`` (bytes).
MAX_CHUNK = 16 * 2**20
#: Chunk size the SE proposes to clients.
CHUNK_SIZE = 4 * 2**20
#: Seconds of inactivity after which an unfinished upload is deleted.
DEFAULT_TRANSFER_TIMEOUT = 3600.0
_TRANSFER_ID = re.compile(r"^[0-9a-f]{32}$")
_AUTH = ["authenticated"]
_LFNS = [str, list, tuple, dict]


def _utc(timestamp: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).replace(tzinfo=None)


class StorageElementHandler(RequestHandler):
    """One storage element; subclasses set :attr:`seName` and :attr:`seOptions`."""

    seName: ClassVar[str] = ""
    seOptions: ClassVar[dict[str, Any]] = {}
    basePath: ClassVar[Path] = Path()
    maxBytes: ClassVar[int] = 0
    transferTimeout: ClassVar[float] = DEFAULT_TRANSFER_TIMEOUT

    @classmethod
    def initializeHandler(cls, serviceInfoDict: dict[str, Any]) -> DReturnType:
        """Create the SE's directories and delete abandoned uploads."""
        options = cls.seOptions
        try:
            cls.basePath = Path(str(options["BasePath"])).expanduser().resolve()
            cls.maxBytes = int(float(options.get("MaxStorageSize") or 0) * 2**20)
            cls.transferTimeout = float(options.get("TransferTimeout")
                                        or DEFAULT_TRANSFER_TIMEOUT)
            for sub in ("data", "meta", "transfers"):
                (cls.basePath / sub).mkdir(parents=True, exist_ok=True)
        except (KeyError, ValueError, TypeError, OSError) as exc:
            return S_ERROR(f"storage element {cls.seName}: bad BasePath/MaxStorageSize "
                           f"({options!r}): {exc}")
        cls._expireTransfers()
        log.info("storage element %s at %s (quota %s)", cls.seName, cls.basePath,
                 f"{cls.maxBytes / 2**20:g} MB" if cls.maxBytes else "none")
        return S_OK()

    # ------------------------------------------------------------ paths
    def _data(self, lfn: str) -> Path:
        return self.basePath / "data" / lfn.lstrip("/")

    def _meta(self, lfn: str) -> Path:
        return self.basePath / "meta" / (lfn.lstrip("/") + ".json")

    def _transfer(self, transferID: Any, suffix: str) -> Path | None:
        if not isinstance(transferID, str) or not _TRANSFER_ID.match(transferID):
            return None
        return self.basePath / "transfers" / f"{transferID}{suffix}"

    # ------------------------------------------------------------ rights
    def _actingOwner(self, lfn: str) -> str | None:
        """The user a job agent writes ``lfn`` for: the owner of the home it lies in,
        when the caller is a job agent and that home is not its own; else None."""
        creds = self.getRemoteCredentials()
        if not isJobAgent(creds):
            return None
        home = homeOwner(lfn)
        if home is None or lfn == userHome(home[1], home[0]) or \
                home[1] == creds.get("username"):
            return None
        return home[1]

    def _maySet(self, lfn: str) -> bool:
        creds = self.getRemoteCredentials()
        if ADMIN_PROPERTY in set(creds.get("properties") or ()):
            return True
        if self._actingOwner(lfn):
            return True
        user = creds.get("username") or "anonymous"
        if user == "anonymous":
            return False
        home = userHome(user, getVOForCredentials(creds))
        return lfn.startswith(home + "/")

    def _mayChange(self, lfn: str) -> bool:
        """Whether the caller may replace or remove the existing file ``lfn``."""
        creds = self.getRemoteCredentials()
        if ADMIN_PROPERTY in set(creds.get("properties") or ()):
            return True
        if self._actingOwner(lfn):  # a job agent creates files for the owner, nothing more
            return False
        owner = self._readMeta(lfn).get("Owner")
        return self._maySet(lfn) and owner in (None, creds.get("username"))

    def _readMeta(self, lfn: str) -> dict[str, Any]:
        try:
            return json.loads(self._meta(lfn).read_text())
        except (OSError, ValueError):
            return {}

    # ----------------------------------------------------------- quotas
    @classmethod
    def _usedBytes(cls) -> int:
        used = 0
        for root, _dirs, files in os.walk(cls.basePath / "data"):
            for name in files:
                with contextlib.suppress(OSError):
                    used += os.lstat(os.path.join(root, name)).st_size
        transfers = cls.basePath / "transfers"
        for path in [*transfers.glob("*.json"), *transfers.glob("*.committing")]:
            with contextlib.suppress(OSError, ValueError):
                used += int(json.loads(path.read_text())["Size"])
        return used

    @classmethod
    def _expireTransfers(cls) -> None:
        limit = time.time() - cls.transferTimeout
        for path in (cls.basePath / "transfers").iterdir():
            if path.name.startswith("."):
                continue  # the quota lock
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < limit:
                    path.unlink()

    # ---------------------------------------------------------- uploads
    types_openTransfer: ClassVar[list] = [str, int]
    auth_openTransfer: ClassVar[list] = _AUTH

    def export_openTransfer(self, lfn: str, size: int, checksum: str = "",
                            overwrite: bool = False) -> DReturnType:
        """Start an upload of ``size`` bytes to ``lfn`` whose adler32 is ``checksum``:
        ``S_OK({"TransferID", "ChunkSize"})``; refused when the file exists (unless
        ``overwrite``), when the caller may not write there, or over the quota."""
        try:
            lfn = normalizeLFN(lfn)
        except ValueError as exc:
            return S_ERROR(errno.EINVAL, str(exc))
        if isinstance(size, bool) or size < 0 or size >= 2**62:
            return S_ERROR(errno.EINVAL, f"invalid size {size!r}")
        if not isinstance(checksum, str) or len(checksum) > 8 or \
                (checksum and not re.fullmatch(r"[0-9a-fA-F]+", checksum)):
            return S_ERROR(errno.EINVAL, f"invalid adler32 checksum {checksum!r}")
        if not self._maySet(lfn):
            return S_ERROR(errno.EACCES, f"Permission denied: cannot write {lfn} on "
                                         f"{self.seName}")
        target = self._data(lfn)
        if target.is_dir():
            return S_ERROR(errno.EISDIR, f"{lfn} is a directory on {self.seName}")
        if target.exists():
            if not overwrite:
                return S_ERROR(errno.EEXIST, f"{lfn} already exists on {self.seName}")
            if not self._mayChange(lfn):
                return S_ERROR(errno.EACCES, f"Permission denied: {lfn} on {self.seName} "
                                             f"belongs to another user")
        self._expireTransfers()
        transferID = uuid.uuid4().hex
        info = {"LFN": lfn, "Size": size, "Checksum": checksum.lower(),
                "Overwrite": bool(overwrite),
                "Owner": self._actingOwner(lfn) or self.getRemoteCredentials().get("username"),
                "Uploader": self.getRemoteCredentials().get("username"),
                "Opened": time.time()}
        part = self._transfer(transferID, ".part")
        ticket = self._transfer(transferID, ".json")
        assert part is not None and ticket is not None
        # Check and reserve under one lock: the processes serving this SE must not both
        # see room for the last free bytes.
        with open(self.basePath / "transfers" / ".quota.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if self.maxBytes and self._usedBytes() + size > self.maxBytes:
                return S_ERROR(errno.ENOSPC, f"{self.seName} is full: {size} more bytes "
                                             f"would exceed its quota of {self.maxBytes} bytes")
            free = shutil.disk_usage(self.basePath).free
            if size > free:
                return S_ERROR(errno.ENOSPC, f"{self.seName}: only {free} bytes free on disk")
            with open(part, "wb") as fh:
                fh.truncate(0)
            ticket.write_text(json.dumps(info))
        return S_OK({"TransferID": transferID, "ChunkSize": CHUNK_SIZE, "MaxChunk": MAX_CHUNK})

    def _openInfo(self, transferID: Any) -> DReturnType:
        path = self._transfer(transferID, ".json")
        if path is None:
            return S_ERROR(errno.EINVAL, f"invalid transfer ID {transferID!r}")
        try:
            return S_OK(json.loads(path.read_text()))
        except (OSError, ValueError):
            return S_ERROR(errno.ENOENT, f"no transfer {transferID} in progress on "
                                         f"{self.seName} (finished, aborted or expired)")

    def _ownsTransfer(self, info: dict[str, Any]) -> bool:
        return info.get("Uploader", info.get("Owner")) == \
            self.getRemoteCredentials().get("username")

    types_writeChunk: ClassVar[list] = [str, int, bytes]
    auth_writeChunk: ClassVar[list] = _AUTH

    def export_writeChunk(self, transferID: str, offset: int, data: bytes) -> DReturnType:
        """Write ``data`` at ``offset`` of an upload (chunks may come in any order, and
        twice): ``S_OK(len(data))``."""
        info = self._openInfo(transferID)
        if not info["OK"]:
            return info
        info = info["Value"]
        if not self._ownsTransfer(info):
            return S_ERROR(errno.EACCES, "Permission denied: not your transfer")
        if isinstance(offset, bool) or offset < 0 or len(data) > MAX_CHUNK or \
                offset + len(data) > info["Size"]:
            return S_ERROR(errno.EINVAL, f"chunk of {len(data)} bytes at {offset} does not fit "
                                         f"a file of {info['Size']} bytes (chunks up to "
                                         f"{MAX_CHUNK})")
        part = self._transfer(transferID, ".part")
        try:
            fd = os.open(part, os.O_WRONLY)  # type: ignore[arg-type]
        except OSError:
            return S_ERROR(errno.ENOENT, f"transfer {transferID} was aborted or expired")
        try:
            os.pwrite(fd, data, offset)
        except OSError as exc:
            return S_ERROR(exc.errno or errno.EIO, f"cannot write on {self.seName}: {exc}")
        finally:
            os.close(fd)
        return S_OK(len(data))

    types_commitTransfer: ClassVar[list] = [str]
    auth_commitTransfer: ClassVar[list] = _AUTH

    def export_commitTransfer(self, transferID: str) -> DReturnType:
        """Check size and adler32, then make the file visible under its LFN in one
        rename: ``S_OK({"Size", "Checksum"})``.  A mismatch deletes the upload."""
        info = self._openInfo(transferID)
        if not info["OK"]:
            return info
        info = info["Value"]
        if not self._ownsTransfer(info):
            return S_ERROR(errno.EACCES, "Permission denied: not your transfer")
        part = self._transfer(transferID, ".part")
        ticket = self._transfer(transferID, ".json")
        assert part is not None and ticket is not None
        claimed = ticket.with_suffix(".committing")
        try:
            os.rename(ticket, claimed)  # one commit wins, a second one finds nothing
        except OSError:
            return S_ERROR(errno.ENOENT, f"transfer {transferID} is being committed or gone")
        try:
            return self._commit(info, part)
        finally:
            with contextlib.suppress(OSError):
                claimed.unlink()
            with contextlib.suppress(OSError):
                part.unlink()

    def _commit(self, info: dict[str, Any], part: Path) -> DReturnType:
        lfn = info["LFN"]
        size = part.stat().st_size
        if size != info["Size"]:
            return S_ERROR(errno.EIO, f"upload of {lfn} incomplete: {size} of {info['Size']} "
                                      f"bytes arrived")
        value = 1
        with open(part, "rb") as fh:
            while block := fh.read(CHUNK_SIZE):
                value = zlib.adler32(block, value)
        checksum = formatAdler(value)
        if info["Checksum"] and not sameChecksum(checksum, info["Checksum"]):
            return S_ERROR(errno.EBADMSG, f"checksum mismatch for {lfn} on {self.seName}: "
                                          f"received data has adler32 {checksum}, the client "
                                          f"declared {info['Checksum']}")
        with open(part, "rb") as fh:
            os.fsync(fh.fileno())
        target = self._data(lfn)
        meta = self._meta(lfn)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            meta.parent.mkdir(parents=True, exist_ok=True)
            tmpMeta = meta.with_name(meta.name + f".{uuid.uuid4().hex}.tmp")
            tmpMeta.write_text(json.dumps({"Size": size, "Checksum": checksum,
                                           "Owner": info.get("Owner"),
                                           "Uploader": info.get("Uploader"),
                                           "Created": time.time()}))
            os.replace(tmpMeta, meta)
            if info["Overwrite"]:
                os.replace(part, target)
            else:
                os.link(part, target)  # fails if the LFN appeared meanwhile: no overwrite
        except FileExistsError:
            return S_ERROR(errno.EEXIST, f"{lfn} already exists on {self.seName}")
        except OSError as exc:
            return S_ERROR(exc.errno or errno.EIO, f"cannot store {lfn} on {self.seName}: "
                                                   f"{exc}")
        return S_OK({"Size": size, "Checksum": checksum})

    types_abortTransfer: ClassVar[list] = [str]
    auth_abortTransfer: ClassVar[list] = _AUTH

    def export_abortTransfer(self, transferID: str) -> DReturnType:
        """Forget an upload (nothing becomes visible)."""
        info = self._openInfo(transferID)
        if not info["OK"]:
            return S_OK() if info["Errno"] == errno.ENOENT else info
        if not self._ownsTransfer(info["Value"]):
            return S_ERROR(errno.EACCES, "Permission denied: not your transfer")
        for suffix in (".json", ".part"):
            with contextlib.suppress(OSError):
                self._transfer(transferID, suffix).unlink()  # type: ignore[union-attr]
        return S_OK()

    # -------------------------------------------------------- downloads
    types_readChunk: ClassVar[list] = [str, int, int]
    auth_readChunk: ClassVar[list] = _AUTH

    def export_readChunk(self, lfn: str, offset: int, length: int) -> DReturnType:
        """Up to ``length`` bytes of ``lfn`` from ``offset`` (``b""`` at the end)."""
        try:
            lfn = normalizeLFN(lfn)
        except ValueError as exc:
            return S_ERROR(errno.EINVAL, str(exc))
        if isinstance(offset, bool) or offset < 0 or length < 0 or length > MAX_CHUNK:
            return S_ERROR(errno.EINVAL, f"invalid range: offset {offset}, length {length} "
                                         f"(at most {MAX_CHUNK})")
        try:
            with open(self._data(lfn), "rb") as fh:
                return S_OK(os.pread(fh.fileno(), length, offset))
        except IsADirectoryError:
            return S_ERROR(errno.EISDIR, f"{lfn} is a directory")
        except FileNotFoundError:
            return S_ERROR(errno.ENOENT, f"No such file: {lfn} on {self.seName}")
        except OSError as exc:
            return S_ERROR(exc.errno or errno.EIO, f"cannot read {lfn}: {exc}")

    # ------------------------------------------------------ bulk methods
    def _each(self, lfns: Any, one: Any) -> DReturnType:
        split = splitLFNs(lfns)
        if not split["OK"]:
            return split
        good, failed = split["Value"]
        ok: dict[str, Any] = {}
        for lfn, params in good.items():
            result = one(lfn, params)
            if result["OK"]:
                ok[lfn] = result["Value"]
            else:
                failed[lfn] = result["Message"]
        return S_OK({"Successful": ok, "Failed": failed})

    def _fileMetadata(self, lfn: str, _params: Any = None) -> DReturnType:
        target = self._data(lfn)
        try:
            stat = target.stat()
        except OSError:
            return S_ERROR(errno.ENOENT, "No such file or directory")
        if target.is_dir():
            return S_OK({"Directory": True, "File": False, "Size": 0,
                         "ModificationDate": _utc(stat.st_mtime), "Mode": stat.st_mode & 0o777})
        meta = self._readMeta(lfn)
        return S_OK({"Directory": False, "File": True, "Size": stat.st_size,
                     "Checksum": meta.get("Checksum", ""), "ChecksumType": "ADLER32",
                     "Owner": meta.get("Owner", ""), "Exists": True,
                     "ModificationDate": _utc(stat.st_mtime), "Mode": stat.st_mode & 0o777})

    types_getFileMetadata: ClassVar[list] = [_LFNS]
    auth_getFileMetadata: ClassVar[list] = _AUTH

    def export_getFileMetadata(self, lfns: Any) -> DReturnType:
        """``{lfn: {Size, Checksum, ChecksumType, ModificationDate, Directory, File, ...}}``."""
        return self._each(lfns, self._fileMetadata)

    types_getMetadata: ClassVar[list] = [_LFNS]
    auth_getMetadata: ClassVar[list] = _AUTH

    def export_getMetadata(self, lfns: Any) -> DReturnType:
        """DIRAC's handler name for :meth:`export_getFileMetadata`."""
        return self._each(lfns, self._fileMetadata)

    types_exists: ClassVar[list] = [_LFNS]
    auth_exists: ClassVar[list] = _AUTH

    def export_exists(self, lfns: Any) -> DReturnType:
        """``{lfn: bool}``."""
        return self._each(lfns, lambda lfn, _p: S_OK(self._data(lfn).exists()))

    types_isFile: ClassVar[list] = [_LFNS]
    auth_isFile: ClassVar[list] = _AUTH

    def export_isFile(self, lfns: Any) -> DReturnType:
        """``{lfn: bool}`` (a missing LFN is Failed)."""

        def one(lfn: str, _p: Any) -> DReturnType:
            target = self._data(lfn)
            if not target.exists():
                return S_ERROR(errno.ENOENT, "No such file or directory")
            return S_OK(target.is_file())

        return self._each(lfns, one)

    types_getFileSize: ClassVar[list] = [_LFNS]
    auth_getFileSize: ClassVar[list] = _AUTH

    def export_getFileSize(self, lfns: Any) -> DReturnType:
        """``{lfn: size}``."""

        def one(lfn: str, _p: Any) -> DReturnType:
            target = self._data(lfn)
            if not target.is_file():
                return S_ERROR(errno.ENOENT, "No such file")
            return S_OK(target.stat().st_size)

        return self._each(lfns, one)

    types_removeFile: ClassVar[list] = [_LFNS]
    auth_removeFile: ClassVar[list] = _AUTH

    def export_removeFile(self, lfns: Any) -> DReturnType:
        """Remove files (a missing file counts as removed, as in DIRAC)."""

        def one(lfn: str, _p: Any) -> DReturnType:
            target = self._data(lfn)
            if target.is_dir():
                return S_ERROR(errno.EISDIR, "Is a directory")
            if not target.exists():
                return S_OK(True)
            if not self._mayChange(lfn):
                return S_ERROR(errno.EACCES, "Permission denied")
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            with contextlib.suppress(FileNotFoundError):
                self._meta(lfn).unlink()
            return S_OK(True)

        return self._each(lfns, one)

    types_createDirectory: ClassVar[list] = [_LFNS]
    auth_createDirectory: ClassVar[list] = _AUTH

    def export_createDirectory(self, lfns: Any) -> DReturnType:
        """Create directories (with their parents)."""

        def one(lfn: str, _p: Any) -> DReturnType:
            if not self._maySet(lfn + "/x"):
                return S_ERROR(errno.EACCES, "Permission denied")
            try:
                self._data(lfn).mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                return S_ERROR(exc.errno or errno.EIO, str(exc))
            return S_OK(True)

        return self._each(lfns, one)

    types_removeDirectory: ClassVar[list] = [_LFNS]
    auth_removeDirectory: ClassVar[list] = _AUTH

    def export_removeDirectory(self, lfns: Any, recursive: bool = False) -> DReturnType:
        """Remove directories: empty ones, or with ``recursive`` everything below
        (``{path: {"FilesRemoved", "SizeRemoved"}}``)."""

        def one(lfn: str, _p: Any) -> DReturnType:
            target = self._data(lfn)
            if not target.exists():
                return S_OK({"FilesRemoved": 0, "SizeRemoved": 0})
            if not target.is_dir():
                return S_ERROR(errno.ENOTDIR, "Not a directory")
            if lfn == "/" or not self._maySet(lfn + "/x") or self._actingOwner(lfn + "/x"):
                return S_ERROR(errno.EACCES, "Permission denied")  # (job agents remove nothing)
            removed = size = 0
            if recursive:
                for root, _dirs, files in os.walk(target):
                    for name in files:
                        path = Path(root) / name
                        sub = "/" + str(path.relative_to(self.basePath / "data"))
                        if not self._mayChange(sub):
                            return S_ERROR(errno.EACCES, f"Permission denied: {sub}")
                        size += path.stat().st_size
                        path.unlink()
                        with contextlib.suppress(FileNotFoundError):
                            self._meta(sub).unlink()
                        removed += 1
                shutil.rmtree(target, ignore_errors=True)
                shutil.rmtree(self.basePath / "meta" / lfn.lstrip("/"), ignore_errors=True)
            else:
                try:
                    target.rmdir()
                except OSError:
                    return S_ERROR(errno.ENOTEMPTY, "Directory not empty")
                with contextlib.suppress(OSError):
                    (self.basePath / "meta" / lfn.lstrip("/")).rmdir()
            return S_OK({"FilesRemoved": removed, "SizeRemoved": size})

        return self._each(lfns, one)

    types_listDirectory: ClassVar[list] = [_LFNS]
    auth_listDirectory: ClassVar[list] = _AUTH

    def export_listDirectory(self, lfns: Any) -> DReturnType:
        """``{path: {"Files": {lfn: metadata}, "SubDirs": {path: metadata}}}``."""

        def one(lfn: str, _p: Any) -> DReturnType:
            target = self._data(lfn)
            if not target.is_dir():
                return S_ERROR(errno.ENOENT, "Directory does not exist")
            files, subdirs = {}, {}
            for entry in sorted(target.iterdir()):
                sub = lfn.rstrip("/") + "/" + entry.name
                found = self._fileMetadata(sub)
                if found["OK"]:
                    (subdirs if entry.is_dir() else files)[sub] = found["Value"]
            return S_OK({"Files": files, "SubDirs": subdirs})

        return self._each(lfns, one)

    types_getDirectorySize: ClassVar[list] = [_LFNS]
    auth_getDirectorySize: ClassVar[list] = _AUTH

    def export_getDirectorySize(self, lfns: Any) -> DReturnType:
        """``{path: {"Files", "Size", "SubDirs"}}`` of a directory's own entries."""

        def one(lfn: str, _p: Any) -> DReturnType:
            target = self._data(lfn)
            if not target.is_dir():
                return S_ERROR(errno.ENOENT, "Directory does not exist")
            files = size = subdirs = 0
            for entry in target.iterdir():
                if entry.is_dir():
                    subdirs += 1
                else:
                    files += 1
                    size += entry.stat().st_size
            return S_OK({"Files": files, "Size": size, "SubDirs": subdirs})

        return self._each(lfns, one)

    types_getFreeDiskSpace: ClassVar[list] = []
    auth_getFreeDiskSpace: ClassVar[list] = _AUTH

    def export_getFreeDiskSpace(self) -> DReturnType:
        """Free space in MB: what the disk has left, bounded by the quota."""
        free = shutil.disk_usage(self.basePath).free
        if self.maxBytes:
            free = min(free, max(0, self.maxBytes - self._usedBytes()))
        return S_OK(free // 2**20)

    types_getTotalDiskSpace: ClassVar[list] = []
    auth_getTotalDiskSpace: ClassVar[list] = _AUTH

    def export_getTotalDiskSpace(self) -> DReturnType:
        """Total space in MB: the quota, else the disk's size."""
        if self.maxBytes:
            return S_OK(self.maxBytes // 2**20)
        return S_OK(shutil.disk_usage(self.basePath).total // 2**20)

    types_getSEInfo: ClassVar[list] = []
    auth_getSEInfo: ClassVar[list] = _AUTH

    def export_getSEInfo(self) -> DReturnType:
        """The SE's name, base path, quota and chunk sizes."""
        return S_OK({"Name": self.seName, "BasePath": str(self.basePath),
                     "MaxStorageSize": self.maxBytes // 2**20, "ChunkSize": CHUNK_SIZE,
                     "MaxChunk": MAX_CHUNK})
