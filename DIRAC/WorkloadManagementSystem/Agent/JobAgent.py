"""The job agent: asks the Matcher for jobs and runs them (DIRAC's JobAgent + JobWrapper).

Any number of job agents, on any hosts, each a broker user whose group has the
``GenericPilot`` property.  For every job it gets:

1. ``Running`` / "Job Initialization"; a fresh working directory ``<workdir>/<jobID>``;
   the input sandbox (``SB:`` entries of ``InputSandbox``) downloaded and unpacked there
   ("Input Sandbox Download" failures -> ``Failed``); its ``LFN:`` entries, ``Running`` /
   "Downloading InputSandbox LFN(s)", from the storage elements (Agent/JobAgentData.py;
   a failure -> ``Failed`` / "Input Sandbox Download"); then the ``InputData`` files,
   ``Running`` / "Input Data Resolution" (Agent/JobAgentData.py; a failure ->
   ``Failed`` / "Input Data Resolution");
2. ``Running`` / "Application": the JDL's ``Executable`` with its ``Arguments`` (split
   as a shell would, not run by a shell) and ``ExecutionEnvironment`` (``NAME=value``
   items) plus ``DIRACJOBID``/``JOBID``, stdout and stderr into ``StdOutput``/
   ``StdError`` (default ``std.out``/``std.err``), in a new process group;
3. every ``heartbeat`` seconds ``JobStateUpdate.sendHeartBeat`` with CPU (s), memory
   (MB) and wall-clock (s) figures and the end of stdout (``StandardOutput``, what
   ``peekJob`` shows); a ``Kill`` command in the reply ends the process group;
4. limits: CPU time over the JDL's ``CPUTime`` (default 86400 s) or wall-clock over
   ``MaxWallClockTime`` (default: the agent's ``maxWallClock``) ends it, ``Failed``;
5. ``Completing`` / "Uploading Output Sandbox": stdout, stderr and the files the JDL's
   ``OutputSandbox`` names (glob patterns) present in the directory, as one sandbox;
6. after a successful run, the ``OutputData`` files put and registered in the
   catalogue (``Completing`` / "Uploading Job OutputData", job parameter
   ``UploadedOutputData``; a missing file or a failed upload -> ``Failed`` /
   "Uploading Job OutputData" with the reason);
7. ``Done`` / "Execution Complete" (exit 0), else ``Failed`` with the reason
   ("Application Finished With Errors" and the exit code, a limit, a sandbox error).

Fewer calls per job (each is a write transaction in the WorkloadManagement worker):
the Running statuses of a job without input files are reported once its payload has
run for :data:`RUNNING_REPORT_AFTER` seconds (before its first heartbeat), or, for a
payload that ended sooner, with its final status, each with its own time; the end of
a job (``ApplicationExitCode`` and ``StandardOutput`` parameters, ``Completing`` and the
final status, the output sandbox) is one ``JobStateUpdate.reportJobs`` call, shared by
the jobs of this agent that end while the previous call is in flight, and a job's slot
is given to the next job as soon as its output sandbox is stored, before that report is
answered; an output sandbox this agent already stored (the same content: empty
``std.out``/``std.err`` for many jobs) is assigned by name without asking the store
again.

SIGTERM (:meth:`JobAgent.stop`): no new jobs; the running payloads are ended, their
output uploaded, and the jobs set ``Failed`` / "Job agent stopped": never left
``Running``.  A job agent killed outright leaves its jobs to the StalledJobAgent.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime
import fnmatch
import hashlib
import logging
import os
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psutil
from diracmq.broker.derrno import EWMSNOMATCH
from diracmq.broker.returnvalues import S_ERROR, S_OK, DReturnType

from DIRAC.WorkloadManagementSystem.Agent.JobAgentData import (
    downloadInputData,
    downloadSandboxLFNs,
    uploadOutputData,
)
from DIRAC.WorkloadManagementSystem.Agent.JobAgentMetrics import JobAgentMetrics
from DIRAC.WorkloadManagementSystem.Client import JobStatus as JS
from DIRAC.WorkloadManagementSystem.Client.JobStateUpdateClient import JobStateUpdateClient
from DIRAC.WorkloadManagementSystem.Client.MatcherClient import MatcherClient
from DIRAC.WorkloadManagementSystem.Client.SandboxStoreClient import (
    SandboxStoreClient,
    packFiles,
)
from DIRAC.WorkloadManagementSystem.Utilities.JDL import ClassAd, JDLError, parseJDL

__all__ = ["JobAgent"]

log = logging.getLogger("dirac-job-agent")

SOURCE = "JobAgent"
#: Bytes of the end of stdout sent with each heartbeat (what peekJob shows).
PEEK_BYTES = 16 * 1024
DEFAULT_CPU_TIME = 86400
#: A payload still running after this many seconds has its Running statuses reported
#: then (one that ended sooner: with its final status, one call less).
RUNNING_REPORT_AFTER = 0.2
#: Output sandboxes (content key -> name) this agent remembers having stored.
STORED_SANDBOXES = 64

#: A status change to report: (status, minor status, application status, ISO time).
Status = tuple[str, str, str, str]


def _tail(path: Path, size: int = PEEK_BYTES) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            end = fh.tell()
            fh.seek(max(0, end - size))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _statusDict(changes: list[Status]) -> dict[str, dict[str, str]]:
    """``setJobStatusBulk``'s ``{date: update}`` for ``changes`` (in the order they
    happened; two with the same time are kept apart by a microsecond).  A time without
    an offset is UTC, as DIRAC writes them."""
    updates: dict[str, dict[str, str]] = {}
    previous: datetime.datetime | None = None
    for status, minor, application, when in changes:
        stamp = datetime.datetime.fromisoformat(when)
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=datetime.UTC)
        if previous is not None and stamp <= previous:
            stamp = previous + datetime.timedelta(microseconds=1)
        previous = stamp
        updates[stamp.isoformat()] = _statusUpdate(status, minor, application)
    return updates


def _statusUpdate(status: str, minor: str, application: str) -> dict[str, str]:
    """One ``setJobStatusBulk`` update ("" application status: left as it is)."""
    update = {"Status": status, "MinorStatus": minor, "Source": SOURCE}
    if application:
        update["ApplicationStatus"] = application
    return update


def _contentKey(files: list[Path]) -> str | None:
    """What makes the archive :func:`packFiles` would write of ``files`` (regular files:
    base name, executable or not, content), as a sha256: the same key, the same archive.
    None when one is not a regular file (a directory, a link: not remembered)."""
    digest = hashlib.sha256()
    for path in files:
        info = path.lstat()
        if not stat.S_ISREG(info.st_mode):
            return None
        digest.update(f"{path.name}\0{bool(info.st_mode & 0o111)}\0{info.st_size}\0"
                      .encode())
        if info.st_size:
            with path.open("rb") as fh:
                while block := fh.read(1 << 20):
                    digest.update(block)
    return digest.hexdigest()


class _Reporter:
    """Sends the jobs' end reports (``JobStateUpdate.reportJobs``): the reports that
    arrive while a call is in flight go together in the next one, as DIRAC's JobReport
    accumulates and sends in bulk.  :meth:`report` waits for its job's answer."""

    def __init__(self, client: JobStateUpdateClient) -> None:
        self._client = client
        self._cond = threading.Condition()
        self._pending: list[tuple[int, dict[str, Any], concurrent.futures.Future]] = []
        self._thread: threading.Thread | None = None
        self._closed = False

    def report(self, jobID: int, report: dict[str, Any]) -> DReturnType:
        """Send ``report`` (see ``reportJobs``) of job ``jobID``: S_OK or why not."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        with self._cond:
            self._pending.append((jobID, report, future))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="job-reports",
                                                daemon=True)
                self._thread.start()
            self._cond.notify()
        result: DReturnType = future.result()
        return result

    def close(self) -> None:
        """Send what is pending, then stop the sending thread (a later report starts
        another: the agent may run again)."""
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
        with self._cond:
            self._closed, self._thread = False, None

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return
                # one report per job and call (a job's next report waits for the next one)
                batch, rest, seen = [], [], set()
                for item in self._pending:
                    (rest if item[0] in seen else batch).append(item)
                    seen.add(item[0])
                self._pending = rest
            try:
                result = self._client.reportJobs({job: report for job, report, _ in batch})
            except Exception as exc:  # never leave a job thread waiting forever
                log.exception("reportJobs failed")
                result = S_ERROR(f"reportJobs: {type(exc).__name__}: {exc}")
            for job, _, future in batch:
                if not result["OK"]:
                    future.set_result(result)
                    continue
                failed = result["Value"].get("Failed") or {}
                message = failed.get(job, failed.get(str(job)))
                future.set_result(S_OK() if message is None else S_ERROR(str(message)))


class _Payload:
    """One running job: its process and what ended it."""

    def __init__(self, jobID: int) -> None:
        self.jobID = jobID
        self.process: subprocess.Popen | None = None
        self.reason: str | None = None  # set when the agent ends the process itself
        self.killed = False  # the job was killed by its owner (heartbeat command)

    def terminate(self, reason: str, killed: bool = False) -> None:
        """End the payload's process group (TERM, then KILL after 5 s)."""
        if self.reason is None:
            self.reason = reason
            self.killed = killed
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return

        def hard_kill() -> None:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

        threading.Thread(target=hard_kill, daemon=True).start()


