"""DIRAC's ``Script``: the command line of a ``dirac-`` command or of a DIRAC script.

As in DIRAC::

    from DIRAC.Core.Base.Script import Script

    @Script()
    def main():
        Script.registerSwitch("p:", "numPings=", "how many pings", setPings)
        Script.registerArgument(["System: a System name"])
        switches, args = Script.parseCommandLine(ignoreErrors=True)

or, in older scripts, the module itself: ``from DIRAC.Core.Base import Script;
Script.parseCommandLine()``.  Parsing is GNU getopt's (switches anywhere); every command
has DIRAC's standard switches (``-o/--option``, ``-s/--section``, ``-c/--cert``,
``-d`` (``-dd``, ``-ddd``), ``--cfg``, ``-h/--help``) and DIRAC's help layout.  Usage
errors print DIRAC's message and help on stdout and exit 2 (a bad switch) or 1 (a
missing or disallowed argument), unless :attr:`Script.usageErrorExitCode` says otherwise
(this project's commands use 2 for every usage error).

Differences from DIRAC (docs/compatibility.md): ``--cfg`` files are TOML, as the rest of
this project's configuration; ``-c/--cert`` only records its option (the broker login is
the identity); ``parseCommandLine`` does not contact anything (the configuration loads at
its first use, so a script never dies in ``parseCommandLine`` because the broker is away);
a mandatory ``/DIRAC/Setup`` is not demanded.
"""

from __future__ import annotations

import functools
import getopt
import inspect
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import Any

from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

from DIRAC.FrameworkSystem.Client.Logger import gLogger

__all__ = ["Script", "initialize", "parseCommandLine"]

_BLOCK_END = r"(?:\n(?:Usage|Example|Arguments|Options|General options):+\n|$)"


def _option_path(section: str, option: str) -> list[str]:
    """The keys of a configuration path: absolute, or relative to ``section``."""
    path = option if option.startswith("/") else f"{section.rstrip('/')}/{option}"
    return [p for p in path.split("/") if p]


class _CommandLine:
    """What the command line of this process declares and what it was given."""

    def __init__(self) -> None:
        self.switches: list[tuple[str, str, str, Callable[[str], Any] | None]] = []
        self.arguments: list[tuple[str, list[tuple[str, str]], bool, Any, Any]] = []
        self.description = self.usageDoc = self.argumentsDoc = self.exampleDoc = ""
        self.parsed = False
        self.applied = False  # the switches' callbacks have run
        self.errors: list[str] = []
        self.options: list[tuple[str, str]] = []
        self.positional: list[str] = []
        self.grouped: list[Any] = []
        self.unprocessed: list[tuple[str, str]] = []
        self.section = ""
        self.overlay: dict[str, Any] = {}
        self.defaults: list[tuple[str, str]] = []
        self.cfgFiles: list[str] = []
        self.debug = 0
        self.csEnabled = True


