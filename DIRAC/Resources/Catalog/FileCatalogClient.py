"""``FileCatalogClient``: DIRAC's client of the file catalogue (``DataManagement/FileCatalog``).

Every method of the service is reachable as ``FileCatalogClient().<method>(...)``; the
common ones are spelled out with DIRAC's signatures.  LFN arguments: a str, a list or a
dict ``{lfn: params}``; answers: ``S_OK({"Successful": {...}, "Failed": {...}})``.
"""

from __future__ import annotations

from typing import Any

from diracmq.broker.returnvalues import DReturnType
from diracmq.client.base import Client

from DIRAC.DataManagementSystem.Utilities.DMSUtilities import CATALOG_SERVICE

__all__ = ["FileCatalogClient"]


class FileCatalogClient(Client):
    """The DIRAC File Catalog's methods, over the broker."""

    def __init__(self, url: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.setServer(url or CATALOG_SERVICE)

    def isOK(self) -> bool:
        """Always True (DIRAC asks catalogues this before using them)."""
        return True

    def addFile(self, lfns: dict, timeout: float | None = None) -> DReturnType:
        """Register ``{lfn: {"PFN", "SE", "Size", "Checksum", "GUID"}}``."""
        return self.executeRPC("addFile", lfns, timeout=timeout)

    def addReplica(self, lfns: dict, timeout: float | None = None) -> DReturnType:
        """Register replicas ``{lfn: {"PFN", "SE"}}``."""
        return self.executeRPC("addReplica", lfns, timeout=timeout)

    def removeFile(self, lfns: Any, timeout: float | None = None) -> DReturnType:
        """Forget files (with their replicas)."""
        return self.executeRPC("removeFile", lfns, timeout=timeout)

    def removeReplica(self, lfns: dict, timeout: float | None = None) -> DReturnType:
        """Forget replicas ``{lfn: {"SE"}}``."""
        return self.executeRPC("removeReplica", lfns, timeout=timeout)

    def getReplicas(self, lfns: Any, allStatus: bool = False,
                    timeout: float | None = None) -> DReturnType:
        """``{lfn: {SE: PFN}}``."""
        return self.executeRPC("getReplicas", lfns, allStatus, timeout=timeout)

    def getReplicasForJobs(self, lfns: Any, allStatus: bool = False,
                           timeout: float | None = None) -> DReturnType:
        """``{lfn: {SE: PFN}}`` of the replicas jobs may read (active ones)."""
        return self.executeRPC("getReplicasForJobs", lfns, allStatus, timeout=timeout)

    def listDirectory(self, lfns: Any, verbose: bool = False,
                      timeout: float | None = None) -> DReturnType:
        """``{path: {"Files": {...}, "SubDirs": {...}, "Links": {}}}``."""
        return self.executeRPC("listDirectory", lfns, verbose, timeout=timeout)

    def createDirectory(self, lfns: Any, timeout: float | None = None) -> DReturnType:
        """Create directories (with their parents)."""
        return self.executeRPC("createDirectory", lfns, timeout=timeout)

    def removeDirectory(self, lfns: Any, recursive: bool = False,
                        timeout: float | None = None) -> DReturnType:
        """Remove empty directories (``recursive`` is DIRAC's flag; not supported here)."""
        del recursive
        return self.executeRPC("removeDirectory", lfns, timeout=timeout)

    def isFile(self, lfns: Any, timeout: float | None = None) -> DReturnType:
        """``{lfn: bool}``."""
        return self.executeRPC("isFile", lfns, timeout=timeout)

    def isDirectory(self, lfns: Any, timeout: float | None = None) -> DReturnType:
        """``{path: bool}``."""
        return self.executeRPC("isDirectory", lfns, timeout=timeout)

    def exists(self, lfns: Any, timeout: float | None = None) -> DReturnType:
        """``{lfn: "File" | "Directory" | False}``."""
        return self.executeRPC("exists", lfns, timeout=timeout)

    def getFileMetadata(self, lfns: Any, timeout: float | None = None) -> DReturnType:
        """``{lfn: {Size, Checksum, ChecksumType, UID, GID, GUID, ...}}``."""
        return self.executeRPC("getFileMetadata", lfns, timeout=timeout)

    def getFileSize(self, lfns: Any, timeout: float | None = None) -> DReturnType:
        """``{lfn: size}``."""
        return self.executeRPC("getFileSize", lfns, timeout=timeout)

    def getDirectorySize(self, lfns: Any, longOutput: bool = False, rawFiles: bool = False,
                         timeout: float | None = None) -> DReturnType:
        """``{path: {LogicalSize, LogicalFiles, LogicalDirectories[, PhysicalSize]}}``."""
        return self.executeRPC("getDirectorySize", lfns, longOutput, rawFiles,
                               timeout=timeout)

    def changePathMode(self, lfns: dict, recursive: bool = False,
                       timeout: float | None = None) -> DReturnType:
        """Set modes ``{path: mode}`` (``recursive`` is DIRAC's flag; not supported here)."""
        del recursive
        return self.executeRPC("changePathMode", lfns, timeout=timeout)

    def addMetadataField(self, fieldName: str, fieldType: str, metaType: str = "-d",
                         timeout: float | None = None) -> DReturnType:
        """Declare a metadata field: ``metaType`` ``-d`` (directories) or ``-f`` (files)."""
        return self.executeRPC("addMetadataField", fieldName, fieldType, metaType,
                               timeout=timeout)

    def deleteMetadataField(self, fieldName: str, timeout: float | None = None
                            ) -> DReturnType:
        """Forget a metadata field."""
        return self.executeRPC("deleteMetadataField", fieldName, timeout=timeout)

    def getMetadataFields(self, timeout: float | None = None) -> DReturnType:
        """``{"DirectoryMetaFields": {...}, "FileMetaFields": {...}}``."""
        return self.executeRPC("getMetadataFields", timeout=timeout)

    def setMetadata(self, path: str, metadict: dict, timeout: float | None = None
                    ) -> DReturnType:
        """Set metadata of a directory or a file."""
        return self.executeRPC("setMetadata", path, metadict, timeout=timeout)

    def removeMetadata(self, path: str, metadata: list, timeout: float | None = None
                       ) -> DReturnType:
        """Remove metadata values of a directory or a file."""
        return self.executeRPC("removeMetadata", path, list(metadata), timeout=timeout)

    def getDirectoryUserMetadata(self, path: str, timeout: float | None = None
                                 ) -> DReturnType:
        """A directory's metadata, inherited values included."""
        return self.executeRPC("getDirectoryUserMetadata", path, timeout=timeout)

    def getFileUserMetadata(self, path: str, timeout: float | None = None) -> DReturnType:
        """A file's metadata, with its directories'."""
        return self.executeRPC("getFileUserMetadata", path, timeout=timeout)

    def findFilesByMetadata(self, metaDict: dict, path: str = "/",
                            timeout: float | None = None) -> DReturnType:
        """The LFNs under ``path`` matching ``metaDict`` (``{field: value}`` or
        ``{field: {op: value}}``, op in ``= != < > <= >= in nin``)."""
        return self.executeRPC("findFilesByMetadata", metaDict, path, timeout=timeout)
