"""-o options (absolute and relative to the script's section), defaults and gConfig."""
from DIRAC import gConfig, gLogger
from DIRAC.Core.Base.Script import Script

Script.addDefaultOptionValue("Colour", "blue")
Script.addDefaultOptionValue("Shape", "round")
Script.parseCommandLine()
section = f"/Scripts/{Script.scriptName}"
gLogger.notice("setup", gConfig.getValue("/DIRAC/Setup", "none"))
gLogger.notice("colour", gConfig.getValue(f"{section}/Colour", "none"))
gLogger.notice("shape", gConfig.getValue(f"{section}/Shape", "none"))
gLogger.notice("size", gConfig.getValue("/Other/Size", 0))
