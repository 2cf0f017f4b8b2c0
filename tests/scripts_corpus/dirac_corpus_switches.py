"""Switches with callbacks, as in DIRAC's "Developing Commands" tutorial."""
from DIRAC import S_ERROR, S_OK, gLogger
from DIRAC.Core.Base.Script import Script


class Params:
    def __init__(self):
        self.numPings = 1
        self.raw = False

    def setNumPings(self, value):
        try:
            self.numPings = int(value)
        except ValueError:
            return S_ERROR(f"{value!r} is not a number of pings")
        return S_OK()

    def setRaw(self, _):
        self.raw = True
        return S_OK()


params = Params()
Script.registerSwitch("n:", "numPings=", "Number of pings to do", params.setNumPings)
Script.registerSwitches([("r", "raw", "Raw output", params.setRaw),
                         ("t:", "tag=", "A tag left for the script")])
switches, args = Script.parseCommandLine(ignoreErrors=False)
gLogger.notice(f"pings={params.numPings} raw={params.raw}")
gLogger.notice(f"unprocessed={switches}")
gLogger.notice(f"args={args}")
