"""DIRAC's ``Job``: build a job description (JDL) step by step.

Methods return ``S_OK``/``S_ERROR`` as DIRAC's do; a bad value is recorded in
``errorDict`` and makes ``Dirac().submitJob`` refuse the job, saying why.  Several
``setExecutable`` calls make several steps, run one after the other by ``/bin/sh``
(stopping at the first that fails).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable
from typing import Any

from diracmq.broker.derrno import EVALUE
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

from DIRAC.WorkloadManagementSystem.Utilities.JDL import ClassAd

__all__ = ["Job"]


def _list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(";") if v.strip()]
    if isinstance(value, Iterable):
        return [str(v) for v in value]
    return [str(value)]


class Job:
    """A job description: ``Job().setExecutable("/bin/echo", arguments="hi")`` ..."""

    def __init__(self, script: Any = None, stdout: str = "std.out", stderr: str = "std.err"
                 ) -> None:
        del script  # DIRAC's workflow XML: not supported
        self.attributes: dict[str, Any] = {
            "JobName": "Name", "JobType": "User", "Priority": 1, "CPUTime": 86400,
            "StdOutput": stdout, "StdError": stderr,
            "OutputSandbox": [stdout, stderr],
        }
        self.steps: list[tuple[str, str, str]] = []
        self.errorDict: dict[str, list[str]] = {}
        self.parametricSequences: dict[str, list[Any]] = {}

    def _reportError(self, message: str, name: str) -> DReturnType:
        self.errorDict.setdefault(name, []).append(message)
        return S_ERROR(EVALUE, message)

    # ------------------------------------------------------------ what to run
    def setExecutable(self, executable: str, arguments: str = "", logFile: str = "",
                      modulesList: Any = None, parameters: Any = None,
                      paramValues: Any = None) -> DReturnType:
        """Add a step running ``executable`` with ``arguments`` (a string, split as a
        shell would).  ``logFile``: where that step's output also goes."""
        del modulesList, parameters, paramValues
        if not isinstance(executable, str) or not executable.strip():
            return self._reportError("the executable must be a non-empty string",
                                     "setExecutable")
        self.steps.append((executable.strip(), str(arguments or ""), str(logFile or "")))
        if logFile and logFile not in self.attributes["OutputSandbox"]:
            self.attributes["OutputSandbox"].append(str(logFile))
        return S_OK()

    def setName(self, jobName: str) -> DReturnType:
        """The job's name (JobName)."""
        self.attributes["JobName"] = str(jobName)
        return S_OK()

    def setJobGroup(self, jobGroup: str) -> DReturnType:
        """The job's group (JobGroup)."""
        self.attributes["JobGroup"] = str(jobGroup)
        return S_OK()

    def setType(self, jobType: str) -> DReturnType:
        """The job type (JobType, default User)."""
        self.attributes["JobType"] = str(jobType)
        return S_OK()

    def setPriority(self, priority: int) -> DReturnType:
        """The user priority, 0 to 10 (Priority)."""
        if isinstance(priority, bool) or not isinstance(priority, int) \
                or not 0 <= priority <= 10:
            return self._reportError(f"priority must be an integer 0..10, not {priority!r}",
                                     "setPriority")
        self.attributes["Priority"] = priority
        return S_OK()

    def setLogLevel(self, logLevel: str) -> DReturnType:
        """The job's log level (LogLevel)."""
        self.attributes["LogLevel"] = str(logLevel)
        return S_OK()

    def setExecutionEnv(self, environmentDict: dict[str, Any]) -> DReturnType:
        """Environment variables for the job (ExecutionEnvironment)."""
        if not isinstance(environmentDict, dict):
            return self._reportError("expected a dict of variables", "setExecutionEnv")
        self.attributes["ExecutionEnvironment"] = [f"{k}={v}" for k, v in
                                                   environmentDict.items()]
        return S_OK()

    # --------------------------------------------------------------- sandboxes
    def setInputSandbox(self, files: Any) -> DReturnType:
        """Local files (uploaded at submission) or ``SB:`` sandboxes for the job."""
        self.attributes["InputSandbox"] = _list(files)
        return S_OK()

    def setOutputSandbox(self, files: Any) -> DReturnType:
        """Files (glob patterns) brought back in the output sandbox, with stdout/stderr."""
        names = _list(files)
        for std in (self.attributes["StdOutput"], self.attributes["StdError"]):
            if std not in names:
                names.append(std)
        self.attributes["OutputSandbox"] = names
        return S_OK()

    # -------------------------------------------------------------- scheduling
    def setCPUTime(self, timeInSecs: int) -> DReturnType:
        """CPU seconds the job needs (and may use: it is stopped beyond)."""
        if isinstance(timeInSecs, bool) or not isinstance(timeInSecs, (int, float)) \
                or timeInSecs <= 0:
            return self._reportError(f"CPU time must be a positive number, not "
                                     f"{timeInSecs!r}", "setCPUTime")
        self.attributes["CPUTime"] = int(timeInSecs)
        return S_OK()

    def setDestination(self, destination: Any) -> DReturnType:
        """The site(s) the job may run at (``"ANY"``: anywhere)."""
        sites = _list(destination) if not isinstance(destination, str) else \
            [s.strip() for s in destination.replace(";", ",").split(",") if s.strip()]
        sites = [s for s in sites if s.upper() != "ANY"]
        if sites:
            self.attributes["Site"] = sites
        else:
            self.attributes.pop("Site", None)
        return S_OK()

    def setBannedSites(self, sites: Any) -> DReturnType:
        """Sites the job must not run at."""
        self.attributes["BannedSites"] = _list(sites)
        return S_OK()

    def setTag(self, tags: Any) -> DReturnType:
        """Tags the resource must offer."""
        self.attributes["Tags"] = _list(tags)
        return S_OK()

    def setNumberOfProcessors(self, numberOfProcessors: int = 1, minNumberOfProcessors: int = 0,
                              maxNumberOfProcessors: int = 0) -> DReturnType:
        """Processors the job needs."""
        del maxNumberOfProcessors
        count = max(int(numberOfProcessors or 1), int(minNumberOfProcessors or 0))
        self.attributes["NumberOfProcessors"] = count
        return S_OK()

    def setParameterSequence(self, name: str, parameterList: list, addToWorkflow: Any = False
                             ) -> DReturnType:
        """A parametric job: one job per value; ``%s`` / ``%(name)s`` in the arguments
        become the value (all sequences must be as long)."""
        del addToWorkflow
        if not isinstance(parameterList, (list, tuple)) or not parameterList:
            return self._reportError("a parameter sequence must be a non-empty list",
                                     "setParameterSequence")
        lengths = {len(v) for v in self.parametricSequences.values()}
        if lengths and len(parameterList) not in lengths:
            return self._reportError("parameter sequences must all have the same length",
                                     "setParameterSequence")
        self.parametricSequences[str(name)] = list(parameterList)
        return S_OK()

    def setInputData(self, lfns: Any) -> DReturnType:
        """Input data: LFNs (a str, ``;``-separated, or a list), ``LFN:`` prefixed or not.

        The InputData optimizer checks they exist and keeps the sites holding them;
        the job agent downloads them into the job's directory before it runs.
        """
        names = _list(lfns)
        if not names or not all(n.strip() for n in names):
            return self._reportError(f"expected LFNs, not {lfns!r}", "setInputData")
        self.attributes["InputData"] = [n.strip() if n.strip().startswith("LFN:")
                                        else f"LFN:{n.strip()}" for n in names]
        return S_OK()

    def setOutputData(self, lfns: Any, outputSE: Any = None, outputPath: str = ""
                      ) -> DReturnType:
        """Files the job writes that are uploaded to ``outputSE`` (default: the
        Configuration's ``SE-USER``) and registered in the catalogue after a successful
        run, as ``/<vo>/user/<i>/<owner>/<outputPath or jobID//1000/jobID>/<name>``
        (an ``LFN:`` entry is taken as given).  ``lfns``: a str (``;``-separated) or a
        list; ``outputSE``: a name or a list (tried in order)."""
        names = _list(lfns)
        if not names or not all(n.strip() for n in names):
            return self._reportError(f"expected output file names, not {lfns!r}",
                                     "setOutputData")
        self.attributes["OutputData"] = [n.strip() for n in names]
        if outputSE:
            ses = _list(outputSE) if not isinstance(outputSE, str) else \
                [s.strip() for s in outputSE.replace(";", ",").split(",") if s.strip()]
            self.attributes["OutputSE"] = ses
        if outputPath:
            if not isinstance(outputPath, str):
                return self._reportError(f"outputPath must be text, not {outputPath!r}",
                                         "setOutputData")
            self.attributes["OutputPath"] = outputPath
        return S_OK()

    # --------------------------------------------------------------------- JDL
    def _toClassAd(self) -> ClassAd:
        ad = ClassAd()
        attrs = dict(self.attributes)
        if len(self.steps) == 1 and not self.steps[0][2]:
            executable, arguments, _ = self.steps[0]
            ad["Executable"] = executable
            if arguments:
                ad["Arguments"] = arguments
        elif self.steps:
            commands = []
            for executable, arguments, log_file in self.steps:
                command = f"{shlex.quote(executable)} {arguments}".strip()
                if log_file:
                    command = f"{{ {command} ; }} > {shlex.quote(log_file)} 2>&1"
                commands.append(command)
            ad["Executable"] = "/bin/sh"
            ad["Arguments"] = f"-c {shlex.quote(' && '.join(commands))}"
        for name, value in attrs.items():
            ad[name] = value
        if self.parametricSequences:
            ad["Parameters"] = len(next(iter(self.parametricSequences.values())))
            for name, values in self.parametricSequences.items():
                ad[f"Parameters.{name}"] = values
        return ad

    def _toJDL(self, xmlFile: str = "", jobDescriptionObject: Any = None) -> str:
        """The JDL text of this job."""
        del xmlFile, jobDescriptionObject
        return self._toClassAd().asJDL()

    def __str__(self) -> str:
        return self._toJDL()
