"""Which packages extend DIRAC, most important first (DIRAC's ``extensionsByPriority``).

An extension is found the way DIRAC finds one, from an installed distribution's entry
point in the ``dirac`` group (``[project.entry-points.dirac] metadata =
"myext:extension_metadata"``: the package is the entry point's module), or from the
``DIRAC_EXTENSIONS`` environment variable (package names, comma-separated), which this
project adds for extensions that are plain folders (``dirac-worker --extension``).
"""

from __future__ import annotations

import os
from importlib import metadata

__all__ = ["extensionsByPriority"]


def extensionsByPriority() -> list[str]:
    """Extension package names, the one searched first at the front; ``DIRAC`` last."""
    names = [n.strip() for n in os.environ.get("DIRAC_EXTENSIONS", "").split(",") if n.strip()]
    try:
        entries = metadata.entry_points(group="dirac")
    except Exception:  # a broken installed distribution must not stop DIRAC
        entries = ()
    for entry in entries:
        package = entry.value.split(":", 1)[0].split(".", 1)[0]
        if package:
            names.append(package)
    return [*dict.fromkeys(n for n in names if n != "DIRAC"), "DIRAC"]
