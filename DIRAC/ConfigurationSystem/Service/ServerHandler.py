"""``Configuration/Server``: serves the operator's configuration file and its version.

Run it with ``DIRAC_CS_FILE=/etc/dirac/cs.toml dirac-worker Configuration``
(docs/configuration-service.md).  The file is ``stat``-ed on every call and re-read
when it changed, so an edit is served at once; a file that no longer parses keeps
the last good version being served (and says why in the worker log and in
``getConfiguration``'s ``LoadError``).  Several Configuration workers may serve
copies of the same file: the version is a hash of the content, so they agree.

Every method needs an authenticated caller (DIRAC's ``Authorization/Default``) unless
the configuration's own ``[Systems.Configuration.Services.Server.Authorization]``
says otherwise: the configuration names users and DNs, so anonymous callers
cannot read it.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

from diracmq.broker.derrno import ECONF
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType
from diracmq.workers.handler import RequestHandler

from DIRAC.ConfigurationSystem.Client.ConfigurationData import (
    encode_compressed,
    gConfigurationData,
)
from DIRAC.ConfigurationSystem.Client.ConfigurationFile import (
    CS_FILE_ENV,
    ConfigurationError,
    ConfigurationFile,
    cs_file_from_env,
)

__all__ = ["ServerHandler"]

#: Used when ``DIRAC_CS_FILE`` is not set and this file exists.
DEFAULT_CS_FILE = Path("~/.dirac/cs.toml")


class ServerHandler(RequestHandler):
    """The Configuration service: ``getVersion``, ``getConfiguration``, compressed data."""

    csFile: ClassVar[ConfigurationFile | None] = None
    _lock: ClassVar[threading.Lock] = threading.Lock()
    _compressed: ClassVar[tuple[str, bytes]] = ("", b"")

    @classmethod
    def initializeHandler(cls, serviceInfoDict: dict[str, Any]) -> DReturnType:
        """Load the file named by ``DIRAC_CS_FILE`` (else ``~/.dirac/cs.toml``) or refuse to
        start, saying why."""
        path = cs_file_from_env()
        if path is None:
            path = DEFAULT_CS_FILE.expanduser()
            if not path.is_file():
                return S_ERROR(ECONF, f"the Configuration service needs its file: set "
                                      f"{CS_FILE_ENV}=/path/to/cs.toml (an empty file is a "
                                      f"valid, empty configuration)")
        source = ConfigurationFile(path)
        try:
            source.load()
        except (ConfigurationError, OSError, UnicodeDecodeError) as exc:
            return S_ERROR(ECONF, f"cannot serve the configuration: {exc}")
        cls.csFile = source
        cls._compressed = ("", b"")
        # This process's own gConfig (identity and authorization of its callers) reads
        # the same file: never ask the Configuration service, i.e. ourselves.
        result = gConfigurationData.useFile(path)
        if not result["OK"]:
            return result
        return S_OK()

    @classmethod
    def _current(cls) -> ConfigurationFile:
        source = cls.csFile
        if source is None:
            raise RuntimeError("the Configuration service was not initialized")
        with cls._lock:
            source.check()
        return source

    @classmethod
    def _compressed_data(cls, source: ConfigurationFile) -> tuple[str, bytes]:
        with cls._lock:
            version, data = cls._compressed
            if version != source.version:
                cls._compressed = version, data = source.version, encode_compressed(source.tree)
            return version, data

    # ------------------------------------------------------------------ exports
    types_getVersion: ClassVar[list] = []
    auth_getVersion: ClassVar[list] = ["authenticated"]

    def export_getVersion(self) -> DReturnType:
        """The version of the configuration being served (a content hash)."""
        return S_OK(self._current().version)

    types_getConfiguration: ClassVar[list] = []
    auth_getConfiguration: ClassVar[list] = ["authenticated"]

    def export_getConfiguration(self) -> DReturnType:
        """The whole configuration: ``{"Version", "Data" (the tree), "Updated", "LoadError"}``."""
        source = self._current()
        return S_OK({"Version": source.version, "Data": source.tree,
                     "Updated": source.loaded_at, "LoadError": source.error})

    types_getCompressedData: ClassVar[list] = []
    auth_getCompressedData: ClassVar[list] = ["authenticated"]

    def export_getCompressedData(self) -> DReturnType:
        """The tree as zlib-compressed msgpack (``ConfigurationData.decode_compressed``)."""
        return S_OK(self._compressed_data(self._current())[1])

    types_getCompressedDataIfNewer: ClassVar[list] = [str]
    auth_getCompressedDataIfNewer: ClassVar[list] = ["authenticated"]

    def export_getCompressedDataIfNewer(self, sClientVersion: str) -> DReturnType:
        """``{"newestVersion": v}``, plus ``"data"`` (compressed tree) when ``v`` differs
        from the caller's version."""
        version, data = self._compressed_data(self._current())
        answer: dict[str, Any] = {"newestVersion": version}
        if sClientVersion != version:
            answer["data"] = data
        return S_OK(answer)
