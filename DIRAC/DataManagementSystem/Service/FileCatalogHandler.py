"""``DataManagement/FileCatalog``: the file catalogue (DIRAC's DFC methods and shapes).

LFN arguments follow DIRAC's bulk convention: a str, a list or a dict ``{lfn: params}``
(``LFN:`` prefixes stripped, paths normalised); the answer is
``S_OK({"Successful": {...}, "Failed": {...}})`` and one bad LFN never fails the others.
An empty or wrongly typed argument is ``S_ERROR(EINVAL)``.  Who may write where:
docs/datamanagement.md (the rules live in FileCatalogDB).
"""

from __future__ import annotations

import errno
from typing import Any, ClassVar

from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType
from diracmq.workers.handler import RequestHandler

from DIRAC.DataManagementSystem.DB.FileCatalogDB import FileCatalogDB, getFileCatalogDB
from DIRAC.DataManagementSystem.Utilities.DMSUtilities import normalizeLFN, splitLFNs

__all__ = ["FileCatalogHandler"]

_AUTH = ["authenticated"]
_LFNS = [str, list, tuple, dict]


def _merge(result: DReturnType, failed: dict[str, str]) -> DReturnType:
    """Add the LFNs refused before reaching the database to a bulk result's Failed."""
    if result["OK"] and failed:
        result["Value"]["Failed"].update(failed)
    return result


