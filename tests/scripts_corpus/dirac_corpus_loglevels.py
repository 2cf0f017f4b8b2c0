"""gLogger at each of DIRAC's levels (a script shows INFO and above; -d VERBOSE; -ddd DEBUG)."""
from DIRAC import gLogger
from DIRAC.Core.Base.Script import Script

Script.parseCommandLine()
gLogger.always("always")
gLogger.notice("notice")
gLogger.info("info", "with a variable part")
gLogger.verbose("verbose")
gLogger.debug("debug")
gLogger.warn("warn")
gLogger.error("error")
gLogger.fatal("fatal")
print("level", gLogger.getLevel())
