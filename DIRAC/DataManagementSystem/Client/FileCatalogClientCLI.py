"""The interactive shell of ``dirac-dms-filecatalog-cli`` (DIRAC's ``FileCatalogClientCLI``).

A ``cmd.Cmd`` shell over the catalogue and the storage elements, with a current
directory: relative paths are taken from it.  Commands: ``ls [-l] [path]``,
``cd [path]``, ``pwd``, ``mkdir path``, ``add lfn localfile SE [GUID]``,
``get lfn [localdir]``, ``rm lfn...``, ``rmdir path``, ``replicas lfn``,
``replicate lfn SE [sourceSE]``, ``meta index [-d|-f] name type``,
``meta set path name value``, ``meta get path``, ``meta show``, ``meta remove path
name``, ``find [path] cond...``, ``size [path]``, ``chmod mode path``, ``help``, ``exit``.
Errors are printed as ``ERROR: ...`` and the shell carries on.
"""

from __future__ import annotations

import cmd
import posixpath
import shlex
from collections.abc import Callable
from typing import Any

from DIRAC.DataManagementSystem.Client.DataManager import DataManager
from DIRAC.DataManagementSystem.Utilities.DMSUtilities import (
    normalizeLFN,
    parseMetaConditions,
)
from DIRAC.Resources.Catalog.FileCatalog import FileCatalog

__all__ = ["FileCatalogClientCLI"]


class _Abort(Exception):
    """Ends one command with an error line."""


def _mode(mode: int) -> str:
    bits = "rwxrwxrwx"
    return "".join(b if mode & (1 << (8 - i)) else "-" for i, b in enumerate(bits))


