"""``Mine/Thing``: a complete small service, written as a DIRAC extension.

Serve it from the examples/ folder (so that ``myext`` can be imported)::

    cd examples && ../.venv/bin/dirac-worker Mine --extension myext

and call it from anywhere with ``Client(url="Mine/Thing")`` (see ../call_thing.py).
"""

from __future__ import annotations

import datetime
import os
from typing import Any, ClassVar

from DIRAC import S_ERROR, S_OK
from DIRAC.Core.DISET.RequestHandler import RequestHandler
from DIRAC.Core.Utilities.DErrno import EVALUE


class ThingHandler(RequestHandler):
    """Greets callers, adds numbers and describes things."""

    greeting: ClassVar[str] = "Hello"

    @classmethod
    def initializeHandler(cls, serviceInfoDict: dict[str, Any]) -> dict:
        """Once per worker process, before the first request (S_ERROR stops the worker)."""
        cls.greeting = os.environ.get("THING_GREETING", cls.greeting)
        return S_OK()

    # types_<name>: checked against the positional arguments before the method runs.
    types_hello: ClassVar[list] = [str]

    def export_hello(self, name: str) -> dict:
        """A greeting that names the caller, as the broker authenticated them."""
        caller = self.getRemoteCredentials()["username"]
        return S_OK(f"{self.greeting} {name}! (asked by {caller})")

    types_add: ClassVar[list] = [(int, float), (int, float)]  # a tuple: any of these types

    def export_add(self, a: float, b: float) -> dict:
        """``a + b``."""
        return S_OK(a + b)

    types_describe: ClassVar[list] = [dict]

    def export_describe(self, thing: dict) -> dict:
        """What the service makes of ``thing``: a dict that must have a ``name``."""
        if "name" not in thing:
            return S_ERROR(EVALUE, "a thing needs a 'name'")
        return S_OK({
            "name": thing["name"],
            "fields": tuple(sorted(map(str, thing))),  # comes back as a tuple
            "described at": datetime.datetime.now(datetime.UTC),  # and as a datetime
        })
