"""``DataManager``: DIRAC's high-level data operations (storage elements + catalogue).

Every method takes LFNs in DIRAC's bulk convention and answers
``S_OK({"Successful": {...}, "Failed": {...}})``.  A file that was put but could not
be registered is removed from the SE again (the Failed reason says so); replicas are
copied through a temporary local file, so memory stays bounded whatever the size.
"""

from __future__ import annotations

import errno
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

from DIRAC.DataManagementSystem.Utilities.DMSUtilities import (
    fileAdler,
    normalizeLFN,
    sameChecksum,
    splitLFNs,
)
from DIRAC.Resources.Catalog.FileCatalog import FileCatalog
from DIRAC.Resources.Storage.StorageElement import StorageElement

__all__ = ["DataManager"]


class DataManager:
    """Put, get, replicate and remove files, keeping the catalogue in step."""

    def __init__(self, catalogs: Any = None, masterCatalogOnly: bool = False,
                 vo: str | None = None, **kwargs: Any) -> None:
        del catalogs, masterCatalogOnly, vo  # one catalogue
        self._kwargs = kwargs  # settings= / timeout= for the clients (tests use settings)
        self.fileCatalog = FileCatalog(**kwargs)

    def _se(self, name: str) -> StorageElement:
        return StorageElement(name, **self._kwargs)

    # --------------------------------------------------------------- put
    def putAndRegister(self, lfn: str, fileName: str, diracSE: str, guid: str | None = None,
                       path: str | None = None, checksum: str | None = None,
                       overwrite: bool = False) -> DReturnType:
        """Upload ``fileName`` to ``diracSE`` as ``lfn`` and register it:
        ``Successful[lfn] = {"put": seconds, "register": seconds}``."""
        del path  # DIRAC's unused argument
        try:
            lfn = normalizeLFN(lfn)
        except ValueError as exc:
            return S_ERROR(errno.EINVAL, str(exc))
        try:
            size = os.path.getsize(fileName)
            if not os.path.isfile(fileName):
                return S_ERROR(errno.EISDIR, f"putAndRegister: {fileName} is not a file")
        except (OSError, TypeError):
            return S_ERROR(errno.ENOENT, f"putAndRegister: supplied file does not exist: "
                                         f"{fileName}")
        if size == 0:
            return S_ERROR(errno.EINVAL, f"putAndRegister: supplied file is zero size: "
                                         f"{fileName}")
        local = fileAdler(fileName)
        if checksum and not sameChecksum(checksum, local):
            return S_ERROR(errno.EBADMSG, f"putAndRegister: {fileName} has adler32 {local}, "
                                          f"not the {checksum} given")
        known = self.fileCatalog.exists(lfn)
        if not known["OK"]:
            return known
        if known["Value"]["Successful"].get(lfn) and not overwrite:
            return S_ERROR(errno.EEXIST, f"putAndRegister: the file {lfn} already exists in "
                                         f"the catalogue")
        se = self._se(diracSE)
        started = time.monotonic()
        put = se.putOne(lfn, fileName, overwrite=overwrite, checksum=local)
        if not put["OK"]:
            return S_ERROR(put.get("Errno", errno.EIO),
                           f"putAndRegister: failed to put {lfn} to {diracSE}: "
                           f"{put['Message']}")
        putTime = time.monotonic() - started
        started = time.monotonic()
        registered = self.fileCatalog.addFile({lfn: {
            "PFN": se.url(lfn), "SE": diracSE, "Size": size, "Checksum": local,
            "GUID": guid or str(uuid.uuid4()).upper()}})
        registerTime = time.monotonic() - started
        reason = registered["Message"] if not registered["OK"] else \
            registered["Value"]["Failed"].get(lfn)
        if reason:
            removed = se.removeFile(lfn)
            gone = removed["OK"] and lfn in removed["Value"]["Successful"]
            return S_OK({"Successful": {}, "Failed": {lfn: (
                f"registration failed: {reason}; "
                + (f"the copy put on {diracSE} was removed" if gone else
                   f"the copy put on {diracSE} could NOT be removed: "
                   f"{removed.get('Message') or removed['Value']['Failed'].get(lfn)}"))}})
        return S_OK({"Successful": {lfn: {"put": putTime, "register": registerTime}},
                     "Failed": {}})

    # --------------------------------------------------------------- get
    def getFile(self, lfn: Any, destinationDir: str = "", sourceSE: str | None = None
                ) -> DReturnType:
        """Download files into ``destinationDir`` (default the current directory) from an
        active replica: ``Successful[lfn] = local path``."""
        replicas = self.getActiveReplicas(lfn)
        if not replicas["OK"]:
            return replicas
        failed = dict(replicas["Value"]["Failed"])
        ok: dict[str, str] = {}
        directory = Path(destinationDir or os.getcwd())
        metadata = self.fileCatalog.getFileMetadata(list(replicas["Value"]["Successful"])) \
            if replicas["Value"]["Successful"] else S_OK({"Successful": {}, "Failed": {}})
        expected = metadata["Value"]["Successful"] if metadata["OK"] else {}
        for name, sites in replicas["Value"]["Successful"].items():
            ses = [sourceSE] if sourceSE else sorted(sites)
            if sourceSE and sourceSE not in sites:
                failed[name] = f"no replica at {sourceSE}"
                continue
            if not ses:
                failed[name] = "No active replicas"
                continue
            target = directory / os.path.basename(name)
            reasons = []
            for seName in ses:
                got = self._se(seName).getOne(name, target)
                if not got["OK"]:
                    reasons.append(f"{seName}: {got['Message']}")
                    continue
                want = expected.get(name, {}).get("Checksum")
                if want and not sameChecksum(fileAdler(target), want):
                    target.unlink()
                    reasons.append(f"{seName}: checksum differs from the catalogue's {want}")
                    continue
                ok[name] = str(target)
                break
            else:
                failed[name] = "; ".join(reasons)
        return S_OK({"Successful": ok, "Failed": failed})

    # ---------------------------------------------------------- replicate
    def replicateAndRegister(self, lfn: Any, destSE: str, sourceSE: str = "",
                             destPath: str = "", localCache: str = "") -> DReturnType:
        """Copy files to ``destSE`` and register the new replicas:
        ``Successful[lfn] = {"replicate": seconds, "register": seconds}``."""
        del destPath
        replicas = self.getActiveReplicas(lfn)
        if not replicas["OK"]:
            return replicas
        failed = dict(replicas["Value"]["Failed"])
        ok: dict[str, Any] = {}
        dest = self._se(destSE)
        for name, sites in replicas["Value"]["Successful"].items():
            if destSE in sites:
                ok[name] = {}  # already there, as DIRAC answers
                continue
            sources = [sourceSE] if sourceSE else sorted(sites)
            if not sources or (sourceSE and sourceSE not in sites):
                failed[name] = f"no replica at {sourceSE}" if sourceSE else "No active replicas"
                continue
            started = time.monotonic()
            with tempfile.TemporaryDirectory(dir=localCache or None) as tmp:
                local = Path(tmp) / "replica"
                reasons = []
                for seName in sources:
                    got = self._se(seName).getOne(name, local)
                    if got["OK"]:
                        break
                    reasons.append(f"{seName}: {got['Message']}")
                else:
                    failed[name] = "cannot read a source replica: " + "; ".join(reasons)
                    continue
                put = dest.putOne(name, local, overwrite=True)
            if not put["OK"]:
                failed[name] = f"cannot write to {destSE}: {put['Message']}"
                continue
            copied = time.monotonic() - started
            started = time.monotonic()
            added = self.fileCatalog.addReplica({name: {"SE": destSE, "PFN": dest.url(name)}})
            reason = added["Message"] if not added["OK"] else \
                added["Value"]["Failed"].get(name)
            if reason:
                dest.removeFile(name)
                failed[name] = f"replica registration failed: {reason}; the copy on {destSE} " \
                               f"was removed"
                continue
            ok[name] = {"replicate": copied, "register": time.monotonic() - started}
        return S_OK({"Successful": ok, "Failed": failed})

    # ------------------------------------------------------------ removal
    def removeFile(self, lfn: Any, force: bool | None = None) -> DReturnType:
        """Remove files from every SE and from the catalogue (a file that is not
        catalogued counts as removed)."""
        del force
        replicas = self.fileCatalog.getReplicas(lfn, True)
        if not replicas["OK"]:
            return replicas
        ok: dict[str, bool] = {}
        failed: dict[str, str] = {}
        for name, reason in replicas["Value"]["Failed"].items():
            if "No such file" in reason:
                ok[name] = True
            else:
                failed[name] = reason
        toForget = []
        for name, sites in replicas["Value"]["Successful"].items():
            reasons = []
            for seName in sites:
                removed = self._se(seName).removeFile(name)
                if not removed["OK"]:
                    reasons.append(f"{seName}: {removed['Message']}")
                elif name in removed["Value"]["Failed"]:
                    reasons.append(f"{seName}: {removed['Value']['Failed'][name]}")
            if reasons:
                failed[name] = "; ".join(reasons)
            else:
                toForget.append(name)
        if toForget:
            forgotten = self.fileCatalog.removeFile(toForget)
            if not forgotten["OK"]:
                failed.update(dict.fromkeys(toForget, forgotten["Message"]))
            else:
                ok.update(forgotten["Value"]["Successful"])
                failed.update(forgotten["Value"]["Failed"])
        return S_OK({"Successful": ok, "Failed": failed})

    def removeReplica(self, storageElementName: str, lfn: Any) -> DReturnType:
        """Remove the replicas at ``storageElementName`` (never a file's last replica)."""
        replicas = self.fileCatalog.getReplicas(lfn, True)
        if not replicas["OK"]:
            return replicas
        failed = dict(replicas["Value"]["Failed"])
        ok: dict[str, bool] = {}
        se = self._se(storageElementName)
        for name, sites in replicas["Value"]["Successful"].items():
            if storageElementName not in sites:
                ok[name] = True
                continue
            if len(sites) == 1:
                failed[name] = "Failed to remove sole replica"
                continue
            removed = se.removeFile(name)
            reason = removed["Message"] if not removed["OK"] else \
                removed["Value"]["Failed"].get(name)
            if reason:
                failed[name] = f"{storageElementName}: {reason}"
                continue
            forgotten = self.fileCatalog.removeReplica({name: {"SE": storageElementName}})
            reason = forgotten["Message"] if not forgotten["OK"] else \
                forgotten["Value"]["Failed"].get(name)
            if reason:
                failed[name] = reason
            else:
                ok[name] = True
        return S_OK({"Successful": ok, "Failed": failed})

    # ------------------------------------------------------------ replicas
    def getReplicas(self, lfns: Any, allStatus: bool = True, getUrl: bool = True,
                    diskOnly: bool = False, preferDisk: bool = False, active: bool = False
                    ) -> DReturnType:
        """``{lfn: {SE: PFN}}`` from the catalogue (only active replicas with ``active``)."""
        del getUrl, diskOnly, preferDisk
        split = splitLFNs(lfns)
        if not split["OK"]:
            return split
        return self.fileCatalog.getReplicas(lfns, bool(allStatus) and not active)

    def getActiveReplicas(self, lfns: Any, getUrl: bool = True, diskOnly: bool = False,
                          preferDisk: bool = False) -> DReturnType:
        """``{lfn: {SE: PFN}}`` of the replicas in use."""
        return self.getReplicas(lfns, allStatus=False, getUrl=getUrl, diskOnly=diskOnly,
                                preferDisk=preferDisk, active=True)
