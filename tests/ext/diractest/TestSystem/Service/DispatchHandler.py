"""``Test/Dispatch``: one method per dispatch rule the tests check.

Everything here is reached only through ``dispatch``; the tests call each method
both through ``Client`` and from a raw pika publisher.
"""

import os

from DIRAC import S_ERROR, S_OK
from DIRAC.Core.DISET.RequestHandler import RequestHandler
from DIRAC.Core.Utilities.DErrno import EVALUE


class DispatchHandler(RequestHandler):
    """Echo, types_ checks, failures, and things that must stay unreachable."""

    #: A non-export class attribute: not callable remotely (``counter``).
    counter = 5
    #: An ``export_`` attribute that is not callable: not a method either.
    export_value = 7

    @classmethod
    def initializeHandler(cls, serviceInfoDict):
        cls.initState = {
            "initialized": True,
            "service": serviceInfoDict.get("serviceName"),
            "system": serviceInfoDict.get("System"),
            "pid": os.getpid(),
        }
        return S_OK()

    def initializeRequest(self):
        if self.request.method == "guarded":
            return S_ERROR("initializeRequest refused guarded")
        self.requestInitialized = True
        return None

    # ------------------------------------------------------------ reachable
    types_echoArgs = []

    def export_echoArgs(self, *args):
        """The positional arguments, as received."""
        return S_OK(list(args))

    types_getInitState = []

    def export_getInitState(self):
        """What ``initializeHandler`` set, and whether ``initializeRequest`` ran."""
        return S_OK(dict(self.initState, requestInitialized=self.requestInitialized))

    types_single = [int]

    def export_single(self, n):
        return S_OK(n * 2)

    types_multi = [[int, float], (str, bytes)]

    def export_multi(self, number, text):
        return S_OK([number, text])

    types_withNone = [str, None, dict]

    def export_withNone(self, name, anything, mapping):
        return S_OK([name, anything, mapping])

    types_twoArgs = [int, int]

    def export_twoArgs(self, a, b):
        return S_OK(a + b)

    types_boom = []

    def export_boom(self):
        raise ValueError("kaboom 42")

    types_notSOK = []

    def export_notSOK(self):
        return {"answer": 42}

    types_returnsNone = []

    def export_returnsNone(self):
        return None

    types_failWithErrno = []

    def export_failWithErrno(self):
        """An S_ERROR with a DIRAC errno and an extra top-level key, as WMS handlers do."""
        result = S_ERROR(EVALUE, "bad value")
        result["JobID"] = 17
        return result

    types_okWithExtraKey = []

    def export_okWithExtraKey(self):
        result = S_OK(17)
        result["JobID"] = 17
        return result

    types_guarded = []

    def export_guarded(self):
        return S_OK("initializeRequest let it through")

    types_credentials = []

    def export_credentials(self):
        return S_OK(self.getRemoteCredentials())

    # ---------------------------------------------------------- unreachable
    def _helper(self):
        return S_OK("private helper reached")

    def export__secret(self):
        return S_OK("export__secret reached")

    def notExported(self):
        return S_OK("non-export method reached")
