"""What DIRAC refuses when arguments and switches are declared."""
from DIRAC.Core.Base.Script import Script

Script.registerArgument("First: optional one", mandatory=False)
for declare in (lambda: Script.registerArgument("Second: mandatory one"),
                lambda: Script.registerSwitch("o:", "other=", "clashes with -o"),
                lambda: Script.registerSwitch("", "", "no key at all")):
    try:
        declare()
    except Exception as exc:  # DIRAC raises a bare Exception
        print(f"refused: {exc}")
