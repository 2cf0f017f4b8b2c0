"""``Mine/Thing``: a user's own service in DIRAC's layout (``Client(url="Mine/Thing")``)."""

import os

from DIRAC import S_OK
from DIRAC.Core.DISET.RequestHandler import RequestHandler


class ThingHandler(RequestHandler):
    """A small service of the user's own System."""

    @classmethod
    def initializeHandler(cls, serviceInfoDict):
        cls.things = {"answer": 42}
        return S_OK()

    types_getThing = [str]

    def export_getThing(self, name):
        """The thing called ``name`` (None if there is none)."""
        return S_OK(self.things.get(name))

    types_whereAmI = []

    def export_whereAmI(self):
        """Which module serves this call, and in which process."""
        return S_OK({"module": __name__, "pid": os.getpid()})
