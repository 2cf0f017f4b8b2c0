"""``StorageElement(name)``: DIRAC's client of one storage element.

Methods take LFNs in DIRAC's bulk convention and return
``S_OK({"Successful": {...}, "Failed": {...}})``.  Files travel in chunks over the
RPC (``openTransfer``/``writeChunk``/``commitTransfer`` up, ``readChunk`` down) with
at most ``window`` chunks in flight, so a file of any size passes in bounded memory;
the adler32 is checked by the SE on upload and by this client on download, and a
download is written to a temporary file renamed into place only when complete.
"""

from __future__ import annotations

import contextlib
import errno
import os
import uuid
import zlib
from collections import deque
from pathlib import Path
from typing import Any

from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType
from diracmq.client.base import Client, RPCFuture

from DIRAC.DataManagementSystem.Utilities.DMSUtilities import (
    DEFAULT_SE,
    checkSEName,
    fileAdler,
    formatAdler,
    sameChecksum,
    seServiceName,
    splitLFNs,
)

__all__ = ["StorageElement", "getStorageElementOptions"]

#: Chunks of one transfer in flight at once (memory: window x chunk size per transfer).
DEFAULT_WINDOW = 4
#: Seconds a transfer's chunk may take when the StorageElement was given no timeout.
CHUNK_TIMEOUT = 120.0


def getStorageElementOptions() -> dict[str, dict[str, Any]]:
    """``{name: options}`` of the storage elements the Configuration declares under
    ``Resources/StorageElements`` (``BasePath``, ``MaxStorageSize`` MB); with none
    declared, ``SE-USER`` under ``$DIRAC_DATA_DIR/SE-USER``.

    An SE without ``BasePath`` is stored under ``$DIRAC_DATA_DIR/StorageElements/<name>``.
    """
    data = Path(os.environ.get("DIRAC_DATA_DIR") or "~/.dirac/data").expanduser()
    try:
        from DIRAC import gConfig

        result = gConfig.getOptionsDictRecursively("/Resources/StorageElements")
    except Exception:  # no configuration at all: the default SE below
        result = S_ERROR("no configuration")
    declared = result["Value"] if result["OK"] and isinstance(result["Value"], dict) else {}
    elements: dict[str, dict[str, Any]] = {}
    seen: dict[str, str] = {}
    for name, options in declared.items():
        if not isinstance(options, dict):
            continue
        checkSEName(name)
        service = seServiceName(name)
        if service in seen:
            raise ValueError(f"storage elements {seen[service]} and {name} would share the "
                             f"service {service}: rename one")
        seen[service] = name
        merged = dict(options)
        merged.setdefault("BasePath", str(data / "StorageElements" / name))
        elements[name] = merged
    if not elements:
        elements[DEFAULT_SE] = {"BasePath": str(data / DEFAULT_SE)}
    return elements


