"""Client of ``WorkloadManagement/SandboxStore``: upload and download sandboxes in chunks.

A sandbox is a tar archive of files (uncompressed: fast for any content, and
byte-identical for identical files, so the store keeps one copy).  Files are read and
written in chunks of the size the store asks for (1 MiB), with at most
:data:`WINDOW` chunks in flight: memory stays bounded whatever the sandbox size.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from diracmq.broker.derrno import EVALUE
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType
from diracmq.client.base import Client

__all__ = ["SandboxStoreClient", "packFiles"]

#: Chunks in flight at once (upload and download).
WINDOW = 4
#: Download chunk size.
CHUNK = 1 << 20


def _normalised(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """No owner, time or mode noise: the same files make the same archive (same sha256)."""
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    info.mode = 0o755 if info.isdir() or info.mode & 0o111 else 0o644
    return info


def packFiles(files: Iterable[str | Path], target: Path) -> list[str]:
    """Write a tar of ``files`` (each under its base name; a directory with its content)
    to ``target``; the member names.  Raises OSError/ValueError for a missing file."""
    names: list[str] = []
    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as tar:
        for item in files:
            path = Path(item)
            if not path.exists():
                raise FileNotFoundError(f"input file {item} does not exist")
            arcname = path.name
            if arcname in names:
                raise ValueError(f"two input files named {arcname}")
            tar.add(path, arcname=arcname, filter=_normalised, recursive=True)
            names.append(arcname)
    return names


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


class SandboxStoreClient:
    """DIRAC's ``SandboxStoreClient``: ``uploadFilesAsSandbox``, ``downloadSandbox``,
    ``downloadSandboxForJob``, ``assignSandboxesToJob``, ``unassignJobs``..."""

    def __init__(self, **kwargs: Any) -> None:
        self.rpc = Client(url="WorkloadManagement/SandboxStore", **kwargs)

    # ---------------------------------------------------------------- upload
    def uploadFile(self, path: str | Path) -> DReturnType:
        """Upload one file as it is (already an archive): ``S_OK("SB:...")``."""
        path = Path(path)
        try:
            size = path.stat().st_size
            sha = _sha256(path)
        except OSError as exc:
            return S_ERROR(EVALUE, f"cannot read {path}: {exc}")
        started = self.rpc.initiateUpload(sha, size)
        if not started["OK"]:
            return started
        if started["Value"]["Exists"]:
            return S_OK(started["Value"]["Sandbox"])
        upload_id = started["Value"]["UploadID"]
        chunk = int(started["Value"]["ChunkSize"])
        pending: deque = deque()
        with path.open("rb") as fh:
            offset = 0
            while True:
                data = fh.read(chunk)
                if not data:
                    break
                pending.append(self.rpc.submit("uploadChunk", upload_id, offset, data))
                offset += len(data)
                del data
                if len(pending) >= WINDOW:
                    result = pending.popleft().result()
                    if not result["OK"]:
                        return result
        while pending:
            result = pending.popleft().result()
            if not result["OK"]:
                return result
        return self.rpc.finishUpload(upload_id)

    def uploadFilesAsSandbox(self, fileList: Iterable[str | Path], sizeLimit: int = 0,
                             assignTo: dict[str, str] | None = None) -> DReturnType:
        """Pack the files, upload them: ``S_OK("SB:SandboxSE|...")``.

        ``sizeLimit`` (bytes, 0: none) refuses a bigger archive; ``assignTo``
        ``{"Job:<id>": "Input"|"Output"}`` assigns the sandbox at once.
        """
        files = list(fileList)
        if not files:
            return S_ERROR(EVALUE, "no files to upload")
        with tempfile.TemporaryDirectory(prefix="dirac-sb-") as tmp:
            archive = Path(tmp) / "sandbox.tar"
            try:
                packFiles(files, archive)
            except (OSError, ValueError) as exc:
                return S_ERROR(EVALUE, str(exc))
            if sizeLimit and archive.stat().st_size > sizeLimit:
                return S_ERROR(EVALUE, f"sandbox is {archive.stat().st_size} bytes, over the "
                                       f"limit of {sizeLimit}")
            uploaded = self.uploadFile(archive)
        if not uploaded["OK"] or not assignTo:
            return uploaded
        name = uploaded["Value"]
        assigned = self.rpc.assignSandboxesToEntities(
            {entity: [(name, kind)] for entity, kind in assignTo.items()})
        return assigned if not assigned["OK"] else S_OK(name)

    # -------------------------------------------------------------- download
    def downloadToFile(self, sbLocation: str, target: Path) -> DReturnType:
        """Fetch a sandbox into the file ``target``; the sha256 is checked.  S_OK(bytes)."""
        info = self.rpc.getSandboxInfo(sbLocation)
        if not info["OK"]:
            return info
        size, sha = int(info["Value"]["Bytes"]), info["Value"]["SHA256"]
        digest = hashlib.sha256()
        pending: deque = deque()
        next_offset = 0
        with open(target, "wb") as fh:
            while next_offset < size or pending:
                while next_offset < size and len(pending) < WINDOW:
                    pending.append(self.rpc.submit("downloadChunk", sbLocation, next_offset,
                                                   CHUNK))
                    next_offset += CHUNK
                result = pending.popleft().result()
                if not result["OK"]:
                    return result
                digest.update(result["Value"])
                fh.write(result["Value"])
        if digest.hexdigest() != sha:
            return S_ERROR(EVALUE, f"sandbox {sbLocation}: checksum mismatch after download")
        return S_OK(size)

    def downloadSandbox(self, sbLocation: str, destinationDir: str = "",
                        inMemory: bool = False, unpack: bool = True) -> DReturnType:
        """Fetch a sandbox into ``destinationDir`` (default: the current directory) and
        unpack it: ``S_OK([file names])`` (not unpacked: ``S_OK(archive path)``;
        ``inMemory``: ``S_OK(archive bytes)``, for small sandboxes only)."""
        destination = Path(destinationDir or os.getcwd())
        destination.mkdir(parents=True, exist_ok=True)
        if inMemory or not unpack:
            target = destination / (sbLocation.rsplit("/", 1)[-1] or "sandbox.tar")
            fetched = self.downloadToFile(sbLocation, target)
            if not fetched["OK"]:
                return fetched
            if inMemory:
                data = target.read_bytes()
                target.unlink()
                return S_OK(data)
            return S_OK(str(target))
        with tempfile.TemporaryDirectory(prefix="dirac-sb-", dir=destination) as tmp:
            archive = Path(tmp) / "sandbox.tar"
            fetched = self.downloadToFile(sbLocation, archive)
            if not fetched["OK"]:
                return fetched
            try:
                with tarfile.open(archive) as tar:
                    names = tar.getnames()
                    tar.extractall(destination, filter="data")  # no paths outside it
            except (tarfile.TarError, OSError) as exc:
                return S_ERROR(EVALUE, f"cannot unpack sandbox {sbLocation}: {exc}")
        return S_OK(names)

    def getSandboxesForJob(self, jobId: int) -> DReturnType:
        """``S_OK({"Input": [names], "Output": [names]})``."""
        return self.rpc.getSandboxesAssignedToEntity(f"Job:{int(jobId)}")

    def downloadSandboxForJob(self, jobId: int, sbType: str, destinationPath: str = "",
                              inMemory: bool = False, unpack: bool = True) -> DReturnType:
        """Fetch a job's ``Input`` or ``Output`` sandbox(es): ``S_OK([file names])``."""
        if sbType not in ("Input", "Output"):
            return S_ERROR(EVALUE, f"sbType must be Input or Output, not {sbType!r}")
        found = self.getSandboxesForJob(jobId)
        if not found["OK"]:
            return found
        names = found["Value"].get(sbType) or []
        if not names:
            return S_ERROR(EVALUE, f"no {sbType} sandbox for job {jobId}")
        files: list[str] = []
        for name in names:
            result = self.downloadSandbox(name, destinationPath, inMemory, unpack)
            if not result["OK"]:
                return result
            if inMemory:
                return result
            files += result["Value"] if isinstance(result["Value"], list) else [result["Value"]]
        return S_OK(files)

    def assignSandboxesToJob(self, jobId: int, sbList: list[tuple[str, str]]) -> DReturnType:
        """``sbList``: ``[(name, "Input"|"Output")]``."""
        return self.rpc.assignSandboxesToEntities({f"Job:{int(jobId)}": list(sbList)})

    def unassignJobs(self, jobIdList: list[int]) -> DReturnType:
        """Forget the jobs' sandboxes."""
        return self.rpc.unassignEntities([f"Job:{int(j)}" for j in jobIdList])
