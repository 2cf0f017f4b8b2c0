"""Ask the Mine/Thing service to greet someone, and print its greeting.

Exit status: 0 greeted, 1 no answer (or the service refused), 2 usage error.

Usage:
  dirac-mine-hello [options] ... Name [Name ...]

Example:
  $ dirac-mine-hello world
  $ dirac-mine-hello --shout alice bob
"""

from DIRAC import S_OK, gLogger
from DIRAC.Core.Base.Script import Script
from DIRAC.Interfaces.scripts.common import (
    EXIT_FAILED,
    EXIT_OK,
    Options,
    error,
    print_json,
    run_command,
    setup,
)

shout = False


def setShout(value: str) -> dict:
    """``--shout``: greetings in capitals (a switch with a callback, as in DIRAC)."""
    global shout
    shout = True
    return S_OK()


@Script()
@run_command
def main() -> int:
    options = Options()  # --json, --timeout=
    Script.registerSwitch("S", "shout", "print the greetings in capitals", setShout)
    Script.registerArgument(["Name: who to greet"])
    _, names = Script.parseCommandLine()
    setup(options)  # reach the broker: "ERROR: cannot reach the broker: ..." and exit 1 if not

    from DIRAC.Core.Base.Client import Client

    thing = Client(url="Mine/Thing")
    greetings, failed = {}, False
    for name in names:
        result = thing.hello(name)
        if not result["OK"]:
            error(f"{name}: {result['Message']}")
            failed = True
            continue
        greetings[name] = result["Value"].upper() if shout else result["Value"]
    if options.json:
        print_json(greetings)
    else:
        for greeting in greetings.values():
            gLogger.notice(greeting)
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    main()