class JobAgent:
    """Match and run jobs until told to stop, out of jobs (``maxJobs``) or idle."""

    def __init__(self, *, site: str = "DIRAC.Local.local", cpuTime: int = DEFAULT_CPU_TIME,
                 tags: list[str] | None = None, slots: int = 1, maxJobs: int = 0,
                 idleTimeout: float = 0.0, heartbeat: float = 30.0, pollInterval: float = 5.0,
                 workDir: str | Path | None = None, maxWallClock: float = 3 * 86400,
                 keepWorkDirs: bool = False, clientOptions: dict[str, Any] | None = None,
                 metrics: JobAgentMetrics | None = None) -> None:
        self.site = site
        self.cpuTime = int(cpuTime)
        self.tags = list(tags or [])
        self.slots = max(1, int(slots))
        self.maxJobs = max(0, int(maxJobs))
        self.idleTimeout = float(idleTimeout)
        self.heartbeat = max(0.1, float(heartbeat))
        self.pollInterval = max(0.05, float(pollInterval))
        self.workDir = Path(workDir or Path.cwd() / "jobagent").resolve()
        self.maxWallClock = float(maxWallClock)
        self.keepWorkDirs = keepWorkDirs
        #: Prometheus metrics (``dirac-job-agent --metrics-port``), None when off.
        self.metrics = metrics
        options = clientOptions or {}
        self.matcher = MatcherClient(**options)
        self.state = JobStateUpdateClient(**options)
        self.sandboxes = SandboxStoreClient(**options)
        self._reporter = _Reporter(self.state)
        #: sha256 -> name of the output sandboxes this agent stored (assigned by name).
        self._stored: dict[str, str] = {}
        self._clientOptions = options
        self._dm: Any = None  # a DataManager, made for the first job with data
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._running: dict[int, _Payload] = {}
        self._threads: list[threading.Thread] = []
        self.started = 0
        self.results: dict[int, str] = {}

    # --------------------------------------------------------------- control
    def stop(self, reason: str = "Job agent stopped") -> None:
        """No new jobs; end the running payloads (their jobs end Failed with ``reason``)."""
        self._stopping.set()
        self._wake.set()
        with self._lock:
            payloads = list(self._running.values())
        for payload in payloads:
            payload.terminate(reason)

    def resourceDescription(self) -> dict[str, Any]:
        """What this agent offers the Matcher."""
        with self._lock:
            free = self.slots - len(self._running)
        return {"Site": self.site, "CPUTime": self.cpuTime, "Tag": list(self.tags),
                "NumberOfProcessors": max(1, free)}

    def run(self) -> int:
        """Serve until stopped, ``maxJobs`` reached or idle for ``idleTimeout``; exit code."""
        self.workDir.mkdir(parents=True, exist_ok=True)
        idle_since = time.monotonic()
        failures = 0
        while not self._stopping.is_set():
            with self._lock:
                busy = len(self._running)
            if self.maxJobs and self.started >= self.maxJobs:
                if busy == 0:
                    break
                self._wait(self.pollInterval)
                continue
            if busy >= self.slots:
                self._wait(self.pollInterval)
                idle_since = time.monotonic()
                continue
            wanted = self.slots - busy
            if self.maxJobs:
                wanted = min(wanted, self.maxJobs - self.started)
            matched, refused = False, False
            for result in self._requestJobs(wanted):
                if result["OK"]:
                    failures = 0
                    idle_since = time.monotonic()
                    self._start(result["Value"])
                    matched = True
                elif result.get("Errno") != EWMSNOMATCH:
                    failures += 1
                    log.warning("requestJob failed: %s", result["Message"])
                    if failures >= 3 and result.get("Errno") == 1111:  # ENOAUTH: for good
                        refused = True
            if refused:
                log.error("the Matcher refuses this agent (is its group GenericPilot?)")
                self.stop()
                break
            if matched:
                continue
            if busy == 0 and self.idleTimeout and \
                    time.monotonic() - idle_since >= self.idleTimeout:
                log.info("idle for %gs: stopping", self.idleTimeout)
                break
            self._wait(self.pollInterval)
        for thread in list(self._threads):
            thread.join()
        self._reporter.close()
        return 0

    def _requestJobs(self, count: int) -> list[DReturnType]:
        """Ask the Matcher for ``count`` jobs: ``S_OK(match)`` for each job matched, or
        one S_ERROR (``EWMSNOMATCH``: nothing to run).  Several slots are filled by one
        ``requestJobs`` call (one round trip and one transaction in the Matcher, not one
        per slot), each match offering what a request after the previous ones would:
        the free processors, one fewer per job matched before it.
        """
        description = self.resourceDescription()
        asked = time.monotonic()
        if count <= 1:
            results = [self.matcher.requestJob(description)]
        else:
            bulk = self.matcher.requestJobs(description, count)
            if not bulk["OK"]:
                results = [bulk]
            elif not bulk["Value"]:
                results = [S_ERROR(EWMSNOMATCH, "No match found")]
            else:
                results = [S_OK(match) for match in bulk["Value"]]
        if self.metrics is not None:
            for result in results:
                self.metrics.match_request(result, time.monotonic() - asked)
        return results

    def _wait(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    def _start(self, match: dict[str, Any]) -> None:
        job_id = int(match["JobID"])
        payload = _Payload(job_id)
        with self._lock:
            self._running[job_id] = payload
        self.started += 1
        if self.metrics is not None:
            self.metrics.job_started()
        thread = threading.Thread(target=self._runJob, args=(payload, match),
                                  name=f"job-{job_id}", daemon=True)
        self._threads.append(thread)
        thread.start()

    # ------------------------------------------------------------------- a job
    @staticmethod
    def _now() -> str:
        return datetime.datetime.now(datetime.UTC).isoformat()

    def _status(self, jobID: int, status: str, minor: str, application: str = "",
                earlier: list[Status] | None = None) -> None:
        """Report a status change, and the ``earlier`` ones (status, minor, application,
        ISO time) not sent yet, in one call: fewer round trips per job."""
        if earlier:
            updates = _statusDict([*earlier, (status, minor, application, self._now())])
        else:  # dated by the server
            updates = {"": _statusUpdate(status, minor, application)}
        result = self.state.setJobStatusBulk(jobID, updates)
        if not result["OK"]:
            log.warning("job %s: setJobStatus(%s, %s): %s", jobID, status, minor,
                        result["Message"])

    def _runJob(self, payload: _Payload, match: dict[str, Any]) -> None:
        job_id = payload.jobID
        began = time.monotonic()
        try:
            outcome = self._execute(payload, match)
        except Exception as exc:  # never leave a job Running because of a bug here
            log.exception("job %s: unexpected error", job_id)
            self._status(job_id, JS.FAILED, "Job agent error", f"{type(exc).__name__}: {exc}")
            outcome = JS.FAILED
        finally:
            self._release(job_id)
        self.results[job_id] = outcome
        if self.metrics is not None:
            self.metrics.job_finished(outcome, time.monotonic() - began)
        log.info("job %s: %s", job_id, outcome)

    def _release(self, jobID: int) -> None:
        """The job's slot is free (its payload ended): the main loop may fill it while
        this job's end is still being reported."""
        with self._lock:
            self._running.pop(jobID, None)
        self._wake.set()

    def _execute(self, payload: _Payload, match: dict[str, Any]) -> str:
        job_id = payload.jobID
        try:
            ad = parseJDL(match["JDL"])
        except JDLError as exc:
            self._status(job_id, JS.FAILED, "Job agent error", f"bad JDL: {exc}")
            return JS.FAILED
        sandboxes = [e for e in ad.getListFromExpression("InputSandbox") if e.startswith("SB:")]
        lfnSandboxes = [e for e in ad.getListFromExpression("InputSandbox")
                        if e.strip().upper().startswith("LFN:")]
        initialization = (JS.RUNNING, "Job Initialization", "", self._now())
        if sandboxes or lfnSandboxes:  # a download takes time: say so now
            self._status(job_id, *initialization[:2])
        workdir = self.workDir / str(job_id)
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        try:
            for entry in sandboxes:
                got = self.sandboxes.downloadSandbox(entry, str(workdir))
                if not got["OK"]:
                    self._status(job_id, JS.FAILED, "Input Sandbox Download",
                                 got["Message"][:500])
                    return JS.FAILED
            if lfnSandboxes:
                ended = self._sandboxLFNs(job_id, ad, workdir)
                if ended:
                    return ended
            hasInputData = bool(ad.getListFromExpression("InputData"))
            if hasInputData:
                ended = self._inputData(job_id, ad, workdir, sandboxes + lfnSandboxes,
                                        initialization)
                if ended:
                    return ended
            if self._stopping.is_set():
                self._status(job_id, JS.FAILED, "Job agent stopped")
                return JS.FAILED
            # Reported once the payload has run a moment, else with the end (_runPayload)
            running = [] if sandboxes or lfnSandboxes or hasInputData else [initialization]
            running.append((JS.RUNNING, "Application", "", self._now()))
            code = self._runPayload(payload, ad, workdir, running)
            stdout = workdir / (ad.getAttributeString("StdOutput") or "std.out")
            parameters = [["ApplicationExitCode", str(code)], ["StandardOutput", _tail(stdout)]]
            if payload.killed:  # Killed by its owner: the output is kept, no status
                sandbox = self._outputSandbox(ad, workdir)
                self._release(job_id)
                self._endReport(job_id, ad, workdir, [], parameters, sandbox)
                return JS.KILLED
            # Completing has its own time in the history, reported with the end
            statuses = [*running, (JS.COMPLETING, "Uploading Output Sandbox", "", self._now())]
            uploaded = self._outputSandbox(ad, workdir)
            outputData = False
            if payload.reason:
                final: Status = (JS.FAILED, payload.reason, "", self._now())
            elif not uploaded[0]["OK"]:
                final = (JS.FAILED, "Uploading Output Sandbox",
                         uploaded[0]["Message"][:500], self._now())
            elif code != 0:
                final = (JS.FAILED, "Application Finished With Errors", f"exit code {code}",
                         self._now())
            elif ad.getListFromExpression("OutputData"):
                final, outputData = (JS.COMPLETING, "Uploading Job OutputData", "",
                                     self._now()), True
            else:
                final = (JS.DONE, "Execution Complete", "Application Finished Successfully",
                         self._now())
            if not outputData:  # (output data: the slot stays busy while they move)
                self._release(job_id)
            self._endReport(job_id, ad, workdir, [*statuses, final], parameters, uploaded)
            if outputData:
                if not self._outputData(job_id, ad, workdir, match):
                    return JS.FAILED
                self._status(job_id, JS.DONE, "Execution Complete",
                             "Application Finished Successfully")
                return JS.DONE
            return final[0]
        finally:
            if not self.keepWorkDirs:
                shutil.rmtree(workdir, ignore_errors=True)

    # ------------------------------------------------------------------ data
    def _dataManager(self) -> Any:
        if self._dm is None:
            from DIRAC.DataManagementSystem.Client.DataManager import DataManager

            self._dm = DataManager(**self._clientOptions)
        return self._dm

    @contextlib.contextmanager
    def _beating(self, jobID: int) -> Iterator[threading.Event]:
        """Heartbeats every ``heartbeat`` seconds while data move (a long transfer must
        not make the job Stalled); the event is set when a reply says Kill."""
        stop, killed = threading.Event(), threading.Event()

        def beat() -> None:
            while not stop.wait(self.heartbeat):
                reply = self.state.sendHeartBeat(jobID, {}, {})
                if reply["OK"] and "Kill" in (reply["Value"] or {}):
                    killed.set()

        thread = threading.Thread(target=beat, name=f"job-{jobID}-data-heartbeat",
                                  daemon=True)
        thread.start()
        try:
            yield killed
        finally:
            stop.set()
            thread.join()

    def _sandboxLFNs(self, jobID: int, ad: ClassAd, workdir: Path) -> str | None:
        """Download the input sandbox's ``LFN:`` files (Running / "Downloading
        InputSandbox LFN(s)", DIRAC's wording); the job's final status when it ended
        here (Failed / "Input Sandbox Download", or Killed meanwhile), else None."""
        self._status(jobID, JS.RUNNING, "Downloading InputSandbox LFN(s)")
        return self._download(jobID, "input sandbox LFNs", "Input Sandbox Download",
                              lambda: downloadSandboxLFNs(self._dataManager(), ad, workdir,
                                                          self.site))

    def _inputData(self, jobID: int, ad: ClassAd, workdir: Path, sandboxes: list[str],
                   initialization: tuple[str, str, str, str]) -> str | None:
        """Download the input data (Running / "Input Data Resolution"); the job's final
        status when it ended here (Failed, or Killed meanwhile), else None."""
        self._status(jobID, JS.RUNNING, "Input Data Resolution",
                     earlier=[] if sandboxes else [initialization])
        return self._download(jobID, "input data", "Input Data Resolution",
                              lambda: downloadInputData(self._dataManager(), ad, workdir,
                                                        self.site))

    def _download(self, jobID: int, what: str, failedMinor: str,
                  download: Callable[[], DReturnType]) -> str | None:
        """Run ``download`` with the job's heartbeats going: ``Killed`` when its owner
        killed it meanwhile, ``Failed`` / ``failedMinor`` (with the reason) when the
        download failed, else None (the job goes on)."""
        with self._beating(jobID) as killed:
            got = download()
        if killed.is_set():
            log.info("job %s: killed by its owner while its %s were downloaded", jobID, what)
            return JS.KILLED
        if not got["OK"]:
            log.info("job %s: %s: %s", jobID, what, got["Message"])
            self._status(jobID, JS.FAILED, failedMinor, got["Message"][:500])
            return JS.FAILED
        return None

    def _outputData(self, jobID: int, ad: ClassAd, workdir: Path, match: dict[str, Any]
                    ) -> bool:
        """Upload and register the output data; False when the job failed."""
        with self._beating(jobID):
            done = uploadOutputData(self._dataManager(), ad, workdir, jobID,
                                    str(match.get("Owner") or ""),
                                    str(match.get("OwnerGroup") or ""))
        if not done["OK"]:
            log.info("job %s: output data: %s", jobID, done["Message"])
            self._status(jobID, JS.FAILED, "Uploading Job OutputData", done["Message"][:500])
            return False
        self.state.setJobParameters(jobID, [["UploadedOutputData",
                                             ", ".join(done["Value"])]])
        return True

    def _command(self, ad: ClassAd, workdir: Path) -> list[str]:
        executable = str(ad.get("Executable", "")).strip()
        local = workdir / executable
        if "/" not in executable and local.is_file():
            local.chmod(local.stat().st_mode | 0o111)
            executable = str(local)
        elif not os.path.isabs(executable) and local.is_file():
            executable = str(local)
        arguments = ad.get("Arguments", "")
        return [executable, *shlex.split(str(arguments))] if arguments not in (None, "") \
            else [executable]

    def _runPayload(self, payload: _Payload, ad: ClassAd, workdir: Path,
                    running: list[Status]) -> int:
        """Run the payload to its end (limits, heartbeats, kill); its exit code.

        ``running``: the status changes not reported yet, sent when the payload has run
        :data:`RUNNING_REPORT_AFTER` seconds or before its first heartbeat, whichever
        comes first (the list is then emptied); left for the end report otherwise.
        """
        job_id = payload.jobID
        env = dict(os.environ)
        for item in ad.getListFromExpression("ExecutionEnvironment"):
            name, sep, value = item.partition("=")
            if sep and name.strip():
                env[name.strip()] = value
        env.update({"DIRACJOBID": str(job_id), "JOBID": str(job_id)})
        stdout = workdir / (ad.getAttributeString("StdOutput") or "std.out")
        stderr = workdir / (ad.getAttributeString("StdError") or "std.err")
        cpu_limit = ad.getAttributeInt("CPUTime") or DEFAULT_CPU_TIME
        wall_limit = ad.getAttributeFloat("MaxWallClockTime") or self.maxWallClock
        try:
            command = self._command(ad, workdir)
            with stdout.open("wb") as out, stderr.open("wb") as err:
                payload.process = subprocess.Popen(
                    command, cwd=workdir, env=env, stdout=out, stderr=err,
                    stdin=subprocess.DEVNULL, start_new_session=True)
        except (OSError, ValueError) as exc:
            with stderr.open("a") as err:
                err.write(f"cannot start {ad.get('Executable')!r}: {exc}\n")
            return 127
        if self._stopping.is_set():
            payload.terminate("Job agent stopped")
        started = time.monotonic()
        next_beat = started + self.heartbeat
        proc = payload.process
        watched = psutil.Process(proc.pid)
        cpu = 0.0
        memory = 0.0
        while True:
            try:
                code = proc.wait(timeout=min(0.2, self.heartbeat))
                break
            except subprocess.TimeoutExpired:
                pass
            cpu, memory = self._usage(watched, cpu, memory)
            wall = time.monotonic() - started
            if running and (wall >= RUNNING_REPORT_AFTER or time.monotonic() >= next_beat):
                reported = self.state.setJobStatusBulk(job_id, _statusDict(running))
                if not reported["OK"]:
                    log.warning("job %s: setJobStatus(Running): %s", job_id,
                                reported["Message"])
                running.clear()
            if cpu > cpu_limit:
                payload.terminate(f"CPU time limit exceeded ({cpu:.0f} s > {cpu_limit} s)")
            elif wall > wall_limit:
                payload.terminate(f"Wall clock time limit exceeded ({wall:.0f} s > "
                                  f"{wall_limit:g} s)")
            if time.monotonic() >= next_beat:
                next_beat = time.monotonic() + self.heartbeat
                reply = self.state.sendHeartBeat(
                    job_id, {"CPUConsumed": round(cpu, 2), "MemoryUsed": round(memory, 1),
                             "WallClockTime": round(wall, 2)},
                    {"StandardOutput": _tail(stdout)})
                if self.metrics is not None:
                    self.metrics.heartbeat(reply)
                if reply["OK"] and "Kill" in (reply["Value"] or {}):
                    log.info("job %s: killed by its owner", job_id)
                    payload.terminate("Job killed", killed=True)
        return code

    @staticmethod
    def _usage(process: psutil.Process, cpu: float, memory: float) -> tuple[float, float]:
        """CPU seconds (the process and its children) and resident MB; last values when
        the process is gone."""
        try:
            with process.oneshot():
                own = process.cpu_times()
                total = own.user + own.system + own.children_user + own.children_system
                rss = process.memory_info().rss
            for child in process.children(recursive=True):
                try:
                    times = child.cpu_times()
                    total += times.user + times.system
                    rss += child.memory_info().rss
                except psutil.Error:
                    continue
            return max(cpu, total), rss / 1e6
        except psutil.Error:
            return cpu, memory

    def _outputSandbox(self, ad: ClassAd, workdir: Path, cached: bool = True
                       ) -> tuple[DReturnType, bool]:
        """Store the output sandbox (stdout, stderr and the JDL's ``OutputSandbox``
        files present): ``(S_OK(name or None: no file), False)``, or ``(S_OK(name),
        True)`` when this agent stored the same content before (``cached``: not asked
        again), or ``(S_ERROR, False)``."""
        names = {ad.getAttributeString("StdOutput") or "std.out",
                 ad.getAttributeString("StdError") or "std.err"}
        present = {p.name for p in workdir.iterdir()}
        for pattern in ad.getListFromExpression("OutputSandbox"):
            names.update(fnmatch.filter(present, pattern.strip()))
        files = [workdir / n for n in sorted(names) if (workdir / n).exists()]
        if not files:
            return S_OK(None), False
        try:
            key = _contentKey(files)
        except OSError as exc:
            return S_ERROR(str(exc)), False
        if cached and key is not None:
            with self._lock:
                name = self._stored.get(key)
            if name is not None:
                return S_OK(name), True
        # the archive in the job's own directory (not a temporary directory of its own:
        # creating and removing one per job was a fifth of the agent's time)
        fd, path = tempfile.mkstemp(prefix=".dirac-sandbox-", suffix=".tar", dir=workdir)
        os.close(fd)
        archive = Path(path)
        try:
            packFiles(files, archive)
            uploaded = self.sandboxes.uploadFile(archive)
        except (OSError, ValueError) as exc:
            return S_ERROR(str(exc)), False
        finally:
            archive.unlink(missing_ok=True)
        if uploaded["OK"] and key is not None:
            with self._lock:
                self._stored[key] = uploaded["Value"]
                while len(self._stored) > STORED_SANDBOXES:
                    del self._stored[next(iter(self._stored))]  # the oldest
        return uploaded, False

    def _endReport(self, jobID: int, ad: ClassAd, workdir: Path, statuses: list[Status],
                   parameters: list[list[str]], sandbox: tuple[DReturnType, bool]) -> None:
        """Report the end of a job in one ``reportJobs`` call (shared with the other jobs
        ending meanwhile): its ``parameters``, ``statuses`` and output ``sandbox``
        (:meth:`_outputSandbox`).  Refused: with the sandbox stored again if it was
        assigned by name (the store may have removed it since), then without the
        statuses (the job changed state meanwhile, killed...: its parameters and output
        are kept, as when they were separate calls)."""
        uploaded, cached = sandbox
        report: dict[str, Any] = {"Parameters": parameters}
        if statuses:
            report["Status"] = _statusDict(statuses)
        if uploaded["OK"] and uploaded["Value"]:
            report["Sandboxes"] = [[uploaded["Value"], "Output"]]
        result = self._reporter.report(jobID, report)
        if not result["OK"] and cached:
            with self._lock:
                self._stored = {k: v for k, v in self._stored.items()
                                if v != uploaded["Value"]}
            again, _ = self._outputSandbox(ad, workdir, cached=False)
            if again["OK"] and again["Value"]:
                report["Sandboxes"] = [[again["Value"], "Output"]]
                result = self._reporter.report(jobID, report)
        if not result["OK"] and statuses:
            log.warning("job %s: end status not recorded: %s", jobID, result["Message"])
            del report["Status"]
            result = self._reporter.report(jobID, report)
        if not result["OK"]:
            log.warning("job %s: end report not recorded: %s", jobID, result["Message"])
