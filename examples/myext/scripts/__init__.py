"""The extension's commands (``dirac-mine-*``), written with DIRAC's ``Script``."""
