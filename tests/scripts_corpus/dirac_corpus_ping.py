"""Ping services, as DIRAC's dirac-framework-ping-service does it."""
from DIRAC import gLogger
from DIRAC.Core.Base.Client import Client
from DIRAC.Core.Base.Script import Script

Script.registerArgument(["Service: System/Service"])
_, services = Script.parseCommandLine()
failed = 0
for service in services:
    result = Client(url=service, timeout=20).ping()
    if result["OK"]:
        gLogger.notice(f"{service}: up, name {result['Value']['name']}")
    else:
        gLogger.error(f"{service}: down", result["Message"].split(" (")[0])
        failed += 1
raise SystemExit(failed)
