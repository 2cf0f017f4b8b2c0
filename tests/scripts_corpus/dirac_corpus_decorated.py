"""Count to a number (a @Script() command, help from this docstring).

Usage:
  dirac-corpus-decorated [options] ... Number

Example:
  $ dirac-corpus-decorated 3
"""
from DIRAC import gLogger
from DIRAC.Core.Base.Script import Script


@Script()
def main():
    Script.registerSwitch("s:", "step=", "the step")  # -s is DIRAC's: refused
    Script.parseCommandLine()


@Script()
def count():
    Script.registerSwitch("S:", "step=", "the step")
    Script.registerArgument("Number: where to stop")
    switches, (number,) = Script.parseCommandLine()
    step = int(dict(switches).get("step", dict(switches).get("S", 1)))
    gLogger.notice(Script.scriptName, list(range(0, int(number) + 1, step)))


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:
        print("refused:", exc)
    count()