class FileCatalogHandler(RequestHandler):
    """The catalogue's methods; one FileCatalogDB per worker process."""

    fcDB: ClassVar[FileCatalogDB | None] = None

    @classmethod
    def initializeHandler(cls, serviceInfoDict: dict[str, Any]) -> DReturnType:
        """Open the catalogue (creating its schema on first start); S_ERROR stops the worker."""
        db = getFileCatalogDB()
        result = db.initialize()
        if not result["OK"]:
            return S_ERROR(f"cannot open the FileCatalogDB at {db!r}: {result['Message']}")
        cls.fcDB = db
        return S_OK()

    @property
    def db(self) -> FileCatalogDB:
        """The catalogue (opened on first use if ``initializeHandler`` did not run)."""
        if type(self).fcDB is None:
            result = type(self).initializeHandler({})
            if not result["OK"]:
                raise RuntimeError(result["Message"])
        return type(self).fcDB  # type: ignore[return-value]

    def _bulk(self, lfns: Any, call: Any, *args: Any, withParams: bool = False,
              withCredentials: bool = False) -> DReturnType:
        split = splitLFNs(lfns)
        if not split["OK"]:
            return split
        good, failed = split["Value"]
        if not good:
            return S_OK({"Successful": {}, "Failed": failed})
        target = good if withParams else list(good)
        extra = (self.getRemoteCredentials(),) if withCredentials else ()
        return _merge(call(target, *args, *extra), failed)

    @staticmethod
    def _path(path: Any) -> DReturnType:
        try:
            return S_OK(normalizeLFN(path))
        except ValueError as exc:
            return S_ERROR(errno.EINVAL, str(exc))

    # ------------------------------------------------------------- files
    types_addFile: ClassVar[list] = [_LFNS]
    auth_addFile: ClassVar[list] = _AUTH

    def export_addFile(self, lfns: Any) -> DReturnType:
        """Register files ``{lfn: {"PFN", "SE", "Size", "Checksum", "GUID"}}``."""
        if not isinstance(lfns, dict):
            return S_ERROR(errno.EINVAL, "addFile needs a dict {lfn: {Size, Checksum, GUID, "
                                         "PFN, SE}}")
        return self._bulk(lfns, self.db.addFile, withParams=True, withCredentials=True)

    types_addReplica: ClassVar[list] = [dict]
    auth_addReplica: ClassVar[list] = _AUTH

    def export_addReplica(self, lfns: dict) -> DReturnType:
        """Register replicas ``{lfn: {"PFN", "SE"}}`` of catalogued files."""
        return self._bulk(lfns, self.db.addReplica, withParams=True, withCredentials=True)

    types_removeReplica: ClassVar[list] = [dict]
    auth_removeReplica: ClassVar[list] = _AUTH

    def export_removeReplica(self, lfns: dict) -> DReturnType:
        """Forget replicas ``{lfn: {"SE"}}`` (a replica not registered counts as removed)."""
        return self._bulk(lfns, self.db.removeReplica, withParams=True, withCredentials=True)

    types_removeFile: ClassVar[list] = [_LFNS]
    auth_removeFile: ClassVar[list] = _AUTH

    def export_removeFile(self, lfns: Any) -> DReturnType:
        """Forget files with their replicas and metadata."""
        return self._bulk(lfns, self.db.removeFile, withCredentials=True)

    types_getReplicas: ClassVar[list] = [_LFNS]
    auth_getReplicas: ClassVar[list] = _AUTH

    def export_getReplicas(self, lfns: Any, allStatus: bool = False) -> DReturnType:
        """``{lfn: {SE: PFN}}``."""
        return self._bulk(lfns, self.db.getReplicas, bool(allStatus))

    types_getReplicasForJobs: ClassVar[list] = [_LFNS]
    auth_getReplicasForJobs: ClassVar[list] = _AUTH

    def export_getReplicasForJobs(self, lfns: Any, allStatus: bool = False) -> DReturnType:
        """``{lfn: {SE: PFN}}`` of the replicas a job may read (DIRAC's InputData
        optimizer asks this): the active ones unless ``allStatus``."""
        return self._bulk(lfns, self.db.getReplicas, bool(allStatus))

    types_getFileMetadata: ClassVar[list] = [_LFNS]
    auth_getFileMetadata: ClassVar[list] = _AUTH

    def export_getFileMetadata(self, lfns: Any) -> DReturnType:
        """``{lfn: {Size, Checksum, ChecksumType, UID, GID, GUID, CreationDate,
        ModificationDate, Mode, Status}}``."""
        return self._bulk(lfns, self.db.getFileMetadata)

    types_getFileSize: ClassVar[list] = [_LFNS]
    auth_getFileSize: ClassVar[list] = _AUTH

    def export_getFileSize(self, lfns: Any) -> DReturnType:
        """``{lfn: size}``."""
        result = self._bulk(lfns, self.db.getFileMetadata)
        if not result["OK"]:
            return result
        ok, failed = {}, result["Value"]["Failed"]
        for lfn, meta in result["Value"]["Successful"].items():
            if "Size" in meta:
                ok[lfn] = meta["Size"]
            else:
                failed[lfn] = "Is a directory"
        return S_OK({"Successful": ok, "Failed": failed})

    def _kind(self, lfns: Any, kind: str) -> DReturnType:
        result = self._bulk(lfns, self.db.exists)
        if result["OK"]:
            value = result["Value"]
            value["Successful"] = {lfn: found == kind
                                   for lfn, found in value["Successful"].items()}
        return result

    types_isFile: ClassVar[list] = [_LFNS]
    auth_isFile: ClassVar[list] = _AUTH

    def export_isFile(self, lfns: Any) -> DReturnType:
        """``{lfn: bool}``."""
        return self._kind(lfns, "File")

    types_isDirectory: ClassVar[list] = [_LFNS]
    auth_isDirectory: ClassVar[list] = _AUTH

    def export_isDirectory(self, lfns: Any) -> DReturnType:
        """``{path: bool}``."""
        return self._kind(lfns, "Directory")

    types_exists: ClassVar[list] = [_LFNS]
    auth_exists: ClassVar[list] = _AUTH

    def export_exists(self, lfns: Any) -> DReturnType:
        """``{lfn: "File" | "Directory" | False}``."""
        return self._bulk(lfns, self.db.exists)

    # -------------------------------------------------------- directories
    types_createDirectory: ClassVar[list] = [_LFNS]
    auth_createDirectory: ClassVar[list] = _AUTH

    def export_createDirectory(self, paths: Any) -> DReturnType:
        """Create directories and their parents."""
        return self._bulk(paths, self.db.createDirectory, withCredentials=True)

    types_removeDirectory: ClassVar[list] = [_LFNS]
    auth_removeDirectory: ClassVar[list] = _AUTH

    def export_removeDirectory(self, paths: Any) -> DReturnType:
        """Remove empty directories."""
        return self._bulk(paths, self.db.removeDirectory, withCredentials=True)

    types_listDirectory: ClassVar[list] = [_LFNS]
    auth_listDirectory: ClassVar[list] = _AUTH

    def export_listDirectory(self, paths: Any, verbose: bool = False) -> DReturnType:
        """``{path: {"Files": {...}, "SubDirs": {...}, "Links": {}}}``."""
        return self._bulk(paths, self.db.listDirectory, bool(verbose))

    types_getDirectorySize: ClassVar[list] = [_LFNS]
    auth_getDirectorySize: ClassVar[list] = _AUTH

    def export_getDirectorySize(self, paths: Any, longOut: bool = False,
                                fromFiles: bool = False) -> DReturnType:
        """``{path: {LogicalSize, LogicalFiles, LogicalDirectories[, PhysicalSize]}}``."""
        del fromFiles  # DIRAC's choice of counting method; always counted from the files here
        return self._bulk(paths, self.db.getDirectorySize, bool(longOut))

    types_changePathMode: ClassVar[list] = [dict]
    auth_changePathMode: ClassVar[list] = _AUTH

    def export_changePathMode(self, modes: dict) -> DReturnType:
        """Set modes ``{path: mode}`` of directories or files (their owner only)."""
        return self._bulk(modes, self.db.changePathMode, withParams=True, withCredentials=True)

    # ----------------------------------------------------------- metadata
    types_addMetadataField: ClassVar[list] = [str, str]
    auth_addMetadataField: ClassVar[list] = _AUTH

    def export_addMetadataField(self, name: str, typeName: str, metaType: str = "-d"
                                ) -> DReturnType:
        """Declare a metadata field (``-d`` directories, ``-f`` files)."""
        return self.db.addMetadataField(name, typeName, metaType, self.getRemoteCredentials())

    types_deleteMetadataField: ClassVar[list] = [str]
    auth_deleteMetadataField: ClassVar[list] = _AUTH

    def export_deleteMetadataField(self, name: str) -> DReturnType:
        """Forget a metadata field and its values."""
        return self.db.deleteMetadataField(name, self.getRemoteCredentials())

    types_getMetadataFields: ClassVar[list] = []
    auth_getMetadataFields: ClassVar[list] = _AUTH

    def export_getMetadataFields(self) -> DReturnType:
        """``{"DirectoryMetaFields": {...}, "FileMetaFields": {...}}``."""
        return self.db.getMetadataFields()

    types_setMetadata: ClassVar[list] = [str, dict]
    auth_setMetadata: ClassVar[list] = _AUTH

    def export_setMetadata(self, path: str, metadata: dict) -> DReturnType:
        """Set metadata values of a directory or a file."""
        checked = self._path(path)
        if not checked["OK"]:
            return checked
        return self.db.setMetadata(checked["Value"], metadata, self.getRemoteCredentials())

    types_removeMetadata: ClassVar[list] = [str, [list, tuple]]
    auth_removeMetadata: ClassVar[list] = _AUTH

    def export_removeMetadata(self, path: str, names: list) -> DReturnType:
        """Remove metadata values of a directory or a file."""
        checked = self._path(path)
        if not checked["OK"]:
            return checked
        if not all(isinstance(n, str) for n in names):
            return S_ERROR(errno.EINVAL, "metadata names must be text")
        return self.db.removeMetadata(checked["Value"], names, self.getRemoteCredentials())

    types_getDirectoryUserMetadata: ClassVar[list] = [str]
    auth_getDirectoryUserMetadata: ClassVar[list] = _AUTH

    def export_getDirectoryUserMetadata(self, path: str) -> DReturnType:
        """A directory's metadata, inherited values included."""
        checked = self._path(path)
        return self.db.getDirectoryUserMetadata(checked["Value"]) if checked["OK"] else checked

    types_getFileUserMetadata: ClassVar[list] = [str]
    auth_getFileUserMetadata: ClassVar[list] = _AUTH

    def export_getFileUserMetadata(self, path: str) -> DReturnType:
        """A file's metadata, its directories' included."""
        checked = self._path(path)
        return self.db.getFileUserMetadata(checked["Value"]) if checked["OK"] else checked

    types_findFilesByMetadata: ClassVar[list] = [dict]
    auth_findFilesByMetadata: ClassVar[list] = _AUTH

    def export_findFilesByMetadata(self, metaDict: dict, path: str = "/") -> DReturnType:
        """The LFNs under ``path`` matching every condition of ``metaDict``."""
        checked = self._path(path)
        if not checked["OK"]:
            return checked
        return self.db.findFilesByMetadata(metaDict, checked["Value"])
