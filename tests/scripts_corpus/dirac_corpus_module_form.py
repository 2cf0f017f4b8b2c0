"""
Print the positional arguments (the older module form of Script).

Usage:
  dirac_corpus_module_form.py [options] ... Arg1 Arg2

Arguments:
  Arg1: the first
  Arg2: the second

Example:
  $ dirac_corpus_module_form.py a b
"""
from DIRAC.Core.Base import Script

Script.setUsageMessage(__doc__)
Script.registerSwitch("v:", "value=", "a value")
Script.parseCommandLine(ignoreErrors=True)
args = Script.getPositionalArgs()
if len(args) != 2:
    Script.showHelp(exitCode=1)
print(" ".join(args), dict(Script.getUnprocessedSwitches()))
