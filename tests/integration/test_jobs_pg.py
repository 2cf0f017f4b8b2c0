"""The job path on PostgreSQL, driven by the commands, as one broker user with two groups.

This is the set-up ./demo.sh uses: one broker user, in the Registry with a user group
(``dirac_user``) and a pilot group (``dirac_pilot``, ``GenericPilot``); the job agent
runs with ``DIRAC_GROUP=dirac_pilot``.  The JobDB, task queues and sandbox records are
in a fresh PostgreSQL database (skipped, saying why, when no server answers).
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from diracmq_testing import WorkerPool, environment, wait_until

from .wms_conftest_helpers import fresh_postgres_database

pytestmark = pytest.mark.timeout(300)

BIN = Path(sys.executable).parent

CS = """\
[Registry]
DefaultGroup = ["dirac_user"]

[Registry.Users.me]
BrokerUser = "{user}"
Groups = ["dirac_user", "dirac_pilot"]

[Registry.Groups.dirac_user]
Properties = ["NormalUser"]

[Registry.Groups.dirac_pilot]
Properties = ["GenericPilot"]
"""


@pytest.fixture(scope="module")
def pg(vhost_url, private_vhost, tmp_path_factory):
    """WorkloadManagement and Optimizers workers on a fresh PostgreSQL JobDB."""
    from diracmq_testing import url_user

    workdir = tmp_path_factory.mktemp("jobs-pg")
    cs = workdir / "cs.toml"
    cs.write_text(CS.format(user=url_user(vhost_url)))
    with fresh_postgres_database("jobs") as url:
        env = {"DIRAC_CS_FILE": str(cs), "DIRAC_JOBDB_URL": url,
               "DIRAC_DATA_DIR": str(workdir / "data"), "DIRAC_WMS_OPTIMIZER_SWEEP": "1",
               "DIRAC_WMS_MAX_PARAMETRIC_JOBS": "1000", "DIRAC_GROUP": None}
        pool = WorkerPool(vhost_url, workdir, private_vhost)
        try:
            with environment(**env):
                pool.start("WorkloadManagement", pythonpath=[])
                pool.start("Optimizers", pythonpath=[])
            yield {"url": vhost_url, "workdir": workdir}
        finally:
            problems = pool.stop_all()
            assert not problems, problems
            from DIRAC.WorkloadManagementSystem.DB import JobDB as jobdb_module

            for key, engine in list(jobdb_module._engines.items()):
                if url in key:
                    engine.dispose()


def run(pg, *argv, group="", cwd=None, timeout=120):
    env = dict(os.environ, DIRAC_BROKER_URL=pg["url"], DIRAC_GROUP=group)
    env.pop("DIRAC_CS_FILE", None)
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def job_status(pg, job_id):
    done = run(pg, "dirac-wms-job-status", str(job_id), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)[str(job_id)]["Status"]


@contextlib.contextmanager
def agent(pg, *args):
    env = dict(os.environ, DIRAC_BROKER_URL=pg["url"], DIRAC_GROUP="dirac_pilot")
    env.pop("DIRAC_CS_FILE", None)
    proc = subprocess.Popen([str(BIN / "dirac-job-agent"), "--heartbeat", "0.5", "--poll",
                             "0.2", "--workdir", str(pg["workdir"] / "agent"), *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        proc.communicate(timeout=30)


def test_commands_submit_with_a_local_sandbox_run_and_fetch_the_output(pg, tmp_path):
    (tmp_path / "data.txt").write_text("42\n")
    (tmp_path / "job.jdl").write_text(
        '[ Executable = "/bin/sh"; Arguments = "-c \'echo answer $(cat data.txt)\'";\n'
        '  JobName = "pg-commands"; InputSandbox = {"data.txt"};\n'
        '  OutputSandbox = {"std.out", "std.err"}; ]\n')
    submitted = run(pg, "dirac-wms-job-submit", str(tmp_path / "job.jdl"), "--json",
                    cwd="/")  # the sandbox file is found next to the JDL, not in the cwd
    assert submitted.returncode == 0, submitted.stderr
    (job_id,) = json.loads(submitted.stdout)["Successful"].values()
    job_id = job_id[0]
    not_yet = run(pg, "dirac-wms-job-peek", str(job_id))
    assert not_yet.returncode == 1 and "no output yet" in not_yet.stderr
    with agent(pg, "--max-jobs", "1") as proc:
        proc.wait(90)
    assert proc.returncode == 0
    assert job_status(pg, job_id) == "Done"
    peek = run(pg, "dirac-wms-job-peek", str(job_id))
    assert (peek.returncode, peek.stdout) == (0, "answer 42\n")
    out = run(pg, "dirac-wms-job-get-output", str(job_id), "--dir", str(tmp_path / "o"))
    assert out.returncode == 0, out.stderr
    assert out.stdout == f"Job output sandbox retrieved in {tmp_path / 'o' / str(job_id)}/\n"
    assert (tmp_path / "o" / str(job_id) / "std.out").read_text() == "answer 42\n"
    inp = run(pg, "dirac-wms-job-get-input", str(job_id), "--dir", str(tmp_path / "i"))
    assert inp.returncode == 0, inp.stderr
    assert (tmp_path / "i" / f"InputSandbox{job_id}" / "data.txt").read_text() == "42\n"
    missing = run(pg, "dirac-wms-job-get-output", "999999", "--dir", str(tmp_path / "m"))
    assert missing.returncode == 1 and "ERROR: job 999999" in missing.stderr
    usage = run(pg, "dirac-wms-job-get-output", "abc")
    assert usage.returncode == 2


def test_a_missing_sandbox_file_is_refused_at_submission(pg, tmp_path):
    (tmp_path / "job.jdl").write_text('[ Executable = "/bin/true"; '
                                      'InputSandbox = {"not-there.txt"}; ]')
    done = run(pg, "dirac-wms-job-submit", str(tmp_path / "job.jdl"))
    assert done.returncode == 1
    assert "input sandbox files not found" in done.stderr and "not-there.txt" in done.stderr


def test_a_parametric_bulk_runs_to_done_with_two_agents_on_postgresql(pg, tmp_path):
    (tmp_path / "bulk.jdl").write_text(
        '[ Executable = "/bin/echo"; Arguments = "job %s"; Parameters = 40;'
        '  Site = "PG.Bulk.org"; ]')
    submitted = run(pg, "dirac-wms-job-submit", str(tmp_path / "bulk.jdl"), "--json", "-q")
    assert submitted.returncode == 0, submitted.stderr
    (ids,) = json.loads(submitted.stdout)["Successful"].values()
    assert len(ids) == 40
    with agent(pg, "--site", "PG.Bulk.org", "--slots", "3", "--idle-timeout", "3"), \
            agent(pg, "--site", "PG.Bulk.org", "--slots", "3", "--idle-timeout", "3"):
        def all_done():
            listed = run(pg, "dirac-wms-job-status", *map(str, ids), "--json")
            states = {v["Status"] for v in json.loads(listed.stdout).values()}
            return states == {"Done"}
        wait_until(all_done, 120, "40 jobs Done", interval=1.0)
