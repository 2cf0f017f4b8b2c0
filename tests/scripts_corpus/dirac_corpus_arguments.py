"""Single, alternative-name and list arguments; grouped positional arguments."""
from DIRAC import gLogger
from DIRAC.Core.Base.Script import Script


@Script()
def main():
    Script.registerArgument("System: a System name")
    Script.registerArgument(("User: a user name", "DN: a user DN"))
    Script.registerArgument(["Site: a site"])
    Script.parseCommandLine()
    system, who, sites = Script.getPositionalArgs(group=True)
    gLogger.notice(f"system={system} who={who} sites={sites}")
    gLogger.notice(f"flat={Script.getPositionalArgs()}")


if __name__ == "__main__":
    main()