class FileCatalogClientCLI(cmd.Cmd):
    """The file catalogue shell."""

    intro = "Starting FileCatalog client (type help for the commands, exit to leave)"

    def __init__(self, catalog: FileCatalog | None = None,
                 manager: DataManager | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.fc = catalog or FileCatalog()
        self.dm = manager or DataManager()
        self.cwd = "/"
        self.prompt = "FC:/> "

    # ------------------------------------------------------------ plumbing
    def emptyline(self) -> bool:
        """An empty line does nothing (not: repeat the last command)."""
        return False

    def default(self, line: str) -> bool:
        """An unknown command."""
        print(f"ERROR: unknown command {line.split()[0]!r} (type help)")
        return False

    def onecmd(self, line: str) -> bool:
        """Run one line; an error ends that command only."""
        try:
            return super().onecmd(line)
        except _Abort as exc:
            print(f"ERROR: {exc}")
        except (ValueError, OSError) as exc:
            print(f"ERROR: {exc}")
        return False

    def _path(self, text: str | None) -> str:
        text = text or self.cwd
        if not text.startswith(("/", "LFN:")):
            text = posixpath.join(self.cwd, text)
        try:
            return normalizeLFN(text)
        except ValueError as exc:
            raise _Abort(str(exc)) from None

    @staticmethod
    def _split(line: str) -> list[str]:
        try:
            return shlex.split(line)
        except ValueError as exc:
            raise _Abort(f"cannot read the line: {exc}") from None

    @staticmethod
    def _value(result: dict[str, Any]) -> Any:
        if not result.get("OK"):
            raise _Abort(result.get("Message", "unknown error"))
        return result["Value"]

    def _one(self, result: dict[str, Any], path: str) -> Any:
        value = self._value(result)
        if path in value["Failed"]:
            raise _Abort(f"{path}: {value['Failed'][path]}")
        return value["Successful"][path]

    def _each(self, result: dict[str, Any], done: Callable[[str, Any], str]) -> None:
        value = self._value(result)
        for lfn, item in value["Successful"].items():
            print(done(lfn, item))
        for lfn, reason in value["Failed"].items():
            print(f"ERROR: {lfn}: {reason}")

    # ------------------------------------------------------------ navigation
    def do_pwd(self, _line: str) -> None:
        """pwd: print the current directory."""
        print(self.cwd)

    def do_cd(self, line: str) -> None:
        """cd [path]: change the current directory (default /)."""
        path = self._path(line.strip() or "/")
        if not self._one(self.fc.isDirectory(path), path):
            raise _Abort(f"{path}: not a directory")
        self.cwd = path
        self.prompt = f"FC:{path}> "

    def do_ls(self, line: str) -> None:
        """ls [-l] [path]: list a directory (or show one file)."""
        words = self._split(line)
        long = "-l" in words
        rest = [w for w in words if not w.startswith("-")]
        path = self._path(rest[0] if rest else None)
        kind = self._one(self.fc.exists(path), path)
        if kind == "File":
            meta = self._one(self.fc.getFileMetadata(path), path)
            print(self._entry(posixpath.basename(path), meta, long, False))
            return
        if not kind:
            raise _Abort(f"{path}: No such file or directory")
        listing = self._one(self.fc.listDirectory(path, long), path)
        entries = [(posixpath.basename(p), m, True) for p, m in listing["SubDirs"].items()]
        entries += [(posixpath.basename(p), e["MetaData"], False)
                    for p, e in listing["Files"].items()]
        for name, meta, isdir in sorted(entries):
            print(self._entry(name, meta, long, isdir))

    @staticmethod
    def _entry(name: str, meta: dict[str, Any], long: bool, isdir: bool) -> str:
        if not long:
            return name + ("/" if isdir else "")
        date = meta.get("ModificationDate")
        when = date.strftime("%Y-%m-%d %H:%M:%S") if hasattr(date, "strftime") else ""
        return (f"{'d' if isdir else '-'}{_mode(int(meta.get('Mode', 0)))} "
                f"{meta.get('Owner') or '-':<12} {meta.get('OwnerGroup') or '-':<12} "
                f"{meta.get('Size', 0):>12} {when} {name}")

    def do_mkdir(self, line: str) -> None:
        """mkdir path...: create directories (with their parents)."""
        paths = [self._path(p) for p in self._split(line)]
        if not paths:
            raise _Abort("usage: mkdir path...")
        self._each(self.fc.createDirectory(paths), lambda p, _v: f"Created {p}")

    def do_rmdir(self, line: str) -> None:
        """rmdir path...: remove empty directories."""
        paths = [self._path(p) for p in self._split(line)]
        if not paths:
            raise _Abort("usage: rmdir path...")
        self._each(self.fc.removeDirectory(paths), lambda p, _v: f"Removed {p}")

    def do_chmod(self, line: str) -> None:
        """chmod mode path: set the mode (octal, e.g. 775) of a directory or file."""
        words = self._split(line)
        if len(words) != 2:
            raise _Abort("usage: chmod mode path")
        try:
            mode = int(words[0], 8)
        except ValueError:
            raise _Abort(f"invalid mode {words[0]!r}: expected octal digits") from None
        path = self._path(words[1])
        self._one(self.fc.changePathMode({path: mode}), path)
        print(f"Mode of {path} set to {mode:o}")

    # ------------------------------------------------------------ data
    def do_add(self, line: str) -> None:
        """add lfn localfile SE [GUID]: upload a file and register it."""
        words = self._split(line)
        if len(words) not in (3, 4):
            raise _Abort("usage: add lfn localfile SE [GUID]")
        lfn = self._path(words[0])
        result = self.dm.putAndRegister(lfn, words[1], words[2],
                                        guid=words[3] if len(words) == 4 else None)
        self._one(result, lfn)
        print(f"File {lfn} successfully uploaded to the {words[2]} SE")

    def do_get(self, line: str) -> None:
        """get lfn [localdir]: download a file."""
        words = self._split(line)
        if len(words) not in (1, 2):
            raise _Abort("usage: get lfn [localdir]")
        lfn = self._path(words[0])
        path = self._one(self.dm.getFile(lfn, words[1] if len(words) == 2 else ""), lfn)
        print(f"File {lfn} downloaded to {path}")

    def do_rm(self, line: str) -> None:
        """rm lfn...: remove files (all replicas and the catalogue entry)."""
        lfns = [self._path(p) for p in self._split(line)]
        if not lfns:
            raise _Abort("usage: rm lfn...")
        self._each(self.dm.removeFile(lfns), lambda p, _v: f"Removed {p}")

    def do_replicas(self, line: str) -> None:
        """replicas lfn: the replicas of a file."""
        words = self._split(line)
        if len(words) != 1:
            raise _Abort("usage: replicas lfn")
        lfn = self._path(words[0])
        replicas = self._one(self.fc.getReplicas(lfn, True), lfn)
        print(f"lfn: {lfn}")
        for se, pfn in sorted(replicas.items()):
            print(f"{se:<16} {pfn}")

    def do_replicate(self, line: str) -> None:
        """replicate lfn SE [sourceSE]: copy a file to another SE."""
        words = self._split(line)
        if len(words) not in (2, 3):
            raise _Abort("usage: replicate lfn SE [sourceSE]")
        lfn = self._path(words[0])
        self._one(self.dm.replicateAndRegister(lfn, words[1],
                                               words[2] if len(words) == 3 else ""), lfn)
        print(f"File {lfn} successfully replicated to the {words[1]} SE")

    def do_size(self, line: str) -> None:
        """size [path]: files, directories and bytes below a directory."""
        path = self._path(line.strip() or None)
        size = self._one(self.fc.getDirectorySize(path, True), path)
        print(f"directory: {path}")
        print(f"Logical Size: {size['LogicalSize']:,} Files: {size['LogicalFiles']} "
              f"Directories: {size['LogicalDirectories']}")
        for se, usage in sorted(size.get("PhysicalSize", {}).items()):
            if isinstance(usage, dict):
                print(f"  {se:<16} {usage['Size']:>14,} bytes {usage['Files']:>8} files")

    # ------------------------------------------------------------ metadata
    def do_meta(self, line: str) -> None:
        """meta index [-d|-f] name type | meta set path name value | meta get path |
        meta remove path name | meta show"""
        words = self._split(line)
        if not words:
            raise _Abort("usage: meta index|set|get|remove|show ...")
        action, rest = words[0], words[1:]
        if action == "index":
            kind = "-d"
            if rest and rest[0] in ("-d", "-f"):
                kind, rest = rest[0], rest[1:]
            if len(rest) != 2:
                raise _Abort("usage: meta index [-d|-f] name type")
            print(self._value(self.fc.addMetadataField(rest[0], rest[1], kind)))
        elif action == "set":
            if len(rest) != 3:
                raise _Abort("usage: meta set path name value")
            value: Any = rest[2]
            for convert in (int, float):
                try:
                    value = convert(rest[2])
                    break
                except ValueError:
                    continue
            self._value(self.fc.setMetadata(self._path(rest[0]), {rest[1]: value}))
            print(f"{rest[1]} = {rest[2]} set on {self._path(rest[0])}")
        elif action == "get":
            path = self._path(rest[0] if rest else None)
            kind = self._one(self.fc.exists(path), path)
            values = self._value(self.fc.getFileUserMetadata(path) if kind == "File"
                                 else self.fc.getDirectoryUserMetadata(path))
            for name, value in sorted(values.items()):
                print(f"{name} : {value}")
        elif action == "remove":
            if len(rest) != 2:
                raise _Abort("usage: meta remove path name")
            self._value(self.fc.removeMetadata(self._path(rest[0]), [rest[1]]))
            print(f"{rest[1]} removed from {self._path(rest[0])}")
        elif action == "show":
            fields = self._value(self.fc.getMetadataFields())
            print("FileCatalog user metadata fields:")
            for label, key in (("directory", "DirectoryMetaFields"), ("file", "FileMetaFields")):
                for name, typ in sorted(fields[key].items()):
                    print(f"  {name:<20} {typ:<8} ({label})")
        else:
            raise _Abort(f"unknown meta action {action!r}: index, set, get, remove or show")

    def do_find(self, line: str) -> None:
        """find [path] cond...: files below path matching conditions (Energy>100 ...)."""
        words = self._split(line)
        path = self.cwd
        if words and "=" not in words[0] and "<" not in words[0] and ">" not in words[0]:
            path, words = self._path(words[0]), words[1:]
        query = parseMetaConditions(words)
        lfns = self._value(self.fc.findFilesByMetadata(query, path))
        for lfn in lfns:
            print(lfn)
        print(f"{len(lfns)} files found")

    # ------------------------------------------------------------ leaving
    def do_exit(self, _line: str) -> bool:
        """exit: leave the shell."""
        return True

    do_quit = do_exit

    def do_EOF(self, _line: str) -> bool:
        """Ctrl-D: leave the shell."""
        print()
        return True
