"""Who am I, as DIRAC scripts ask it."""
from DIRAC import gLogger
from DIRAC.Core.Base.Script import Script
from DIRAC.Core.Security.ProxyInfo import getProxyInfo, getVOfromProxyGroup

Script.parseCommandLine()
result = getProxyInfo()
if not result["OK"]:
    gLogger.error("Cannot get proxy info", result["Message"])
    raise SystemExit(1)
info = result["Value"]
gLogger.notice(f"username={info['username']} validDN={info['validDN']} "
               f"isProxy={info['isProxy']} secondsLeft>0={info['secondsLeft'] > 0}")
gLogger.notice(f"identity={info['identity']}")
gLogger.notice(f"VO={getVOfromProxyGroup()['Value']!r}")
