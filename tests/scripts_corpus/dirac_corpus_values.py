"""An argument restricted to some values, with a default for an optional one."""
from DIRAC import gLogger
from DIRAC.Core.Base.Script import Script

Script.registerArgument("Mode: how to run", values=["fast", "slow"])
Script.registerArgument("Level: how much", mandatory=False, default="low")
Script.parseCommandLine()
mode, level = Script.getPositionalArgs(group=True)
gLogger.notice(f"mode={mode} level={level}")
