"""Sub-loggers, their levels and what they show."""
from DIRAC import gLogger

log = gLogger.getSubLogger("Agent")
inner = log.getSubLogger("Cycle")
assert inner is log.getSubLogger("Cycle")
print(gLogger.getLevel(), log.getLevel(), gLogger.shown("VERBOSE"), gLogger.shown("notice"))
log.setLevel("verbose")
print(log.getLevel(), inner.getLevel(), inner.shown("verbose"), gLogger.shown("verbose"))
print(log.setLevel("nonsense"), log.getLevel())
gLogger.showHeaders(False)
inner.verbose("from the inner logger")
gLogger.showHeaders(True)
gLogger.showTimeStamps(False)
inner.notice("with a header")
gLogger.setLevel("ERROR")
print(inner.shown("notice"), gLogger.getLevel(), inner.getLevel())
