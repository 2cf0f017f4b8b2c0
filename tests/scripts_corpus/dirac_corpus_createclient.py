"""A client class made with createClient, as DIRAC's own clients are."""
from DIRAC import gLogger
from DIRAC.Core.Base.Client import Client, createClient
from DIRAC.Core.Base.Script import Script


@createClient("WorkloadManagement/JobMonitoring")
class MyMonitoringClient(Client):
    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.setServer("WorkloadManagement/JobMonitoring")

    def getJobs(self, attrDict=None, cutDate=None, **kwargs):
        return self.executeRPC("getJobs", attrDict, cutDate, **kwargs)


Script.parseCommandLine()
client = MyMonitoringClient()
gLogger.notice("generated:", sorted(n for n in ("getJobsStatus", "getJobSummary", "getOwners")
                                    if n in vars(MyMonitoringClient)))
gLogger.notice("doc:", MyMonitoringClient.getJobsStatus.__doc__.splitlines()[0])
gLogger.notice("kept own getJobs:", "getJobs" in vars(MyMonitoringClient)
               and MyMonitoringClient.getJobs.__doc__ is None)
result = client.getJobsStatus([987654321], timeout=20)
gLogger.notice("unknown job:", result)
result = client.getJobs({"Owner": "nobody-at-all"})
gLogger.notice("nobody's jobs:", result["Value"])
