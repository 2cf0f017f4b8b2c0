"""gLogger on top of Python logging, and Script's declarations (in-process; the corpus
of tests/integration/test_script_corpus.py runs whole scripts)."""

import logging
import sys

import pytest

from DIRAC import gLogger
from DIRAC.Core.Base.Script import Script
from DIRAC.FrameworkSystem.Client.Logger import LogLevels, _DiracFormatter


@pytest.fixture
def level():
    before = gLogger.getLevel()
    yield
    gLogger.setLevel(before)


def test_levels_are_dirac_s():
    assert LogLevels.getLevels() == {"DEBUG": 10, "VERBOSE": 15, "INFO": 20, "WARN": 30,
                                     "NOTICE": 35, "ERROR": 40, "ALWAYS": 45, "FATAL": 50}
    assert LogLevels.getLevelValue("warning") == 30 and LogLevels.getLevelValue("x") is None


def test_records_go_through_python_logging(caplog, level):
    """Where the process configured logging (pytest has), gLogger's records reach its
    handlers with DIRAC's level names and the sub-logger's name."""
    caplog.set_level(logging.DEBUG)
    sub = gLogger.getSubLogger("Unit")
    gLogger.setLevel("VERBOSE")
    assert sub.verbose("shown", "var") is True
    assert sub.debug("hidden") is False
    [record] = [r for r in caplog.records if r.name == "dirac.Unit"]
    assert (record.levelname, record.getMessage(), record.varmessage) == \
        ("VERBOSE", "shown", "var")
    assert gLogger.setLevel("nonsense") is False and gLogger.getLevel() == "VERBOSE"
    assert gLogger.shown("verbose") and not gLogger.shown("debug")


def test_dirac_formatter_layout():
    record = logging.LogRecord("dirac.A", 35, __file__, 1, "%s", ("hello",), None)
    record.__dict__.update(varmessage="world", componentname="dirac-x", customname="/A",
                           headerIsShown=True, timeStampIsShown=False, contextIsShown=True,
                           threadIDIsShown=False)
    assert _DiracFormatter().format(record) == "dirac-x/A NOTICE: hello world"
    record.headerIsShown = False
    assert _DiracFormatter().format(record) == "hello world"


@pytest.fixture
def script(monkeypatch):
    Script._reset()
    yield Script
    Script._reset()


def test_register_argument_rules(script):
    script.registerArgument(["LFN: a file"], mandatory=False)
    with pytest.raises(Exception, match="mandatory argument cannot go after the optional"):
        script.registerArgument("SE: a storage element")
    with pytest.raises(Exception, match="two such arguments"):
        script.registerArgument(["Other: more"], mandatory=False)
    with pytest.raises(Exception, match="Unknown argument description type"):
        script.registerArgument(5, mandatory=False)


def test_parse_groups_and_help(script, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["dirac-unit", "-x", "a", "b", "c"])
    script.setUsageMessage("Describe it.\n\nUsage:\n  dirac-unit X\n\nExample:\n  $ x\n")
    script.registerSwitch("x", "ex", "a flag")
    script.registerArgument("First: one")
    script.registerArgument(["Rest: more"])
    assert script.getPositionalArgs(group=True) == ["a", ["b", "c"]]
    assert script.getUnprocessedSwitches() == [("x", "")]
    with pytest.raises(SystemExit) as exited:
        script.showHelp(exitCode=3)
    assert exited.value.code == 3
    out = capsys.readouterr().out
    assert out.startswith("\nDescribe it.\n\n\nUsage:\n  dirac-unit X\n\nGeneral options:\n")
    assert "\nOptions:\n  -x  --ex                     : a flag\n" in out
    assert out.endswith("\nExample:\n  $ x\n\n")


def test_the_process_log_level_applies(caplog, level):
    """A process that configured logging at WARNING (a worker's --log-level) does not get
    gLogger's INFO messages, whatever gLogger's own level."""
    caplog.set_level(logging.WARNING)
    gLogger.setLevel("DEBUG")
    assert gLogger.info("quiet") is False
    assert gLogger.error("loud") is True
    assert [r.getMessage() for r in caplog.records if r.name == "dirac"] == ["loud"]
