"""Jobs that read and write catalogued data, end to end through the real broker.

One module-wide deployment: ``dirac-worker WorkloadManagement``, ``Optimizers`` and
``DataManagement`` (SQLite JobDB and FileCatalogDB in a temporary data dir; storage
elements SE-A at site Test.A.org, SE-B at Test.B.org, SE-USER at no site, SE-TINY
with a 1 KB quota), the Registry from a file: ``alice`` and ``bob`` are users of VO
``dirac``, ``pilot`` has ``GenericPilot``, the workers' own broker user is a host (the
Optimizers worker asks the catalogue).  Job agents are ``dirac-job-agent`` processes
logged in as ``pilot``, as in test_jobs_e2e.py.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from diracmq.broker.config import Settings
from diracmq_testing import WorkerPool, url_user, url_vhost, url_with_vhost, wait_until

from DIRAC.DataManagementSystem.Client.DataManager import DataManager
from DIRAC.Interfaces.API.Job import Job
from DIRAC.Resources.Catalog.FileCatalogClient import FileCatalogClient
from DIRAC.Resources.Storage.StorageElement import StorageElement
from DIRAC.WorkloadManagementSystem.Client import JobStatus as JS

from .test_jobs_e2e import HELD_ONLY, Deployment, agents, start_system, status, wait_status
from .wms_conftest_helpers import broker_user, error, ok

pytestmark = pytest.mark.timeout(300)

BIN = Path(sys.executable).parent
HOME = "/dirac/user/a/alice"

CS = """\
[Registry]
DefaultGroup = ["users"]

[Registry.Users.alice]
BrokerUser = "{alice}"
Groups = ["users"]

[Registry.Users.bob]
BrokerUser = "{bob}"
Groups = ["users"]

[Registry.Users.pilot]
BrokerUser = "{pilot}"
Groups = ["pilots"]

[Registry.Hosts.workers]
BrokerUser = "{workers}"
Properties = ["TrustedHost"]

[Registry.Groups.users]
Properties = ["NormalUser"]
VO = "dirac"

[Registry.Groups.pilots]
Properties = ["GenericPilot"]
VO = "dirac"

[Resources.StorageElements.SE-A]
BasePath = "{data}/SE-A"

[Resources.StorageElements.SE-B]
BasePath = "{data}/SE-B"

[Resources.StorageElements.SE-USER]
BasePath = "{data}/SE-USER"

[Resources.StorageElements.SE-TINY]
BasePath = "{data}/SE-TINY"
MaxStorageSize = 0.001

[Resources.Sites.Test."Test.A.org"]
SE = ["SE-A"]