class Script:
    """DIRAC's command-line interface for scripts; all methods are class methods.

    ``@Script()`` on a ``main()`` takes the help text from the module docstring and names
    the command after the file (``dirac_wms_job_status.py`` -> ``dirac-wms-job-status``;
    a console script is named after the command it was started as).
    """

    scriptName: str | None = None
    alreadyInitialized = False
    #: Exit status of a usage error; None: DIRAC's (2 for a bad switch, 1 for arguments).
    usageErrorExitCode: int | None = None
    _cl = _CommandLine()

    # ------------------------------------------------------------ decorator
    def __call__(self, func: Callable[[], Any] | None = None) -> Any:
        """Decorate ``main`` (``@Script()``), or run it (the console script's entry)."""
        if func is not None:
            self._func = func
            # the module of the function itself, under any functools.wraps decorators
            module_globals = getattr(inspect.unwrap(func), "__globals__", {})
            Script.setUsageMessage(module_globals.get("__doc__") or "")
            filename = module_globals.get("__file__") or ""
            if filename:
                Script.scriptName = _scriptNameOf(filename)
            return functools.wraps(func)(self)
        invoked = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else ""
        if invoked.startswith("dirac-"):
            Script.scriptName = invoked
        return self._func()

    # -------------------------------------------------------- registration
    @classmethod
    def registerSwitch(cls, showKey: str, longKey: str, helpString: str,
                       callback: Callable[[str], Any] | bool | None = False) -> None:
        """Declare a switch: ``"p:"``/``"numPings="`` take a value (``""`` short: none).

        ``callback(value)`` (``''`` for a flag) returns S_OK or S_ERROR; without one the
        switch is in :meth:`getUnprocessedSwitches`.  A key already used raises.
        """
        short, long_ = (showKey or "").strip(), (longKey or "").strip()
        if not short and not long_:
            raise Exception("No short or long options defined")
        for known_short, known_long, _, _ in cls._cl.switches:
            if short and known_short == short:
                raise Exception(f"Short switch {short} is already defined!")
            if long_ and known_long == long_:
                raise Exception(f"Long switch {long_} is already defined!")
        cls._cl.switches.append((short, long_, helpString, callback or None))

    @classmethod
    def registerSwitches(cls, switches: Sequence[Sequence[Any]]) -> None:
        """:meth:`registerSwitch` for each ``(showKey, longKey, helpString[, callback])``."""
        for switch in switches:
            cls.registerSwitch(*switch)

    @classmethod
    def registerArgument(cls, description: str | tuple[str, ...] | list[str],
                         mandatory: bool = True, values: Sequence[str] | None = None,
                         default: Any = None) -> None:
        """Declare the next positional argument.

        ``"Name: text"`` one argument; a tuple of such strings one argument with
        alternative names (``<A|B>`` in the usage line); a one-element list an argument
        taking one or more values (default ``[]``).  ``values`` restricts what is
        accepted.  A mandatory argument after an optional one, or a second list
        argument, raises.
        """
        if not description:
            raise Exception("No argument description defined")
        if isinstance(description, str):
            marking = description.split(":")[0].strip()
            texts = [description]
        elif isinstance(description, tuple):
            marking = "<" + "|".join(d.split(":")[0].strip() for d in description) + ">"
            texts = list(description)
        elif isinstance(description, list):
            name = description[0].split(":")[0].strip()
            marking = f"{name} [{name}]"
            texts = list(description)
            if default is None:
                default = []
        else:
            raise Exception("Unknown argument description type.")
        arguments = cls._cl.arguments
        if mandatory and arguments and not arguments[-1][2]:
            raise Exception("The mandatory argument cannot go after the optional one.")
        named = [tuple(part.strip() for part in (t.split(":", 1) + [""])[:2]) for t in texts]
        arguments.append((marking, named, mandatory, values, default))
        lists = [i for i, a in enumerate(arguments) if _isList(a[0])]
        if len(lists) > 1:
            arguments.pop()
            raise Exception("Can't calculate list of arguments when there are two such "
                            "arguments of type.")
        if lists and not all(a[2] for a in arguments[lists[0]:]) and lists[0] != len(
                arguments) - 1:
            arguments.pop()
            raise Exception("Can't calculate list of arguments when not all arguments "
                            "defined as mandatory.")

    @classmethod
    def setUsageMessage(cls, usageMessage: str) -> None:
        """Take the help text: a description, then ``Usage:``, ``Arguments:``,
        ``Example:`` blocks (each optional)."""
        cl = cls._cl
        if not usageMessage:
            return
        body = rf"(.*?){_BLOCK_END}"
        found = re.search(body, usageMessage, re.DOTALL)
        if found:
            cl.description = "\n" + found.group(1).strip("\n") + "\n"
        for title, attr in (("Usage", "usageDoc"), ("Arguments", "argumentsDoc"),
                            ("Example", "exampleDoc")):
            found = re.search(rf"{title}:+{body}", usageMessage, re.DOTALL)
            if found:
                setattr(cl, attr, f"\n{title}:\n" + found.group(1).strip("\n"))

    @classmethod
    def addDefaultOptionValue(cls, option: str, value: Any) -> None:
        """A configuration option's value unless the configuration or ``-o`` sets it."""
        cls._cl.defaults.append((option, str(value)))

    @classmethod
    def disableCS(cls) -> None:
        """Do not load the configuration when parsing (it still loads on first use)."""
        cls._cl.csEnabled = False

    @classmethod
    def enableCS(cls) -> DReturnType:
        """Allow the configuration to be loaded again; S_OK."""
        cls._cl.csEnabled = True
        return S_OK()

    # -------------------------------------------------------------- parsing
    @classmethod
    def parseCommandLine(cls, script: str | bool = False, ignoreErrors: bool = False,
                         initializeMonitor: bool = False
                         ) -> tuple[list[tuple[str, str]], list[str]]:
        """Parse ``sys.argv`` (once), run the switches' callbacks, set DIRAC up.

        Returns ``(unprocessedSwitches, positionalArgs)``.  A callback's S_ERROR ends the
        script (exit 1, after "There were errors when loading configuration") unless
        ``ignoreErrors``.
        """
        if not cls.alreadyInitialized:
            gLogger.showHeaders(False)
            cls.initialize(script, ignoreErrors, initializeMonitor, True)
        return cls.getUnprocessedSwitches(), cls.getPositionalArgs()

    @classmethod
    def initialize(cls, script: str | bool = False, ignoreErrors: bool = False,
                   initializeMonitor: bool = False, enableCommandLine: bool = False) -> bool:
        """Set DIRAC up for this script (once; False when already done)."""
        del initializeMonitor  # no monitoring client to start here
        if cls.alreadyInitialized:
            return False
        cls.alreadyInitialized = True
        if script:
            cls.scriptName = str(script)
        cl = cls._cl
        if not enableCommandLine:
            cl.parsed = True
        name = cls.scriptName or _invokedName()
        cls.scriptName = name  # DIRAC leaves None here: its section would be /Scripts/None
        cl.section = name if name.startswith("/") else f"/Scripts/{name}"
        errors = cls._applyCommandLine() if enableCommandLine else []
        gLogger.initialize(name.lstrip("/"))
        cls._applyDebug()
        for option, value in cl.defaults:
            _setDefault(cl, _option_path(cl.section, option), value)
        if not errors:
            import DIRAC

            try:
                DIRAC._initialize_local(extra_config_files=cl.cfgFiles,
                                        extra_config=cl.overlay)
            except DIRAC.DIRACInitError as exc:
                errors.append(str(exc))
        if errors and not ignoreErrors:
            gLogger.error("There were errors when loading configuration",
                          "\n" + "\n".join(errors))
            sys.exit(1)
        return True

    @classmethod
    def _applyCommandLine(cls) -> list[str]:
        """Parse, then run the callbacks in command-line order; the errors they gave."""
        cl = cls._cl
        cls._parse()
        if cl.applied:  # once: a callback must not run twice
            return list(cl.errors)
        cl.applied = True
        errors = cl.errors
        cl.unprocessed = []
        for option, value in cl.options:
            name = option.lstrip("-")
            for short, long_, _, callback in cl.switches:
                if name not in (short.replace(":", ""), long_.replace("=", "")):
                    continue
                if callback is None:
                    cl.unprocessed.append((name, value))
                    continue
                result = callback(value)
                if not isinstance(result, dict):
                    errors.append(f"Callback for switch '{name}' does not return S_OK or "
                                  f"S_ERROR")
                elif not result.get("OK"):
                    errors.append(str(result.get("Message")))
        return list(errors)

    @classmethod
    def _parse(cls) -> None:
        cl = cls._cl
        if cl.parsed:
            return
        shorts = "".join(dict.fromkeys(s for s, _, _, _ in cl.switches if s))
        longs = list(dict.fromkeys(lg for _, lg, _, _ in cl.switches if lg))
        try:
            options, args = getopt.gnu_getopt(sys.argv[1:], shorts, longs)
        except getopt.GetoptError as exc:
            gLogger.fatal(f"Error when parsing command line arguments: {exc}")
            cls.showHelp(exitCode=cls._usageExit(2))
        for option, value in options:
            if option in ("-h", "--help"):
                cls.showHelp()
            if option == "--cfg":
                cl.cfgFiles.append(os.path.expanduser(value))
        cl.options, cl.positional = options, args
        if len(args) < sum(1 for a in cl.arguments if a[2]):
            gLogger.fatal("Error when parsing command line arguments: not all mandatory "
                          "arguments are defined.")
            cls.showHelp(exitCode=cls._usageExit(1))
        grouped: list[Any] = []
        extra = 0  # how many more values than arguments the list argument took
        for index, (marking, _, _, values, default) in enumerate(cl.arguments):
            start = index + extra
            if start >= len(args):
                grouped.append(default)
                continue
            if _isList(marking):
                extra = max(len(args) - len(cl.arguments), 0)
                given = args[start:start + 1 + extra]
                grouped.append(given)
            else:
                given = [args[start]]
                grouped.append(args[start])
            for value in given:
                if values and value not in values:
                    gLogger.fatal("Error when parsing command line arguments: "
                                  f'"{value}" does not match the allowed values for {marking}')
                    cls.showHelp(exitCode=cls._usageExit(1))
        cl.grouped = grouped
        cl.parsed = True

    @classmethod
    def _usageExit(cls, dirac_code: int) -> int:
        return dirac_code if cls.usageErrorExitCode is None else cls.usageErrorExitCode

    @classmethod
    def _applyDebug(cls) -> None:
        level = cls._cl.debug
        if level == 1:
            gLogger.setLevel("VERBOSE")
        elif level == 2:
            gLogger.setLevel("VERBOSE")
            gLogger.showHeaders(True)
        elif level >= 3:
            gLogger.setLevel("DEBUG")
            gLogger.showHeaders(True)
            gLogger.showThreadIDs(True)

    # ------------------------------------------------------------ results
    @classmethod
    def getPositionalArgs(cls, group: bool = False) -> list[Any] | Any:
        """The positional arguments; ``group=True``: one entry per registered argument
        (defaults filled in; the value itself when only one argument is registered)."""
        cls._parse()
        if group:
            if len(cls._cl.grouped) == 1:
                return cls._cl.grouped[0]
            return cls._cl.grouped
        return cls._cl.positional

    @classmethod
    def getUnprocessedSwitches(cls) -> list[tuple[str, str]]:
        """``[(name, value)]`` of the switches given without a callback, dashes stripped."""
        if not cls._cl.applied:
            cls._applyCommandLine()
        return cls._cl.unprocessed

    @classmethod
    def localConfiguration(cls) -> tuple[dict[str, Any], list[str]]:
        """``(options set by -o and defaults, --cfg files)``, for ``DIRAC.initialize``'s
        ``extra_config`` and ``extra_config_files`` (empty before parsing)."""
        import copy

        if not cls.alreadyInitialized:
            return {}, []
        return copy.deepcopy(cls._cl.overlay), list(cls._cl.cfgFiles)

    @classmethod
    def getDebugMode(cls) -> int:
        """How many ``-d`` were given (``-ddd``: 3)."""
        return cls._cl.debug

    @classmethod
    def getExtraCLICFGFiles(cls) -> list[str]:
        """The files given with ``--cfg``."""
        cls._parse()
        return cls._cl.cfgFiles

    # --------------------------------------------------------------- help
    @classmethod
    def showHelp(cls, dummy: str | bool = False, exitCode: int = 0) -> None:
        """Print the help (stdout, DIRAC's layout) and exit with ``exitCode``."""
        cl = cls._cl
        lines: list[str] = []
        if cl.description:
            lines.append(cl.description)
        if cl.usageDoc:
            lines.append(cl.usageDoc)
        else:
            markings = " ".join(a[0] for a in cl.arguments)
            lines += ["\nUsage:", f"  {_invokedName()} [options] ..." +
                      (f" {markings}" if markings else "")]
            if dummy and isinstance(dummy, str):
                lines.append(dummy)
        lines.append("\nGeneral options:")
        general = True
        for short, long_, text, _ in cl.switches:
            lines.append(_switchLine(short, long_, text))
            if general and short == "h":
                general = False
                if cl.switches[-1][0] != "h":
                    lines.append("\nOptions:")
        if cl.arguments:
            width = max(len(n) for a in cl.arguments for n, _ in a[1])
            shown: list[tuple[str, str]] = []
            for _, named, mandatory, values, default in cl.arguments:
                for name, text in named:
                    if values:
                        text += f" [{', '.join(values)}]"
                    if default:
                        text += f" [default: {default}]"
                    if not mandatory:
                        text += " (optional)"
                    if (name, text) not in shown:
                        shown.append((name, text))
            lines.append("\nArguments:")
            lines += [f"  {name}:{' ' * (width - len(name))}  {text}" for name, text in shown]
        elif cl.argumentsDoc:
            lines.append(cl.argumentsDoc)
        if cl.exampleDoc:
            lines.append(cl.exampleDoc)
        lines.append("")
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()
        sys.exit(exitCode)

    # ----------------------------------------------- the standard switches
    @classmethod
    def _registerStandardSwitches(cls) -> None:
        cls.registerSwitch("o:", "option=", "Option=value to add", cls._setOption)
        cls.registerSwitch("s:", "section=", "Set base section for relative parsed options",
                           cls._setSection)
        cls.registerSwitch("c:", "cert=", "Use server certificate to connect to Core Services",
                           cls._setCert)
        cls.registerSwitch("d", "debug", "Set debug mode (-ddd is extra debug)", cls._addDebug)
        cls.registerSwitch("", "cfg=", "Load additional config file", None)
        cls.registerSwitch("h", "help", "Shows this help", cls.showHelp)

    @classmethod
    def _setOption(cls, value: str) -> DReturnType:
        name, sep, text = value.partition("=")
        if not sep or not name:
            return S_ERROR(f"-o expects a option=value argument.\nFor example "
                           f"{sys.argv[0]} -o Port=1234")
        _setIn(cls._cl.overlay, _option_path(cls._cl.section, name), text)
        return S_OK()

    @classmethod
    def _setSection(cls, value: str) -> DReturnType:
        if not value.startswith("/"):
            return S_ERROR(f"{value} is not a valid section. It should start with '/'")
        cls._cl.section = value
        return S_OK()

    @classmethod
    def _setCert(cls, value: str) -> DReturnType:
        use = "yes" if value.lower() in ("y", "yes", "true") else "no"
        _setIn(cls._cl.overlay, ["DIRAC", "Security", "UseServerCertificate"], use)
        return S_OK()

    @classmethod
    def _addDebug(cls, value: str = "") -> DReturnType:
        del value
        cls._cl.debug += 1
        return S_OK()

    @classmethod
    def _reset(cls) -> None:
        """Forget everything declared and parsed (for tests running several scripts)."""
        cls._cl = _CommandLine()
        cls.alreadyInitialized = False
        cls.scriptName = None
        cls.usageErrorExitCode = None
        cls._registerStandardSwitches()


