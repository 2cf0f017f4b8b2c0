"""myext: the user's own extension, as in the issue: ``dirac-worker Mine --extension myext``."""