[Resources.Sites.Test."Test.B.org"]
SE = ["SE-B"]
"""

SITE_A, SITE_B = "Test.A.org", "Test.B.org"


@pytest.fixture(scope="module")
def deployment(vhost_url, private_vhost, tmp_path_factory):
    if not private_vhost:
        pytest.skip("needs rabbitmqctl (a private vhost and broker users)")
    vhost = url_vhost(vhost_url)
    workdir = tmp_path_factory.mktemp("jobsdata")
    with contextlib.ExitStack() as stack:
        names, urls, settings = {}, {}, {}
        for role in ("alice", "bob", "pilot"):
            name, password = stack.enter_context(broker_user(vhost, role))
            names[role] = name
            urls[role] = url_with_vhost(f"amqp://{quote(name)}:{password}@127.0.0.1:5672/",
                                        vhost)
            settings[role] = Settings.load(url=urls[role], rpc_timeout=30.0,
                                           connect_timeout=5.0, group="")
        cs = workdir / "cs.toml"
        cs.write_text(CS.format(**names, workers=url_user(vhost_url),
                                data=workdir / "storage"))
        env = {"DIRAC_CS_FILE": str(cs), "DIRAC_DATA_DIR": str(workdir / "data"),
               "DIRAC_JOBDB_URL": "", "DIRAC_FILECATALOGDB_URL": "",
               "DIRAC_WMS_OPTIMIZER_SWEEP": "0.5", "DIRAC_WMS_OPTIMIZER_LEASE": "3",
               "DIRAC_WMS_STALLED_TIME": "30", "DIRAC_WMS_FAILED_TIME": "30",
               "DIRAC_WMS_INPUTDATA_TIMEOUT": "3",
               "DIRAC_GROUP": None, **HELD_ONLY}
        pool = WorkerPool(vhost_url, workdir, private_vhost)
        start_system(pool, "WorkloadManagement", env)
        start_system(pool, "DataManagement", env)
        optimizers = start_system(pool, "Optimizers", env)
        try:
            yield Deployment(pool, settings, urls, workdir, env, optimizers)
        finally:
            problems = pool.stop_all()
            assert not problems, problems


def dm(deployment, who="alice") -> DataManager:
    return DataManager(settings=deployment.settings[who])


def put(deployment, tmp_path, lfn: str, se: str, text: str) -> None:
    local = tmp_path / f"put-{uuid.uuid4().hex[:6]}"
    local.write_text(text)
    done = ok(dm(deployment).putAndRegister(lfn, str(local), se))
    assert lfn in done["Successful"], done


def logging_text(dirac, job_id) -> str:
    return "\n".join(" | ".join(map(str, row)) for row in ok(dirac.getJobLoggingInfo(job_id)))


def run_agent(deployment, site, jobs=1):
    with agents(deployment, site, 1, "--max-jobs", str(jobs)) as (agent,):
        assert agent.wait(90) == 0


def test_a_job_reads_input_data_and_writes_output_data(deployment, tmp_path):
    dirac = deployment.dirac("alice")
    run = uuid.uuid4().hex[:8]
    lfn_in = f"{HOME}/{run}/input.txt"
    put(deployment, tmp_path, lfn_in, "SE-A", "catalogued input\n")
    job = Job()
    ok(job.setExecutable("/bin/sh", arguments="-c 'tr a-z A-Z < input.txt > result.txt'"))
    ok(job.setInputData([lfn_in]))
    ok(job.setOutputData(["result.txt"]))  # default OutputSE (SE-USER), default path
    job_id = ok(dirac.submitJob(job))
    waiting = wait_status(dirac, job_id, {JS.WAITING, JS.FAILED}, 60)
    assert waiting["Status"] == JS.WAITING, logging_text(dirac, job_id)
    params = ok(dirac.monitoring.getJobParameters(job_id))[job_id]
    assert params["OptimizerChain"] == "JobPath,JobSanity,InputData,JobScheduling"
    assert params["InputDataSites"] == f'["{SITE_A}"]'  # where SE-A is
    run_agent(deployment, SITE_A)
    final = status(dirac, job_id)
    assert (final["Status"], final["MinorStatus"]) == (JS.DONE, "Execution Complete"), \
        logging_text(dirac, job_id)
    assert final["Site"] == SITE_A
    steps = [(s, m) for s, m, *_ in ok(dirac.getJobLoggingInfo(job_id))]
    for expected in [(JS.CHECKING, "InputData"), (JS.RUNNING, "Input Data Resolution"),
                     (JS.RUNNING, "Application"), (JS.COMPLETING, "Uploading Job OutputData"),
                     (JS.DONE, "Execution Complete")]:
        assert expected in steps, steps
    lfn_out = f"{HOME}/{job_id // 1000}/{job_id}/result.txt"
    assert ok(dirac.getJobOutputLFNs(job_id)) == [lfn_out]
    params = ok(dirac.monitoring.getJobParameters(job_id))[job_id]
    assert params["UploadedOutputData"] == lfn_out
    # in the catalogue, in alice's name, with a replica at SE-USER
    catalogue = FileCatalogClient(settings=deployment.settings["alice"])
    replicas = ok(catalogue.getReplicas(lfn_out))["Successful"][lfn_out]
    assert list(replicas) == ["SE-USER"]
    meta = ok(catalogue.getFileMetadata(lfn_out))["Successful"][lfn_out]
    assert meta["Owner"] == "alice" and meta["OwnerGroup"] == "users"
    # readable with dirac-dms-get-file, as alice would
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIRAC_", "DIRACTEST_"))}
    env.update(DIRAC_BROKER_URL=deployment.urls["alice"], HOME=str(tmp_path))
    got = subprocess.run([str(BIN / "dirac-dms-get-file"), lfn_out, "-D", str(tmp_path / "o")],
                         env=env, capture_output=True, text=True, timeout=120,
                         stdin=subprocess.DEVNULL)
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "o" / "result.txt").read_text() == "CATALOGUED INPUT\n"
    # and with the Dirac API
    paths = ok(dirac.getJobOutputData(job_id, destinationDir=str(tmp_path / "api")))
    assert Path(paths[0]).read_text() == "CATALOGUED INPUT\n"
    # the pilot wrote it for alice: it cannot remove it, bob cannot, alice can
    assert lfn_out in ok(dm(deployment, "pilot").removeFile(lfn_out))["Failed"]
    assert lfn_out in ok(dm(deployment, "bob").removeFile(lfn_out))["Failed"]
    assert lfn_out in ok(dm(deployment, "alice").removeFile(lfn_out))["Successful"]


def test_output_path_and_se_are_honoured(deployment, tmp_path):
    dirac = deployment.dirac("alice")
    run = uuid.uuid4().hex[:8]
    job = Job()
    ok(job.setExecutable("/bin/sh", arguments="-c 'echo one > a.dat; echo two > b.dat'"))
    ok(job.setDestination(SITE_B))
    ok(job.setOutputData(["a.dat", f"LFN:{HOME}/{run}/explicit/b.dat"], outputSE="SE-B",
                         outputPath=f"runs/{run}"))
    job_id = ok(dirac.submitJob(job))
    wait_status(dirac, job_id, {JS.WAITING}, 60)
    run_agent(deployment, SITE_B)
    final = status(dirac, job_id)
    assert final["Status"] == JS.DONE, logging_text(dirac, job_id)
    lfns = ok(dirac.getJobOutputLFNs(job_id))
    assert lfns == [f"{HOME}/runs/{run}/a.dat", f"{HOME}/{run}/explicit/b.dat"]
    replicas = ok(dm(deployment).getReplicas(lfns))["Successful"]
    assert all(list(r) == ["SE-B"] for r in replicas.values()), replicas


def test_missing_input_data_fail_the_job_in_the_inputdata_optimizer(deployment):
    dirac = deployment.dirac("alice")
    missing = f"{HOME}/{uuid.uuid4().hex[:8]}/never-written.dat"
    job = Job()
    ok(job.setExecutable("/bin/true"))
    ok(job.setInputData(missing))
    job_id = ok(dirac.submitJob(job))
    final = wait_status(dirac, job_id, {JS.FAILED, JS.WAITING}, 60)
    assert (final["Status"], final["MinorStatus"]) == (JS.FAILED, "InputData optimizer")
    assert final["ApplicationStatus"].startswith("Input data not available")
    assert missing in logging_text(dirac, job_id)


def test_data_only_at_a_banned_site_fail_the_job(deployment, tmp_path):
    dirac = deployment.dirac("alice")
    lfn = f"{HOME}/{uuid.uuid4().hex[:8]}/at-b.dat"
    put(deployment, tmp_path, lfn, "SE-B", "only at B\n")
    job = Job()
    ok(job.setExecutable("/bin/true"))
    ok(job.setInputData(lfn))
    ok(job.setBannedSites([SITE_B]))
    job_id = ok(dirac.submitJob(job))
    final = wait_status(dirac, job_id, {JS.FAILED, JS.WAITING}, 60)
    assert (final["Status"], final["MinorStatus"]) == (JS.FAILED, "JobScheduling optimizer")
    assert "No candidate sites available" in final["ApplicationStatus"]
    assert SITE_B in final["ApplicationStatus"]


def test_input_data_that_cannot_be_read_fail_the_job_in_the_agent(deployment, tmp_path):
    dirac = deployment.dirac("alice")
    lfn = f"{HOME}/{uuid.uuid4().hex[:8]}/lost.dat"
    put(deployment, tmp_path, lfn, "SE-A", "soon lost\n")
    # the copy disappears from the SE's disk: the catalogue still lists the replica
    (deployment.workdir / "storage" / "SE-A" / "data" / lfn.lstrip("/")).unlink()
    job = Job()
    ok(job.setExecutable("/bin/true"))
    ok(job.setInputData(lfn))
    job_id = ok(dirac.submitJob(job))
    wait_status(dirac, job_id, {JS.WAITING}, 60)
    run_agent(deployment, SITE_A)
    final = status(dirac, job_id)
    assert (final["Status"], final["MinorStatus"]) == (JS.FAILED, "Input Data Resolution")
    assert f"cannot download {lfn}" in final["ApplicationStatus"]
    assert "Application" not in [m for _, m, *_ in ok(dirac.getJobLoggingInfo(job_id))]


def test_output_upload_failures_fail_the_job_with_the_reason(deployment):
    dirac = deployment.dirac("alice")
    too_big = Job()
    ok(too_big.setExecutable("/bin/sh", arguments="-c 'head -c 100000 /dev/zero > big.dat'"))
    ok(too_big.setDestination(SITE_A))
    ok(too_big.setOutputData("big.dat", outputSE="SE-TINY"))
    absent = Job()
    ok(absent.setExecutable("/bin/true"))
    ok(absent.setDestination(SITE_A))
    ok(absent.setOutputData("never.dat"))
    ids = [ok(dirac.submitJob(too_big)), ok(dirac.submitJob(absent))]
    for job_id in ids:
        wait_status(dirac, job_id, {JS.WAITING}, 60)
    run_agent(deployment, SITE_A, jobs=2)
    full, missing = (status(dirac, job_id) for job_id in ids)
    assert (full["Status"], full["MinorStatus"]) == (JS.FAILED, "Uploading Job OutputData")
    assert "SE-TINY" in full["ApplicationStatus"] and "quota" in full["ApplicationStatus"]
    assert (missing["Status"], missing["MinorStatus"]) == \
        (JS.FAILED, "Uploading Job OutputData")
    assert "never.dat was not produced" in missing["ApplicationStatus"]
    # nothing was registered for the failed upload
    lfn = f"{HOME}/{ids[0] // 1000}/{ids[0]}/big.dat"
    catalogue = FileCatalogClient(settings=deployment.settings["alice"])
    assert ok(catalogue.exists(lfn))["Successful"][lfn] is False
    assert error(dirac.getJobOutputLFNs(ids[0]))["Message"].startswith(
        "Parameter UploadedOutputData not found")


def test_a_job_agent_writes_only_new_files_in_homes(deployment, tmp_path):
    """The GenericPilot rule from the catalogue's and the SEs' side."""
    pilot = dm(deployment, "pilot")
    local = tmp_path / "f.dat"
    local.write_text("from the pilot\n")
    lfn = f"/dirac/user/b/bob/{uuid.uuid4().hex[:8]}/f.dat"
    assert lfn in ok(pilot.putAndRegister(lfn, str(local), "SE-A"))["Successful"]
    catalogue = FileCatalogClient(settings=deployment.settings["bob"])
    meta = ok(catalogue.getFileMetadata(lfn))["Successful"]
    assert (meta[lfn]["Owner"], meta[lfn]["OwnerGroup"]) == ("bob", "users")
    home = ok(catalogue.getFileMetadata("/dirac/user/b/bob"))["Successful"]["/dirac/user/b/bob"]
    assert (home["Owner"], home["OwnerGroup"]) == ("bob", "users")  # made for bob, by the pilot
    # not over an existing file, not outside a home, and no removal of the owner's file
    replaced = error(pilot.putAndRegister(lfn, str(local), "SE-A", overwrite=True))
    assert "Permission denied" in replaced["Message"]
    outside = error(pilot.putAndRegister("/dirac/data/f.dat", str(local), "SE-A"))
    assert "Permission denied" in outside["Message"]
    assert lfn in ok(pilot.removeFile(lfn))["Failed"]
    folder = lfn.rsplit("/", 1)[0]
    se = StorageElement("SE-A", settings=deployment.settings["pilot"])
    assert folder in ok(se.removeDirectory(folder, recursive=True))["Failed"]
    assert ok(catalogue.exists(lfn))["Successful"][lfn] == "File"
    got = ok(dm(deployment, "bob").getFile(lfn, str(tmp_path / "bob")))
    assert (tmp_path / "bob" / "f.dat").read_text() == "from the pilot\n", got
    # a normal user gets none of this
    refused = error(dm(deployment, "alice").putAndRegister(
        f"/dirac/user/b/bob/{uuid.uuid4().hex[:8]}/g.dat", str(local), "SE-A"))
    assert "Permission denied" in refused["Message"]


def test_the_dirac_api_data_methods(deployment, tmp_path):
    dirac = deployment.dirac("alice")
    folder = f"{HOME}/{uuid.uuid4().hex[:8]}"
    lfn = f"{folder}/api.dat"
    local = tmp_path / "api.dat"
    local.write_text("through the Dirac API\n")
    assert lfn in ok(dirac.addFile(lfn, str(local), "SE-A"))["Successful"]
    assert list(ok(dirac.getReplicas(lfn))["Successful"][lfn]) == ["SE-A"]
    assert lfn in ok(dirac.replicateFile(lfn, "SE-B"))["Successful"]
    assert set(ok(dirac.getReplicas([lfn]))["Successful"][lfn]) == {"SE-A", "SE-B"}
    meta = ok(dirac.getLfnMetadata(lfn))["Successful"][lfn]
    assert meta["Size"] == local.stat().st_size and meta["Owner"] == "alice"
    listing = ok(dirac.listCatalogDirectory(folder))["Successful"][folder]
    assert lfn in listing["Files"]
    got = ok(dirac.getFile(lfn, destDir=str(tmp_path / "back")))["Successful"][lfn]
    assert Path(got).read_text() == "through the Dirac API\n"
    assert lfn in ok(dirac.removeReplica(lfn, "SE-A"))["Successful"]
    assert list(ok(dirac.getReplicas(lfn))["Successful"][lfn]) == ["SE-B"]
    assert lfn in ok(dirac.removeFile(lfn))["Successful"]
    assert ok(dirac.getLfnMetadata(lfn))["Failed"][lfn]
    assert "not part of this API" in error(dirac.getAccessURL(lfn, "SE-B"))["Message"]
    assert error(dirac.getJobOutputLFNs("nope"))["Message"]


def test_an_unreachable_catalogue_holds_the_job_until_it_is_back(deployment, tmp_path):
    """Last in the module: it stops the DataManagement worker (and starts another)."""
    dirac = deployment.dirac("alice")
    lfn = f"{HOME}/{uuid.uuid4().hex[:8]}/held.dat"
    put(deployment, tmp_path, lfn, "SE-A", "held\n")
    (dms,) = [w for w in deployment.pool.workers
              if w.returncode is None and "DataManagement/FileCatalog" in w.services()]
    assert dms.stop() == 0
    job = Job()
    ok(job.setExecutable("/bin/true"))
    ok(job.setInputData(lfn))
    job_id = ok(dirac.submitJob(job))
    held = wait_until(lambda: (s := status(dirac, job_id))["ApplicationStatus"].startswith(
        "waiting for the file catalogue") and s, 60, "the InputData step to wait")
    assert (held["Status"], held["MinorStatus"]) == (JS.CHECKING, "InputData")
    start_system(deployment.pool, "DataManagement", deployment.env)
    final = wait_status(dirac, job_id, {JS.WAITING, JS.FAILED}, 60)
    assert final["Status"] == JS.WAITING, logging_text(dirac, job_id)
    assert final["ApplicationStatus"] == "Input data resolved"
    ok(dirac.killJob(job_id))