class StorageElement:
    """A storage element, by name (``StorageElement("SE-USER")``)."""

    def __init__(self, name: str, *, window: int = DEFAULT_WINDOW,
                 timeout: float | None = None, **kwargs: Any) -> None:
        self.name = name
        self.window = max(1, int(window))
        try:
            checkSEName(name)
            self.valid = True
            self.errorReason = ""
            self._client = Client(url=seServiceName(name), timeout=timeout,
                                  settings=kwargs.get("settings"))
        except ValueError as exc:
            self.valid = False
            self.errorReason = str(exc)
            self._client = Client(timeout=timeout, settings=kwargs.get("settings"))

    def __repr__(self) -> str:
        return f"<StorageElement {self.name}>"

    def isValid(self) -> DReturnType:
        """S_OK() for a well-formed name, else S_ERROR with the reason."""
        return S_OK() if self.valid else S_ERROR(errno.EINVAL, self.errorReason)

    @property
    def chunkTimeout(self) -> float:
        """Seconds one chunk may take: the ``timeout`` given, else :data:`CHUNK_TIMEOUT`."""
        return self._client.timeout or CHUNK_TIMEOUT

    def _call(self, method: str, *args: Any, timeout: float | None = None) -> DReturnType:
        if not self.valid:
            return S_ERROR(errno.EINVAL, self.errorReason)
        return self._client.executeRPC(method, *args, timeout=timeout)

    # --------------------------------------------------------- simple calls
    def exists(self, lfn: Any) -> DReturnType:
        """``{lfn: bool}``."""
        return self._call("exists", lfn)

    def isFile(self, lfn: Any) -> DReturnType:
        """``{lfn: bool}``."""
        return self._call("isFile", lfn)

    def getFileSize(self, lfn: Any) -> DReturnType:
        """``{lfn: size}``."""
        return self._call("getFileSize", lfn)

    def getFileMetadata(self, lfn: Any) -> DReturnType:
        """``{lfn: {Size, Checksum, ChecksumType, ModificationDate, ...}}``."""
        return self._call("getFileMetadata", lfn)

    def removeFile(self, lfn: Any) -> DReturnType:
        """Remove files (missing ones count as removed)."""
        return self._call("removeFile", lfn)

    def listDirectory(self, lfn: Any) -> DReturnType:
        """``{path: {"Files": {...}, "SubDirs": {...}}}``."""
        return self._call("listDirectory", lfn)

    def createDirectory(self, lfn: Any) -> DReturnType:
        """Create directories."""
        return self._call("createDirectory", lfn)

    def removeDirectory(self, lfn: Any, recursive: bool = False) -> DReturnType:
        """Remove directories (with their content when ``recursive``)."""
        return self._call("removeDirectory", lfn, bool(recursive))

    def getDirectorySize(self, lfn: Any) -> DReturnType:
        """``{path: {Files, Size, SubDirs}}``."""
        return self._call("getDirectorySize", lfn)

    def getFreeDiskSpace(self) -> DReturnType:
        """Free MB (bounded by the quota)."""
        return self._call("getFreeDiskSpace")

    def getURL(self, lfn: Any, protocol: Any = None) -> DReturnType:
        """``{lfn: "diracmq://<SE><lfn>"}``: the PFN the catalogue records for a replica."""
        del protocol
        split = splitLFNs(lfn)
        if not split["OK"]:
            return split
        good, failed = split["Value"]
        return S_OK({"Successful": {lfn: self.url(lfn) for lfn in good}, "Failed": failed})

    def url(self, lfn: str) -> str:
        """The PFN of ``lfn`` on this SE."""
        return f"diracmq://{self.name}{lfn}"

    # ------------------------------------------------------------ uploads
    def putFile(self, lfns: Any, sourceSize: int = 0, overwrite: bool = True,
                checksums: dict[str, str] | None = None) -> DReturnType:
        """Upload ``{lfn: localPath}``: ``Successful[lfn] = size``."""
        del sourceSize
        if not isinstance(lfns, dict):
            return S_ERROR(errno.EINVAL, "putFile needs a dict {lfn: local path}")
        split = splitLFNs(lfns)
        if not split["OK"]:
            return split
        good, failed = split["Value"]
        ok: dict[str, int] = {}
        for lfn, path in good.items():
            given = (checksums or {}).get(lfn)
            result = self.putOne(lfn, path, overwrite=overwrite, checksum=given)
            if result["OK"]:
                ok[lfn] = result["Value"]["Size"]
            else:
                failed[lfn] = result["Message"]
        return S_OK({"Successful": ok, "Failed": failed})

    def putOne(self, lfn: str, path: Any, *, overwrite: bool = True,
               checksum: str | None = None) -> DReturnType:
        """Upload one local file: ``S_OK({"Size", "Checksum"})``."""
        if not isinstance(path, (str, os.PathLike)):
            return S_ERROR(errno.EINVAL, f"{lfn}: the local path must be text, not "
                                         f"{type(path).__name__}")
        try:
            size = os.path.getsize(path)
            if not os.path.isfile(path):
                return S_ERROR(errno.EISDIR, f"{path} is not a file")
            local = fileAdler(path)
        except OSError as exc:
            return S_ERROR(errno.ENOENT, f"cannot read {path}: {exc.strerror or exc}")
        if checksum and not sameChecksum(checksum, local):
            return S_ERROR(errno.EBADMSG, f"{path} has adler32 {local}, not the {checksum} "
                                          f"given")
        opened = self._call("openTransfer", lfn, size, local, bool(overwrite))
        if not opened["OK"]:
            return opened
        transferID = opened["Value"]["TransferID"]
        chunk = int(opened["Value"].get("ChunkSize") or 4 * 2**20)
        sent = self._sendChunks(transferID, path, size, chunk)
        if not sent["OK"]:
            self._call("abortTransfer", transferID, timeout=30)
            return sent
        # the commit reads the whole file once more (its adler32): allow 20 MB/s for it
        return self._call("commitTransfer", transferID,
                          timeout=max(self.chunkTimeout, size / 20e6))

    def _sendChunks(self, transferID: str, path: Any, size: int, chunk: int) -> DReturnType:
        pending: deque[RPCFuture] = deque()
        with open(path, "rb") as fh:
            offset = 0
            while offset < size or pending:
                while offset < size and len(pending) < self.window:
                    data = fh.read(min(chunk, size - offset))
                    if not data:
                        return S_ERROR(errno.EIO, f"{path} shrank while being read")
                    pending.append(self._client.submit("writeChunk", transferID, offset, data,
                                                       timeout=self.chunkTimeout))
                    offset += len(data)
                result = pending.popleft().result()
                if not result["OK"]:
                    for future in pending:
                        with contextlib.suppress(Exception):
                            future.result()
                    return result
        return S_OK()

    # ---------------------------------------------------------- downloads
    def getFile(self, lfns: Any, localPath: Any = False) -> DReturnType:
        """Download files into ``localPath`` (a directory; default the current one):
        ``Successful[lfn] = size``."""
        split = splitLFNs(lfns)
        if not split["OK"]:
            return split
        good, failed = split["Value"]
        directory = Path(localPath) if localPath else Path.cwd()
        ok: dict[str, int] = {}
        for lfn in good:
            result = self.getOne(lfn, directory / os.path.basename(lfn))
            if result["OK"]:
                ok[lfn] = result["Value"]
            else:
                failed[lfn] = result["Message"]
        return S_OK({"Successful": ok, "Failed": failed})

    def getOne(self, lfn: str, destination: Path) -> DReturnType:
        """Download one file to ``destination`` (written whole or not at all): S_OK(size)."""
        meta = self._call("getFileMetadata", lfn)
        if not meta["OK"]:
            return meta
        if lfn in meta["Value"]["Failed"]:
            return S_ERROR(errno.ENOENT, f"{lfn} on {self.name}: "
                                         f"{meta['Value']['Failed'][lfn]}")
        info = next(iter(meta["Value"]["Successful"].values()))
        if info.get("Directory"):
            return S_ERROR(errno.EISDIR, f"{lfn} is a directory on {self.name}")
        size, expected = int(info["Size"]), info.get("Checksum", "")
        destination = Path(destination)
        temporary = destination.with_name(f".{destination.name}.{uuid.uuid4().hex[:8]}.part")
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            with open(temporary, "wb") as fh:
                got = self._receive(lfn, size, fh)
            if not got["OK"]:
                return got
            if expected and not sameChecksum(got["Value"], expected):
                return S_ERROR(errno.EBADMSG, f"checksum mismatch for {lfn} from {self.name}: "
                                              f"received adler32 {got['Value']}, recorded "
                                              f"{expected}")
            os.replace(temporary, destination)
        except OSError as exc:
            return S_ERROR(exc.errno or errno.EIO, f"cannot write {destination}: {exc}")
        finally:
            with contextlib.suppress(OSError):
                temporary.unlink()
        return S_OK(size)

    def _receive(self, lfn: str, size: int, fh: Any, chunk: int = 4 * 2**20) -> DReturnType:
        pending: deque[tuple[int, RPCFuture]] = deque()
        value = 1
        offset = received = 0
        while offset < size or pending:
            while offset < size and len(pending) < self.window:
                length = min(chunk, size - offset)
                pending.append((length, self._client.submit("readChunk", lfn, offset, length,
                                                            timeout=self.chunkTimeout)))
                offset += length
            length, future = pending.popleft()
            result = future.result()
            if not result["OK"]:
                return result
            data = result["Value"]
            if len(data) != length:
                return S_ERROR(errno.EIO, f"{lfn} changed size on {self.name} during the "
                                          f"download")
            value = zlib.adler32(data, value)
            fh.write(data)
            received += len(data)
        return S_OK(formatAdler(value))
