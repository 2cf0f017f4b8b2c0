"""DIRAC's ``gLogger``, built on Python's :mod:`logging`.

``from DIRAC import gLogger`` gives the root of a tree of loggers with DIRAC's levels
(DEBUG 10, VERBOSE 15, INFO 20, WARN 30, NOTICE 35, ERROR 40, ALWAYS 45, FATAL 50)
and DIRAC's methods (``notice(sMsg, sVarMsg="")``, ``getSubLogger``, ``setLevel("verbose")``,
``shown``, ``showHeaders``...).  Each DIRAC logger is the :class:`logging.Logger`
``dirac`` (``dirac.Sub.Sub`` for sub-loggers), so Python's logging machinery applies:

* Where the process has configured Python logging (root handlers exist: ``dirac-worker``,
  an application calling ``logging.basicConfig``, a JSON formatter), gLogger's records go
  to those handlers, in their format, and the root logger's level applies too (a
  worker's ``--log-level WARNING`` hides gLogger's INFO messages).
* Otherwise (a script), gLogger prints as DIRAC does: every level to **stdout**, the bare
  message (``showHeaders(False)``, what ``Script.parseCommandLine`` sets) or with DIRAC's
  header ``2026-01-01T12:00:00,123456Z dirac-x/Sub NOTICE: message``.

The initial level is INFO, or ``DIRAC_LOG_LEVEL`` (a DIRAC level name; ``WARNING`` and
``CRITICAL`` are accepted too).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from typing import Any

__all__ = ["LogLevels", "Logging", "gLogger"]


class LogLevels:
    """DIRAC's level names and numbers (Python's, plus VERBOSE, NOTICE and ALWAYS)."""

    DEBUG = logging.DEBUG
    VERBOSE = 15
    INFO = logging.INFO
    WARN = logging.WARNING
    NOTICE = 35
    ERROR = logging.ERROR
    ALWAYS = 45
    FATAL = logging.CRITICAL

    _BY_NAME: dict[str, int] = {
        "DEBUG": DEBUG, "VERBOSE": VERBOSE, "INFO": INFO, "WARN": WARN,
        "NOTICE": NOTICE, "ERROR": ERROR, "ALWAYS": ALWAYS, "FATAL": FATAL,
    }
    #: Python's spellings of the same levels, accepted on input.
    _ALIASES: dict[str, str] = {"WARNING": "WARN", "CRITICAL": "FATAL"}

    @classmethod
    def getLevelValue(cls, sName: str) -> int | None:
        """The number of level ``sName`` (any case), None if it is not a DIRAC level."""
        if not isinstance(sName, str):
            return None
        name = sName.strip().upper()
        return cls._BY_NAME.get(cls._ALIASES.get(name, name))

    @classmethod
    def getLevel(cls, level: int) -> str | None:
        """The DIRAC name of level number ``level`` (None if it has none)."""
        for name, value in cls._BY_NAME.items():
            if value == level:
                return name
        return None

    @classmethod
    def getLevelNames(cls) -> list[str]:
        """Every DIRAC level name, lowest first."""
        return list(cls._BY_NAME)

    @classmethod
    def getLevels(cls) -> dict[str, int]:
        """``{name: number}`` for every DIRAC level."""
        return dict(cls._BY_NAME)


def _levelName(levelno: int) -> str:
    """DIRAC's name of a record's level; Python's for a level DIRAC has no name for."""
    return LogLevels.getLevel(levelno) or logging.getLevelName(levelno)


# Python's own names for the three levels it lacks, so records of gLogger shown by
# another formatter (the worker's, a JSON one) carry DIRAC's level names.  WARNING and
# CRITICAL keep Python's names: renaming them would change every other log line.
for _name in ("VERBOSE", "NOTICE", "ALWAYS"):
    logging.addLevelName(LogLevels._BY_NAME[_name], _name)


class _DiracFormatter(logging.Formatter):
    """DIRAC's layout: ``[time component/sub [thread] LEVEL: ]message[ varmessage]``."""

    converter = time.gmtime

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        var = getattr(record, "varmessage", "")
        if var:
            text = f"{text} {var}"
        if getattr(record, "headerIsShown", True):
            parts = []
            if getattr(record, "timeStampIsShown", True):
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created))
                parts.append(f"{stamp},{int(record.created % 1 * 1e6):06d}Z")
            if getattr(record, "contextIsShown", True):
                parts.append(f"{getattr(record, 'componentname', '')}"
                             f"{getattr(record, 'customname', '')}")
            if getattr(record, "threadIDIsShown", False):
                parts.append(f"[{record.thread}]")
            parts.append(f"{_levelName(record.levelno)}:")
            text = " ".join(p for p in parts if p) + " " + text
        if record.exc_info:
            text = f"{text}\n{self.formatException(record.exc_info)}"
        return text