def _isList(marking: str) -> bool:
    return re.fullmatch(r"\S+ \[\S+\]", marking) is not None


def _switchLine(short: str, long_: str, text: str) -> str:
    if short.endswith(":"):
        return f"  -{short[:-1].ljust(2)} --{(long_[:-1] + ' <value> ').ljust(22)} : {text}"
    return f"  -{short.ljust(2)} --{long_.ljust(22)} : {text}"


def _scriptNameOf(filename: str) -> str:
    name = os.path.basename(filename)
    name = name[:-3] if name.endswith(".py") else name
    return name.replace("_", "-")


def _invokedName() -> str:
    argv0 = sys.argv[0] if sys.argv and sys.argv[0] else "script"
    return os.path.basename(argv0).split(".")[0].replace("_", "-")


def _setIn(tree: dict[str, Any], path: list[str], value: Any) -> None:
    for key in path[:-1]:
        node = tree.get(key)
        if not isinstance(node, dict):
            node = tree[key] = {}
        tree = node
    tree[path[-1]] = value


def _setDefault(cl: _CommandLine, path: list[str], value: str) -> None:
    """Set ``path`` in the overlay unless ``-o`` or a loaded configuration has it."""
    from DIRAC.ConfigurationSystem.Client.ConfigurationData import gConfigurationData

    for tree in (cl.overlay, gConfigurationData._merged):
        node: Any = tree
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            return
    _setIn(cl.overlay, path, value)


Script._registerStandardSwitches()


def parseCommandLine(*args: Any, **kwargs: Any) -> tuple[list[tuple[str, str]], list[str]]:
    """``Script.parseCommandLine`` (``from DIRAC.Core.Base import Script`` form)."""
    return Script.parseCommandLine(*args, **kwargs)


def initialize(*args: Any, **kwargs: Any) -> bool:
    """``Script.initialize`` (``from DIRAC.Core.Base import Script`` form)."""
    return Script.initialize(*args, **kwargs)


def __getattr__(name: str) -> Any:
    """``Script.<name>`` for the module form: ``Script.registerSwitch(...)``, ..."""
    if name.startswith("__"):
        raise AttributeError(name)
    try:
        return getattr(Script, name)
    except AttributeError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
