"""Jobs and data, the logic: the output LFN rule, SE -> site mapping, candidate sites,
the Job API's data attributes, and the job agent's data steps against a stand-in
DataManager (tests/integration/test_jobs_data_e2e.py runs them for real)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from diracmq.broker.returnvalues import S_ERROR, S_OK

from DIRAC.Core.Utilities.SiteSEMapping import (
    getSEsForSite,
    getSiteSEMapping,
    getSitesForSE,
    sitesHoldingAll,
)
from DIRAC.DataManagementSystem.Utilities.DMSUtilities import homeOwner, isJobAgent
from DIRAC.Interfaces.API.Job import Job
from DIRAC.WorkloadManagementSystem.Agent import JobAgentData
from DIRAC.WorkloadManagementSystem.Executor.InputData import (
    inputDataLFNs,
    needsCatalogue,
    notAvailable,
    resolveInputData,
    sandboxLFNs,
)
from DIRAC.WorkloadManagementSystem.Executor.Optimizers import _Fail, jobRequirements
from DIRAC.WorkloadManagementSystem.Utilities.JDL import parseJDL
from DIRAC.WorkloadManagementSystem.Utilities.OutputData import (
    checkDataAttributes,
    getOutputLFN,
    outputSEs,
)

TREE = {"Resources": {
    "Sites": {
        "LCG": {"LCG.CERN.cern": {"SE": ["CERN-DISK", "CERN-USER"]},
                "LCG.IN2P3.fr": {"SE": "IN2P3-DISK, CERN-USER"},
                "LCG.Empty.org": {"CE": "ce.empty.org"}},
        "DIRAC": {"DIRAC.Local.local": {"SE": ["SE-LOCAL"]}}},
    "StorageElementGroups": {"SE-USER": ["CERN-USER", "IN2P3-DISK"],
                             "Tape": "T1, T2"}}}


# ------------------------------------------------------------------ LFN rule
@pytest.mark.parametrize(("entry", "path", "job", "local", "lfn"), [
    ("out.root", "", 12345, "out.root", "/lhcb/user/a/alice/12/12345/out.root"),
    ("out.root", "", 999, "out.root", "/lhcb/user/a/alice/0/999/out.root"),
    ("sub/dir/out.root", "", 7, "sub/dir/out.root", "/lhcb/user/a/alice/0/7/out.root"),
    ("out.root", "my/run", 7, "out.root", "/lhcb/user/a/alice/my/run/out.root"),
    ("out.root", "/my/run/", 7, "out.root", "/lhcb/user/a/alice/my/run/out.root"),
    ("LFN:/lhcb/user/a/alice/x/y.dat", "ignored", 7, "y.dat",
     "/lhcb/user/a/alice/x/y.dat"),
])
def test_output_lfn_rule_is_diracs(entry, path, job, local, lfn):
    assert getOutputLFN(entry, "alice", "lhcb", job, path) == (local, lfn)


@pytest.mark.parametrize(("entry", "path"), [
    ("../out", ""), ("", ""), ("out", "a/../../b"), ("LFN:relative", ""), ("LFN:/a/../b", ""),
])
def test_output_lfn_rule_refuses_what_cannot_be_an_lfn(entry, path):
    with pytest.raises(ValueError):
        getOutputLFN(entry, "alice", "lhcb", 1, path)


def test_home_owner_of_an_lfn():
    assert homeOwner("/lhcb/user/a/alice/1/1/out") == ("lhcb", "alice")
    assert homeOwner("/lhcb/user/a/alice") == ("lhcb", "alice")
    assert homeOwner("/lhcb/user/b/alice/x") is None      # wrong initial
    assert homeOwner("/lhcb/data/a/alice/x") is None
    assert homeOwner("/lhcb/user/a") is None
    assert isJobAgent({"properties": ["GenericPilot"]})
    assert not isJobAgent({"properties": ["NormalUser"]}) and not isJobAgent(None)


# ------------------------------------------------------------ SE -> site
def test_se_to_site_mapping_from_the_configuration():
    mapping = getSiteSEMapping(TREE)["Value"]
    assert mapping == {"LCG.CERN.cern": ["CERN-DISK", "CERN-USER"],
                       "LCG.IN2P3.fr": ["IN2P3-DISK", "CERN-USER"],
                       "DIRAC.Local.local": ["SE-LOCAL"]}
    assert getSitesForSE("CERN-USER", TREE)["Value"] == ["LCG.CERN.cern", "LCG.IN2P3.fr"]
    assert getSitesForSE("NOWHERE", TREE)["Value"] == []
    assert getSEsForSite("LCG.IN2P3.fr", TREE)["Value"] == ["IN2P3-DISK", "CERN-USER"]
    assert getSEsForSite("Unknown.site", TREE)["Value"] == []
    assert getSiteSEMapping({})["Value"] == {}


@pytest.mark.parametrize(("replicas", "sites"), [
    ({"/a": ["CERN-DISK"]}, ["LCG.CERN.cern"]),
    ({"/a": ["CERN-USER"]}, ["LCG.CERN.cern", "LCG.IN2P3.fr"]),
    ({"/a": ["CERN-DISK"], "/b": ["IN2P3-DISK"]}, []),               # no site has both
    ({"/a": ["CERN-DISK"], "/b": ["IN2P3-DISK", "CERN-USER"]}, ["LCG.CERN.cern"]),
    ({"/a": ["SE-USER"]}, None),                                      # at no site
    ({"/a": ["SE-USER"], "/b": ["CERN-DISK"]}, []),                   # /a readable nowhere
])
def test_sites_holding_all_the_files(replicas, sites):
    assert sitesHoldingAll(replicas, TREE) == sites


class Catalogue:
    def __init__(self, answer):
        self.answer = answer

    def getReplicasForJobs(self, lfns, allStatus=False, timeout=None):
        return self.answer


def test_resolve_input_data_shapes():
    found = S_OK({"Successful": {"/a": {"CERN-DISK": "x"}, "/b": {}},
                  "Failed": {"/c": "No such file or directory"}})
    value = resolveInputData(Catalogue(found), ["/a", "/b", "/c", "/d"], TREE)["Value"]
    assert value["Replicas"] == {"/a": ["CERN-DISK"]}
    assert value["Missing"] == {"/b": "No active replica", "/c": "No such file or directory",
                                "/d": "No such file"}
    assert value["Sites"] is None
    value = resolveInputData(Catalogue(found), ["/a"], TREE)["Value"]
    assert value["Sites"] == ["LCG.CERN.cern"] and value["Missing"] == {}
    down = resolveInputData(Catalogue(S_ERROR("timeout")), ["/a"], TREE)
    assert not down["OK"] and "file catalogue: timeout" in down["Message"]


def test_input_data_lfns_of_a_jdl():
    ad = parseJDL('[InputData = {"LFN:/a/b", "/a/b", "/c//d"};]')
    assert inputDataLFNs(ad) == ["/a/b", "/c/d"]
    with pytest.raises(ValueError):
        inputDataLFNs(parseJDL('[InputData = "relative";]'))


def test_input_sandbox_lfns_of_a_jdl():
    ad = parseJDL('[InputSandbox = {"SB:SandboxSE|/SandBox/a/x.tar", "LFN:/a/b", "lfn:/a//b",'
                  ' "LFN:/c/d.tar"}; InputData = "/e/f";]')
    assert sandboxLFNs(ad) == ["/a/b", "/c/d.tar"]
    assert needsCatalogue(ad)
    assert needsCatalogue(parseJDL('[InputSandbox = "LFN:/a/b";]'))
    assert needsCatalogue(parseJDL('[InputData = "/a/b";]'))
    assert not needsCatalogue(parseJDL('[InputSandbox = "SB:SandboxSE|/SandBox/a/x.tar";]'))
    for bad in ("LFN:relative", "LFN:/a/../b", "LFN:"):
        with pytest.raises(ValueError, match="LFN:"):
            sandboxLFNs(parseJDL(f'[InputSandbox = "{bad}";]'))


def test_input_sandbox_lfns_must_exist_but_do_not_restrict_the_sites():
    found = S_OK({"Successful": {"/data": {"CERN-DISK": "x"}, "/box": {"IN2P3-DISK": "y"}},
                  "Failed": {"/gone": "No such file or directory"}})
    asked = []

    class Asked(Catalogue):
        def getReplicasForJobs(self, lfns, allStatus=False, timeout=None):
            asked.append(list(lfns))
            return self.answer

    value = resolveInputData(Asked(found), ["/data"], TREE, sandbox=["/box", "/data"])["Value"]
    assert asked == [["/data", "/box"]]  # one call, no repeats
    assert value["Missing"] == {} and value["Sites"] == ["LCG.CERN.cern"]  # /box's site: no
    value = resolveInputData(Catalogue(found), [], TREE, sandbox=["/box"])["Value"]
    assert value["Sites"] is None and value["Replicas"] == {"/box": ["IN2P3-DISK"]}
    value = resolveInputData(Catalogue(found), ["/data"], TREE, sandbox=["/gone"])["Value"]
    assert value["Missing"] == {"/gone": "No such file or directory"}
    assert notAvailable(value["Missing"], ["/gone"]) == \
        "Input sandbox not available: LFN:/gone (No such file or directory)"
    assert notAvailable({"/x": "No such file", "/gone": "No such file"}, ["/gone"]) == \
        "Input data not available: /x (No such file); " \
        "Input sandbox not available: LFN:/gone (No such file)"


def test_job_scheduling_intersects_requested_banned_and_data_sites():
    ad = parseJDL('[Executable = "x"; Site = {"A", "B", "C"}; BannedSites = "C";]')
    assert jobRequirements(ad, ["B", "C", "D"])["Sites"] == ["B"]
    assert jobRequirements(ad, None)["Sites"] == ["A", "B"]
    with pytest.raises(_Fail, match="No candidate sites available"):
        jobRequirements(ad, ["C", "D"])
    free = parseJDL('[Executable = "x"; BannedSites = "D";]')
    assert jobRequirements(free, ["D", "E"])["Sites"] == ["E"]
    with pytest.raises(_Fail, match="is banned"):
        jobRequirements(free, ["D"])
    with pytest.raises(_Fail, match="no site holds all"):
        jobRequirements(free, [])


# ------------------------------------------------------------ the Job API
def test_job_api_data_attributes():
    job = Job()
    assert job.setExecutable("/bin/true")["OK"]
    assert job.setInputData(["/vo/a", "LFN:/vo/b"])["OK"]
    assert job.setOutputData("out1;out2", outputSE="SE-A, SE-B", outputPath="run1")["OK"]
    ad = parseJDL(job._toJDL())
    assert ad.getListFromExpression("InputData") == ["LFN:/vo/a", "LFN:/vo/b"]
    assert ad.getListFromExpression("OutputData") == ["out1", "out2"]
    assert ad.getListFromExpression("OutputSE") == ["SE-A", "SE-B"]
    assert ad["OutputPath"] == "run1"
    assert checkDataAttributes(ad) is None
    assert Job().setOutputData(["x"], outputSE=["SE-A"])["OK"]
    assert not Job().setInputData([])["OK"]
    assert not Job().setOutputData("")["OK"]


def test_output_ses_default_and_groups():
    assert outputSEs(parseJDL("[X = 1;]"), {}) == ["SE-USER"]
    assert outputSEs(parseJDL("[X = 1;]"), TREE) == ["CERN-USER", "IN2P3-DISK"]
    assert outputSEs(parseJDL('[OutputSE = {"Tape", "SE-A", "T1"};]'), TREE) == \
        ["T1", "T2", "SE-A"]


# ------------------------------------------------------- the agent's steps
class FakeDM:
    """Replicas from a dict; files 'downloaded' by writing their LFN; puts recorded."""

    def __init__(self, replicas, refuse=()):
        self.replicas = replicas
        self.refuse = set(refuse)  # SEs whose getFile / putAndRegister fail
        self.gets: list[tuple[str, str | None]] = []
        self.puts: list[tuple[str, str, str]] = []

    def getActiveReplicas(self, lfns, getUrl=True, diskOnly=False, preferDisk=False):
        lfns = [lfns] if isinstance(lfns, str) else lfns
        return S_OK({"Successful": {lfn: self.replicas[lfn] for lfn in lfns
                                    if lfn in self.replicas},
                     "Failed": {lfn: "No such file" for lfn in lfns
                                if lfn not in self.replicas}})

    def getFile(self, lfn, destinationDir="", sourceSE=None):
        self.gets.append((lfn, sourceSE))
        if sourceSE in self.refuse or (sourceSE is None and
                                       set(self.replicas[lfn]) <= self.refuse):
            return S_OK({"Successful": {}, "Failed": {lfn: "SE down"}})
        target = Path(destinationDir) / Path(lfn).name
        target.write_text(lfn)
        return S_OK({"Successful": {lfn: str(target)}, "Failed": {}})

    def putAndRegister(self, lfn, fileName, diracSE, guid=None, path=None, checksum=None,
                       overwrite=False):
        self.puts.append((lfn, Path(fileName).name, diracSE))
        if diracSE in self.refuse:
            return S_ERROR(f"putAndRegister: failed to put {lfn} to {diracSE}: full")
        return S_OK({"Successful": {lfn: {"put": 0.1, "register": 0.1}}, "Failed": {}})


def test_input_data_come_from_a_local_replica_first(tmp_path, monkeypatch):
    monkeypatch.setattr(JobAgentData, "getSEsForSite",
                        lambda site: getSEsForSite(site, TREE))
    dm = FakeDM({"/vo/a": {"CERN-DISK": "", "IN2P3-DISK": ""}, "/vo/b": {"IN2P3-DISK": ""}})
    ad = parseJDL('[InputData = {"LFN:/vo/a", "LFN:/vo/b"};]')
    assert JobAgentData.downloadInputData(dm, ad, tmp_path, "LCG.CERN.cern")["OK"]
    assert dm.gets == [("/vo/a", "CERN-DISK"), ("/vo/b", None)]
    assert (tmp_path / "a").read_text() == "/vo/a"
    # the local SE fails: any other replica is tried
    dm = FakeDM({"/vo/a": {"CERN-DISK": "", "IN2P3-DISK": ""}}, refuse={"CERN-DISK"})
    assert JobAgentData.downloadInputData(dm, parseJDL('[InputData = "/vo/a";]'), tmp_path,
                                          "LCG.CERN.cern")["OK"]
    assert dm.gets == [("/vo/a", "CERN-DISK"), ("/vo/a", None)]


def test_input_data_failures_say_why(tmp_path):
    dm = FakeDM({"/vo/a": {"X": ""}}, refuse={"X"})
    missing = JobAgentData.downloadInputData(dm, parseJDL('[InputData = {"/vo/a", "/vo/n"};]'),
                                             tmp_path, "S")
    assert not missing["OK"] and "/vo/n (No such file)" in missing["Message"]
    down = JobAgentData.downloadInputData(dm, parseJDL('[InputData = "/vo/a";]'), tmp_path, "S")
    assert not down["OK"] and "cannot download /vo/a" in down["Message"]
    same = JobAgentData.downloadInputData(dm, parseJDL('[InputData = {"/v/a", "/w/a"};]'),
                                          tmp_path, "S")
    assert not same["OK"] and "same name" in same["Message"]


def test_input_sandbox_lfns_are_downloaded_and_tarballs_unpacked(tmp_path, monkeypatch):
    import io
    import tarfile

    monkeypatch.setattr(JobAgentData, "getSEsForSite", lambda site: getSEsForSite(site, TREE))

    class TarDM(FakeDM):
        def getFile(self, lfn, destinationDir="", sourceSE=None):
            got = super().getFile(lfn, destinationDir, sourceSE)
            if lfn.endswith(".tar") and got["Value"]["Successful"]:
                with tarfile.open(Path(destinationDir) / Path(lfn).name, "w") as tar:
                    for name in ("code/run.sh", "../escape.txt"):
                        info = tarfile.TarInfo(name)
                        info.size = 3
                        tar.addfile(info, io.BytesIO(b"hi\n"))
            return got

    dm = TarDM({"/vo/code.tar": {"IN2P3-DISK": ""}, "/vo/cfg.txt": {"CERN-DISK": ""},
                "/vo/in.dat": {"CERN-DISK": ""}})
    ad = parseJDL('[InputSandbox = {"LFN:/vo/code.tar", "lfn:/vo/cfg.txt"}; '
                  'InputData = "/vo/in.dat";]')
    work = tmp_path / "job"
    work.mkdir()
    escaped = JobAgentData.downloadSandboxLFNs(dm, ad, work, "LCG.CERN.cern")
    # a member outside the directory stops the unpacking: the job fails, nothing escapes
    assert not escaped["OK"] and "cannot unpack LFN:/vo/code.tar" in escaped["Message"]
    assert not (tmp_path / "escape.txt").exists()

    class GoodTarDM(TarDM):
        def getFile(self, lfn, destinationDir="", sourceSE=None):
            got = FakeDM.getFile(self, lfn, destinationDir, sourceSE)
            if lfn.endswith(".tar"):
                with tarfile.open(Path(destinationDir) / Path(lfn).name, "w") as tar:
                    info = tarfile.TarInfo("code/run.sh")
                    info.size = 3
                    tar.addfile(info, io.BytesIO(b"hi\n"))
            return got

    work = tmp_path / "job2"
    work.mkdir()
    dm = GoodTarDM(dm.replicas)
    assert JobAgentData.downloadSandboxLFNs(dm, ad, work, "LCG.CERN.cern")["Value"] == \
        ["/vo/code.tar", "/vo/cfg.txt"]
    assert dm.gets == [("/vo/code.tar", None), ("/vo/cfg.txt", "CERN-DISK")]  # local first
    assert (work / "code" / "run.sh").read_text() == "hi\n"
    assert (work / "cfg.txt").read_text() == "/vo/cfg.txt"
    assert not (work / "in.dat").exists()  # the input data are the next step's
    nothing = parseJDL('[InputSandbox = "SB:SandboxSE|/SandBox/a/x.tar";]')
    assert JobAgentData.downloadSandboxLFNs(dm, nothing, work, "S")["Value"] == []


def test_input_sandbox_lfn_failures_say_why(tmp_path):
    dm = FakeDM({"/vo/a": {"X": ""}, "/w/a": {"X": ""}, "/vo/b": {"Y": ""}}, refuse={"X"})
    missing = JobAgentData.downloadSandboxLFNs(
        dm, parseJDL('[InputSandbox = {"LFN:/vo/b", "LFN:/vo/n"};]'), tmp_path, "S")
    assert not missing["OK"] and "input sandbox not available: /vo/n (No such file)" in \
        missing["Message"]
    down = JobAgentData.downloadSandboxLFNs(dm, parseJDL('[InputSandbox = "LFN:/vo/a";]'),
                                            tmp_path, "S")
    assert not down["OK"] and "cannot download /vo/a" in down["Message"]
    same = JobAgentData.downloadSandboxLFNs(
        dm, parseJDL('[InputSandbox = "LFN:/vo/a"; InputData = "/w/a";]'), tmp_path, "S")
    assert not same["OK"] and "same name" in same["Message"]
    (tmp_path / "b").write_text("from the SB: sandbox")
    clash = JobAgentData.downloadSandboxLFNs(dm, parseJDL('[InputSandbox = "LFN:/vo/b";]'),
                                             tmp_path, "S")
    assert not clash["OK"] and "already has a file named b" in clash["Message"]
    assert (tmp_path / "b").read_text() == "from the SB: sandbox"
    bad = JobAgentData.downloadSandboxLFNs(dm, parseJDL('[InputSandbox = "LFN:x";]'),
                                           tmp_path, "S")
    assert not bad["OK"] and "LFN:x" in bad["Message"]


def test_output_data_upload(tmp_path):
    (tmp_path / "out.root").write_text("x")
    (tmp_path / "log.txt").write_text("y")
    ad = parseJDL('[OutputData = {"out.root", "LFN:/dirac/user/a/alice/logs/log.txt"}; '
                  'OutputSE = {"SE-A", "SE-B"};]')
    dm = FakeDM({}, refuse={"SE-A"})
    done = JobAgentData.uploadOutputData(dm, ad, tmp_path, 4321, "alice", "users", {})
    assert done["OK"], done
    assert done["Value"] == {"/dirac/user/a/alice/4/4321/out.root": "SE-B",
                             "/dirac/user/a/alice/logs/log.txt": "SE-B"}
    assert [p[2] for p in dm.puts] == ["SE-A", "SE-B", "SE-A", "SE-B"]  # SE-A tried first


def test_output_data_failures_say_why(tmp_path):
    (tmp_path / "out.root").write_text("x")
    missing = JobAgentData.uploadOutputData(FakeDM({}), parseJDL('[OutputData = "nope";]'),
                                            tmp_path, 1, "alice", "users", {})
    assert not missing["OK"] and "nope was not produced" in missing["Message"]
    elsewhere = JobAgentData.uploadOutputData(
        FakeDM({}), parseJDL('[OutputData = "LFN:/dirac/user/b/bob/out.root";]'), tmp_path,
        1, "alice", "users", {})
    assert not elsewhere["OK"] and "job owner's home" in elsewhere["Message"]
    other_vo = JobAgentData.uploadOutputData(
        FakeDM({}), parseJDL('[OutputData = "LFN:/othervo/user/a/alice/out.root";]'),
        tmp_path, 1, "alice", "users", {})
    assert not other_vo["OK"] and "(/dirac/user/a/alice)" in other_vo["Message"]
    full = JobAgentData.uploadOutputData(
        FakeDM({}, refuse={"SE-A"}), parseJDL('[OutputData = "out.root"; OutputSE = "SE-A";]'),
        tmp_path, 1, "alice", "users", {})
    assert not full["OK"] and "SE-A: putAndRegister: failed to put" in full["Message"]


class FakeState:
    """The JobStateUpdate calls the agent makes, recorded; heartbeats set an event."""

    def __init__(self, kill: bool = False) -> None:
        self.beat = threading.Event()
        self.kill = kill
        self.statuses: list[dict] = []

    def setJobStatusBulk(self, jobID, updates, force=False):
        self.statuses.extend(updates.values())
        return S_OK()

    def sendHeartBeat(self, jobID, dynamicData, staticData):
        self.beat.set()
        return S_OK({"Kill": "Job is Killed"} if self.kill else {})

    def setJobParameters(self, jobID, parameters):
        return S_OK()


class SlowDM(FakeDM):
    """A download that lasts until the agent sent a heartbeat."""

    def __init__(self, state: FakeState) -> None:
        super().__init__({"/vo/a": {"SE-A": ""}})
        self.state = state

    def getFile(self, lfn, destinationDir="", sourceSE=None):
        assert self.state.beat.wait(30), "no heartbeat while the data moved"
        return super().getFile(lfn, destinationDir, sourceSE)


@pytest.mark.parametrize("kill", [False, True])
def test_the_agent_sends_heartbeats_while_input_data_move(tmp_path, kill):
    from DIRAC.WorkloadManagementSystem.Agent.JobAgent import JobAgent
    from DIRAC.WorkloadManagementSystem.Client import JobStatus as JS

    agent = JobAgent(heartbeat=0.1, workDir=tmp_path)
    agent.state = FakeState(kill=kill)  # type: ignore[assignment]
    agent._dm = SlowDM(agent.state)
    initialization = (JS.RUNNING, "Job Initialization", "", "2026-01-01T00:00:00")
    ended = agent._inputData(7, parseJDL('[InputData = "/vo/a";]'), tmp_path, [],
                             initialization)
    assert (tmp_path / "a").read_text() == "/vo/a"
    assert ended == (JS.KILLED if kill else None)
    assert agent.state.statuses[-1]["MinorStatus"] == "Input Data Resolution"



def test_status_times_with_and_without_offset_are_ordered_as_utc():
    """A status recorded with a naive time (DIRAC's UTC) and one with an offset compare;
    equal times are kept apart by a microsecond, in the order they happened."""
    from DIRAC.WorkloadManagementSystem.Agent.JobAgent import _statusDict

    updates = _statusDict([("Running", "Job Initialization", "", "2026-01-01T00:00:00"),
                           ("Running", "Application", "", "2026-01-01T00:00:00+00:00"),
                           ("Done", "Execution Complete", "", "2026-01-01T00:00:01+00:00")])
    assert list(updates) == ["2026-01-01T00:00:00+00:00", "2026-01-01T00:00:00.000001+00:00",
                             "2026-01-01T00:00:01+00:00"]
    assert [u["MinorStatus"] for u in updates.values()] == [
        "Job Initialization", "Application", "Execution Complete"]