class _StdoutHandler(logging.Handler):
    """Prints gLogger's records on the current ``sys.stdout``, as DIRAC's default backend,
    unless the process configured Python logging itself (then its handlers show them)."""

    def emit(self, record: logging.LogRecord) -> None:
        if logging.getLogger().handlers:
            return  # the record propagates to the root's handlers
        try:
            stream = sys.stdout
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:  # logging must never break the caller
            self.handleError(record)


class Logging:
    """One DIRAC logger: ``gLogger`` or one of its sub-loggers (``getSubLogger``)."""

    #: The component name shown in headers (the script's name once parsed).
    _componentName = "Framework"

    def __init__(self, father: Logging | None = None, name: str = "") -> None:
        self._father = father
        self.name = name
        self._children: dict[str, Logging] = {}
        self._lock = threading.RLock()
        if father is None:
            self._customName = ""
            self._logger = logging.getLogger("dirac")
        else:
            self._customName = f"{father._customName}/{name}"
            self._logger = father._logger.getChild(name)
        #: display options; a sub-logger follows its father's until set on itself
        self._options: dict[str, bool] = {}

    # ------------------------------------------------------------ options
    def _option(self, key: str, default: bool) -> bool:
        logger: Logging | None = self
        while logger is not None:
            if key in logger._options:
                return logger._options[key]
            logger = logger._father
        return default

    def showHeaders(self, yesno: bool = True) -> None:
        """Show (or not) the time, component, sub-logger and level before each message."""
        self._options["headerIsShown"] = bool(yesno)

    def showThreadIDs(self, yesno: bool = True) -> None:
        """Show the thread id in the header."""
        self._options["threadIDIsShown"] = bool(yesno)

    def showTimeStamps(self, yesno: bool = True) -> None:
        """Show the UTC time in the header."""
        self._options["timeStampIsShown"] = bool(yesno)

    def showContexts(self, yesno: bool = True) -> None:
        """Show the component and sub-logger names in the header."""
        self._options["contextIsShown"] = bool(yesno)

    def getDisplayOptions(self) -> dict[str, bool]:
        """The display options in effect for this logger."""
        return {"headerIsShown": self._option("headerIsShown", True),
                "threadIDIsShown": self._option("threadIDIsShown", False),
                "timeStampIsShown": self._option("timeStampIsShown", True),
                "contextIsShown": self._option("contextIsShown", True)}

    # -------------------------------------------------------------- levels
    def setLevel(self, levelName: str | int) -> bool:
        """Set the level by DIRAC name (``"verbose"``, any case) or number.

        Returns False, changing nothing, for anything that is not a DIRAC level.
        """
        if isinstance(levelName, int) and not isinstance(levelName, bool):
            if LogLevels.getLevel(levelName) is None:
                return False
            value: int | None = levelName
        else:
            value = LogLevels.getLevelValue(levelName)
        if value is None:
            return False
        self._logger.setLevel(value)
        return True

    def getLevel(self) -> str:
        """The name of the level in effect (a sub-logger inherits its father's)."""
        return _levelName(self._logger.getEffectiveLevel())

    def shown(self, levelName: str) -> bool:
        """Whether a message at ``levelName`` would be printed."""
        value = LogLevels.getLevelValue(levelName)
        return value is not None and self._logger.isEnabledFor(value)

    @staticmethod
    def getAllPossibleLevels() -> list[str]:
        """Every DIRAC level name."""
        return LogLevels.getLevelNames()

    @classmethod
    def getName(cls) -> str:
        """The component name shown in headers."""
        return cls._componentName

    def getSubName(self) -> str:
        """This logger's own name ("" for gLogger)."""
        return self.name

    # ------------------------------------------------------------ messages
    def _log(self, level: int, sMsg: Any, sVarMsg: Any, exc_info: bool = False) -> bool:
        root = logging.getLogger()
        if root.handlers and level < root.getEffectiveLevel():
            return False  # the process's own log level applies (a worker's --log-level)
        extra = {"componentname": self._componentName, "customname": self._customName,
                 "varmessage": str(sVarMsg) if sVarMsg not in ("", None) else "",
                 **self.getDisplayOptions()}
        self._logger.log(level, "%s", sMsg, exc_info=exc_info, extra=extra)
        return self._logger.isEnabledFor(level)

    def always(self, sMsg: Any, sVarMsg: Any = "") -> bool:
        """Log at ALWAYS (45); True if the message is shown."""
        return self._log(LogLevels.ALWAYS, sMsg, sVarMsg)

    def notice(self, sMsg: Any, sVarMsg: Any = "") -> bool:
        """Log at NOTICE (35), the level of a command's normal output."""
        return self._log(LogLevels.NOTICE, sMsg, sVarMsg)

    def info(self, sMsg: Any, sVarMsg: Any = "") -> bool:
        """Log at INFO (20)."""
        return self._log(LogLevels.INFO, sMsg, sVarMsg)

    def verbose(self, sMsg: Any, sVarMsg: Any = "") -> bool:
        """Log at VERBOSE (15): shown with ``-d``."""
        return self._log(LogLevels.VERBOSE, sMsg, sVarMsg)

    def debug(self, sMsg: Any, sVarMsg: Any = "") -> bool:
        """Log at DEBUG (10): shown with ``-ddd``."""
        return self._log(LogLevels.DEBUG, sMsg, sVarMsg)

    def warn(self, sMsg: Any, sVarMsg: Any = "") -> bool:
        """Log at WARN (30)."""
        return self._log(LogLevels.WARN, sMsg, sVarMsg)

    warning = warn

    def error(self, sMsg: Any, sVarMsg: Any = "") -> bool:
        """Log at ERROR (40)."""
        return self._log(LogLevels.ERROR, sMsg, sVarMsg)

    def exception(self, sMsg: Any = "", sVarMsg: Any = "", lException: bool = False,
                  lExcInfo: bool = False) -> bool:
        """Log at ERROR with the exception being handled (its traceback follows)."""
        del lException, lExcInfo  # DIRAC ignores them too: the traceback is always added
        return self._log(LogLevels.ERROR, sMsg, sVarMsg, exc_info=True)

    def fatal(self, sMsg: Any, sVarMsg: Any = "") -> bool:
        """Log at FATAL (50)."""
        return self._log(LogLevels.FATAL, sMsg, sVarMsg)

    def showStack(self) -> bool:
        """An empty DEBUG message (DIRAC's way to mark a place in the log)."""
        return self.debug("")

    # --------------------------------------------------------- sub-loggers
    def getSubLogger(self, subName: str) -> Logging:
        """The child logger ``subName`` (the same object for the same name)."""
        with self._lock:
            child = self._children.get(subName)
            if child is None:
                child = self._children[subName] = Logging(self, subName)
            return child

    def getLocalSubLogger(self, subName: str) -> Logging:
        """As :meth:`getSubLogger` (DIRAC's short-lived variant; the same here)."""
        return self.getSubLogger(subName)

    # ------------------------------------------------- DIRAC compatibility
    def initialize(self, systemName: str, cfgPath: str = "", forceInit: bool = False) -> None:
        """Name the component shown in headers (DIRAC also reads backends from the CS)."""
        del cfgPath, forceInit
        Logging._componentName = systemName

    def registerBackend(self, desiredBackend: str, backendOptions: dict | None = None,
                        backendFilters: dict | None = None) -> bool:
        """DIRAC's backends are not provided: configure Python logging instead."""
        del backendOptions, backendFilters
        self.warn(f"log backend {desiredBackend!r} is not provided here: configure Python's "
                  "logging (handlers on the 'dirac' logger) instead")
        return False

    def enableLogsFromExternalLibs(self) -> None:
        """Show the logs of other libraries too (root logger at DEBUG, to stderr)."""
        if not logging.getLogger().handlers:
            logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)

    def disableLogsFromExternalLibs(self) -> None:
        """Nothing to do: other libraries log nothing unless the process configures it."""


def _makeRoot() -> Logging:
    root = Logging()
    logger = root._logger
    logger.setLevel(LogLevels.getLevelValue(os.environ.get("DIRAC_LOG_LEVEL", ""))
                    or LogLevels.INFO)
    if not any(isinstance(h, _StdoutHandler) for h in logger.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(_DiracFormatter())
        logger.addHandler(handler)
    return root


#: DIRAC's root logger.
gLogger: Logging = _makeRoot()
