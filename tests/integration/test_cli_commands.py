"""The ``dirac-*`` commands, run as subprocesses (the installed console scripts) against a
real ``dirac-worker WorkloadManagement`` (SQLite JobDB) on this module's vhost.

Without a Configuration service on the vhost the caller is its broker user (``guest``).
One test starts a Configuration worker on a vhost of its own to see the Registry's
identity in ``dirac-proxy-info`` and the Setup in ``dirac-info``.
"""

from __future__ import annotations

import ast
import contextlib
import json
import os
import re
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote, urlsplit

import pika
import pytest
from diracmq.broker import topology
from diracmq_testing import (
    REPO_DIR,
    WorkerPool,
    free_closed_port,
    mask_url,
    url_user,
    url_vhost,
    url_with_vhost,
)

from .wms_conftest_helpers import broker_user

pytestmark = pytest.mark.timeout(120)

BIN = Path(sys.executable).parent
COMMANDS = [
    "dirac-wms-job-submit", "dirac-wms-job-status", "dirac-wms-job-kill",
    "dirac-wms-job-delete", "dirac-wms-job-reschedule", "dirac-wms-job-logging-info",
    "dirac-wms-job-attributes", "dirac-wms-select-jobs", "dirac-framework-ping-service",
    "dirac-proxy-info", "dirac-info",
]
UNKNOWN = 987654321  # no such job
JDL = '[ Executable = "/bin/echo"; Arguments = "hi"; JobName = "{name}"; JobGroup = "{group}"; ]'
PARAMETRIC = '[ Executable = "x"; JobName = "par-%s"; Parameters = {"a", "b", "c"}; ]'


def base_env(url: str, home: Path) -> dict[str, str]:
    """The environment of a command: only the broker URL of DIRAC's, a HOME of its own."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DIRAC_", "DIRACTEST_", "PYTHONPATH"))}
    env.update(DIRAC_BROKER_URL=url, HOME=str(home))
    return env


class CLI:
    """Runs the console scripts installed next to this Python."""

    def __init__(self, url: str, home: Path) -> None:
        missing = [c for c in COMMANDS if not (BIN / c).exists()]
        if missing:
            pytest.fail(f"console scripts {missing} are not installed in {BIN}: run "
                        f"`pip install -e .`", pytrace=False)
        self.env = base_env(url, home)
        self.cwd = home

    def __call__(self, command: str, *args: str, stdin: str | None = None,
                 env: dict[str, str | None] | None = None,
                 timeout: float = 60) -> subprocess.CompletedProcess:
        full_env = dict(self.env)
        for key, value in (env or {}).items():
            if value is None:
                full_env.pop(key, None)
            else:
                full_env[key] = value
        started = time.monotonic()
        done = subprocess.run([str(BIN / command), *args], capture_output=True, text=True,
                              env=full_env, cwd=self.cwd, timeout=timeout, input=stdin,
                              stdin=None if stdin is not None else subprocess.DEVNULL)
        done.elapsed = time.monotonic() - started  # type: ignore[attr-defined]
        return done

    def many(self, calls: list[tuple], env: dict[str, str | None] | None = None
             ) -> list[subprocess.CompletedProcess]:
        """Run ``(command, *args)`` calls concurrently; results in order.  A dict ending
        a call is its environment (instead of ``env``)."""
        def run(call: tuple) -> subprocess.CompletedProcess:
            if call and isinstance(call[-1], dict):
                return self(*call[:-1], env=call[-1])
            return self(*call, env=env)

        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(run, calls))


def ok(done: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def failed(done: subprocess.CompletedProcess, code: int = 1) -> subprocess.CompletedProcess:
    assert done.returncode == code, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done


def job_ids(stdout: str) -> list[int]:
    return [int(n) for n in re.findall(r"^JobID = (\d+)$", stdout, re.MULTILINE)]


@pytest.fixture(scope="module")
def wms(module_workers, tmp_path_factory):
    """A real ``dirac-worker WorkloadManagement`` with a SQLite JobDB of its own."""
    data = tmp_path_factory.mktemp("cli-wms-data")
    with pytest.MonkeyPatch.context() as mp:  # the worker inherits os.environ
        mp.setenv("DIRAC_DATA_DIR", str(data))
        mp.setenv("DIRAC_JOBDB_URL", "")
        mp.delenv("DIRAC_CS_FILE", raising=False)
        return module_workers.start("WorkloadManagement", pythonpath=[])


@pytest.fixture(scope="module")
def cli(vhost_url, tmp_path_factory) -> CLI:
    return CLI(vhost_url, tmp_path_factory.mktemp("cli-home"))


@pytest.fixture
def jdl(tmp_path):
    """``jdl(name, text=None)``: write a JDL file (a plain job by default); its path."""
    def write(name: str, text: str | None = None, group: str = "cli") -> str:
        path = tmp_path / name
        path.write_text(text if text is not None else JDL.format(name=name, group=group))
        return str(path)
    return write


def submit(cli: CLI, *paths: str) -> list[int]:
    return job_ids(ok(cli("dirac-wms-job-submit", "-q", *paths)).stdout)


# ----------------------------------------------------------- no broker needed
def test_every_command_has_help(cli):
    """Every command is a DIRAC Script: DIRAC's help layout, DIRAC's standard switches."""
    for command, done in zip(COMMANDS, cli.many([(c, "--help") for c in COMMANDS]),
                             strict=True):
        ok(done)
        assert f"\nUsage:\n  {command} [options] ..." in done.stdout, done.stdout
        assert "\nGeneral options:\n  -o  --option <value>" in done.stdout
        for switch in ("-s  --section <value>", "-d  --debug", "--cfg=", "-h  --help"):
            assert switch in done.stdout, (command, switch)
        assert "--json" in done.stdout and "--timeout" in done.stdout
        assert "Exit status" in done.stdout, f"{command} --help says nothing of exit status"
        assert done.stderr == ""


def test_help_says_which_arguments_are_optional(cli):
    status, submit, ping = cli.many([("dirac-wms-job-status", "-h"),
                                     ("dirac-wms-job-submit", "-h"),
                                     ("dirac-framework-ping-service", "-h")])
    assert re.search(r"^  JobID: .*\(optional\)$", status.stdout, re.MULTILINE)
    assert re.search(r"^  JDLFile: ", submit.stdout, re.MULTILINE)
    assert "(optional)" not in submit.stdout.split("Arguments:")[1]
    assert re.search(r"^  Service: .*\(optional\)$", ping.stdout, re.MULTILINE)


USAGE_ERRORS = [
    (("dirac-wms-job-status",), "no job ID given"),
    (("dirac-wms-job-status", "abc"), "invalid job ID 'abc'"),
    (("dirac-wms-job-status", "0"), "invalid job ID '0'"),
    (("dirac-wms-job-status", "--file", "/nonexistent/ids.txt"), "cannot read job IDs"),
    (("dirac-wms-job-kill",), "no job ID given"),
    (("dirac-wms-job-delete", "1,x"), "invalid job ID 'x'"),
    (("dirac-wms-job-reschedule", "--bogus", "1"), "option --bogus not recognized"),
    (("dirac-wms-job-logging-info", "1", "--timeout", "0"), "must be positive"),
    (("dirac-wms-job-attributes", "1.5"), "invalid job ID '1.5'"),
    (("dirac-wms-job-submit",), "not all mandatory arguments are defined"),
    (("dirac-wms-job-submit", "-", "-"), "stdin ('-') can be given only once"),
    (("dirac-wms-select-jobs", "--Date", "2024-13-01"), "not a date in YYYY-MM-DD format"),
    (("dirac-wms-select-jobs", "--Status", "Runing"), "unknown job status Runing"),
    (("dirac-wms-select-jobs", "--Maximum", "-1"), "must be 0 (all) or more"),
    (("dirac-framework-ping-service",), "not all mandatory arguments are defined"),
    (("dirac-framework-ping-service", "A", "B", "C"), "unexpected arguments: C"),
    (("dirac-framework-ping-service", "bad name", "X"), "invalid service name"),
    (("dirac-proxy-info", "--service", "NoSlash"), "invalid service name"),
    (("dirac-info", "extra"), "unexpected arguments: extra"),
    (("dirac-info", "-o", "NoEquals"), "-o expects a option=value argument"),
]


def test_usage_errors_exit_2_before_contacting_the_broker(cli):
    """Bad arguments: exit 2 at once with DIRAC's message and the help on stdout (the
    broker is unreachable here: a command that tried to connect would exit 1, later)."""
    nowhere = f"amqp://guest:guest@127.0.0.1:{free_closed_port()}/%2F"
    results = cli.many([argv for argv, _ in USAGE_ERRORS], env={"DIRAC_BROKER_URL": nowhere})
    for (argv, message), done in zip(USAGE_ERRORS, results, strict=True):
        if argv[1:2] == ("-o",):  # a standard switch's callback: DIRAC's own failure, exit 1
            assert done.returncode == 1, (argv, done.returncode, done.stdout)
            assert "There were errors when loading configuration" in done.stdout
            assert message in done.stdout
            continue
        assert done.returncode == 2, (argv, done.returncode, done.stdout, done.stderr)
        first = done.stdout.splitlines()[0]
        assert first.startswith("Error when parsing command line arguments: "), done.stdout
        assert message in first, (argv, first)
        assert f"\nUsage:\n  {argv[0]} [options]" in done.stdout
        assert done.stderr == "", (argv, done.stderr)


def test_an_unreachable_broker_fails_quickly_and_clearly(cli, jdl):
    nowhere = f"amqp://guest:guest@127.0.0.1:{free_closed_port()}/%2F"
    env = {"DIRAC_BROKER_URL": nowhere, "DIRAC_BROKER_CONNECT_TIMEOUT": "1"}
    path = jdl("one.jdl")
    calls = [("dirac-wms-job-submit", path), ("dirac-wms-job-status", "1"),
             ("dirac-wms-job-kill", "1"), ("dirac-wms-job-delete", "1"),
             ("dirac-wms-job-reschedule", "1"), ("dirac-wms-job-logging-info", "1"),
             ("dirac-wms-job-attributes", "1"), ("dirac-wms-select-jobs",),
             ("dirac-framework-ping-service", "WorkloadManagement", "JobMonitoring"),
             ("dirac-proxy-info",), ("dirac-info",)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        # with nothing configured: the commands' own bound on connecting (5 s)
        default_run = pool.submit(cli, "dirac-wms-job-status", "1",
                                  env={"DIRAC_BROKER_URL": nowhere}, timeout=30)
        results = list(pool.map(lambda call: cli(*call, env=env, timeout=30), calls))
        default = default_run.result()
    # "within 1s" says which bound was used; the wall-clock limits only prove that nothing
    # waits for a call timeout (60 s) -- they are loose for busy test machines
    for call, done in zip(calls, results, strict=True):
        assert done.returncode == 1, (call, done.returncode, done.stderr)
        assert done.elapsed < 25, (call, done.elapsed)
        assert "ERROR: cannot reach the broker: MQ connection failure ( 1142 :" in done.stderr
        assert "within 1s" in done.stderr, done.stderr
        assert "Traceback" not in done.stderr, done.stderr
        if call[0] != "dirac-info":
            assert done.stdout == "", (call, done.stdout)
    info = results[-1].stdout
    assert re.search(r"^Broker\s+unreachable$", info, re.MULTILINE), info
    assert f"amqp://guest:***@127.0.0.1:{nowhere.split(':')[3]}" in info
    assert default.returncode == 1 and "within 5s" in default.stderr, default.stderr
    assert default.elapsed < 30


# ------------------------------------------------------------------ WMS jobs
def test_submit_status_attributes_and_logging_info(wms, cli, jdl, vhost_url):
    done = ok(cli("dirac-wms-job-submit", jdl("single.jdl", group="cli-single")))
    [job] = job_ids(done.stdout)
    assert done.stdout == f"JobID = {job}\n"
    assert done.stderr == ""  # one plain job: no progress lines

    status, status_json, attrs, attrs_json, logging, logging_json = map(ok, cli.many([
        ("dirac-wms-job-status", str(job)), ("dirac-wms-job-status", str(job), "--json"),
        ("dirac-wms-job-attributes", str(job)),
        ("dirac-wms-job-attributes", str(job), "--json"),
        ("dirac-wms-job-logging-info", str(job)),
        ("dirac-wms-job-logging-info", str(job), "--json")]))
    assert status.stdout == f"JobID={job} Status=Received; MinorStatus=Job accepted; Site=ANY;\n"
    assert json.loads(status_json.stdout) == {
        str(job): {"Status": "Received", "MinorStatus": "Job accepted", "Site": "ANY"}}

    attributes = ast.literal_eval(attrs.stdout)
    assert attributes["JobID"] == str(job) and attributes["JobName"] == "single.jdl"
    assert attributes["Owner"] == url_user(vhost_url) and attributes["JobGroup"] == "cli-single"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", attributes["SubmissionTime"])
    native = json.loads(attrs_json.stdout)
    assert native[str(job)]["JobID"] == job and native[str(job)]["Status"] == "Received"
    # one form of datetime in every --json output: ISO 8601 with its offset
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00",
                        native[str(job)]["SubmissionTime"]), native[str(job)]

    table = logging.stdout.splitlines()
    assert table[0].split() == ["Status", "MinorStatus", "ApplicationStatus", "DateTime",
                                "Source"]
    assert set(table[1]) == {"="}
    assert re.fullmatch(r"Received\s+Job accepted\s+Unknown\s+\d{4}-\d\d-\d\d "
                        r"\d\d:\d\d:\d\d\s+JobManager", table[2]), table
    records = json.loads(logging_json.stdout)
    [record] = records[str(job)]
    assert (record["Status"], record["Source"]) == ("Received", "JobManager")
    assert record["DateTime"].startswith(attributes["SubmissionTime"][:10])
    assert record["DateTime"].endswith("+00:00"), record


def test_bulk_submission_shows_progress(wms, cli, jdl, tmp_path):
    paths = [jdl(f"bulk{n}.jdl") for n in range(3)] + [jdl("param.jdl", PARAMETRIC)]
    out = tmp_path / "ids.txt"
    done = ok(cli("dirac-wms-job-submit", *paths, "--file", str(out)))
    ids = job_ids(done.stdout)
    assert len(ids) == 6 and len(set(ids)) == 6
    progress = done.stderr.splitlines()
    for n in range(3):
        assert f"[{n + 1}/4] {paths[n]} -> JobID = {ids[n]}" in progress, done.stderr
    assert f"[4/4] {paths[3]}: submitting a parametric job of 3 jobs..." in progress
    assert (f"[4/4] {paths[3]} -> JobIDs = {ids[3]}, {ids[4]}, {ids[5]} (3 jobs)"
            in progress), done.stderr
    assert progress[-1] == "Submitted 6 job(s) from 4 of 4 JDL files"
    assert out.read_text().split() == [str(i) for i in ids]
    # the parametric jobs exist, named after their parameter
    names = json.loads(ok(cli("dirac-wms-job-attributes", *map(str, ids[3:]), "--json")).stdout)
    assert sorted(a["JobName"] for a in names.values()) == ["par-a", "par-b", "par-c"]

    quiet = ok(cli("dirac-wms-job-submit", "-q", paths[0], paths[3]))
    assert len(job_ids(quiet.stdout)) == 4 and quiet.stderr == ""
    as_json = json.loads(ok(cli("dirac-wms-job-submit", "--json", "-q", *paths[2:])).stdout)
    assert as_json["Failed"] == {} and len(as_json["Successful"][paths[3]]) == 3


def test_one_parametric_jdl_from_stdin_shows_progress(wms, cli):
    done = ok(cli("dirac-wms-job-submit", "-", stdin=PARAMETRIC))
    ids = job_ids(done.stdout)
    assert len(ids) == 3
    assert done.stderr.splitlines() == [
        "[1/1] <stdin>: submitting a parametric job of 3 jobs...",
        f"[1/1] <stdin> -> JobIDs = {', '.join(map(str, ids))} (3 jobs)"]


def test_submission_failures_are_listed_and_exit_1(wms, cli, jdl, tmp_path):
    good = jdl("good.jdl")
    bad = jdl("bad.jdl", '[ Executable = "x"; Arguments = "unterminated ]')
    missing = str(tmp_path / "missing.jdl")
    done = failed(cli("dirac-wms-job-submit", good, bad, missing))
    [job] = job_ids(done.stdout)
    lines = done.stderr.splitlines()
    assert f"[1/3] {good} -> JobID = {job}" in lines
    assert any(line.startswith(f"[2/3] {bad} -> ERROR: Invalid job description ( 1501 :")
               for line in lines), done.stderr
    assert f"[3/3] {missing} -> ERROR: cannot read it: No such file or directory" in lines
    assert lines[-1] == "Submitted 1 job(s) from 1 of 3 JDL files; 2 failed"

    single = failed(cli("dirac-wms-job-submit", bad))
    assert single.stdout == ""
    assert single.stderr.startswith(f"ERROR: {bad}: Invalid job description ( 1501 : "
                                    f"unterminated string"), single.stderr


def test_unknown_jobs_exit_1_with_a_message(wms, cli, jdl):
    [job] = submit(cli, jdl("known.jdl"))
    commands = ("dirac-wms-job-status", "dirac-wms-job-attributes",
                "dirac-wms-job-logging-info", "dirac-wms-job-kill", "dirac-wms-job-delete",
                "dirac-wms-job-reschedule")
    *alone, mixed, mixed_json = cli.many([
        *((command, str(UNKNOWN)) for command in commands),
        ("dirac-wms-job-status", str(job), str(UNKNOWN)),
        ("dirac-wms-job-status", str(job), str(UNKNOWN), "--json")])
    for command, done in zip(commands, alone, strict=True):
        failed(done)
        assert done.stdout == "", (command, done.stdout)
        assert done.stderr == f"ERROR: Job {UNKNOWN} not found\n", (command, done.stderr)
    assert failed(mixed).stdout.startswith(f"JobID={job} Status=Received;")
    assert mixed.stderr == f"ERROR: Job {UNKNOWN} not found\n"
    assert list(json.loads(failed(mixed_json).stdout)) == [str(job)]


@contextlib.contextmanager
def user_in_background(vhost: str, prefix: str) -> Iterator[Future]:
    """A real broker user made (rabbitmqctl is slow) while the test goes on: a future of
    ``(name, password)``; deleted at the end."""
    with contextlib.ExitStack() as stack, ThreadPoolExecutor(max_workers=1) as maker:
        future = maker.submit(lambda: stack.enter_context(broker_user(vhost, prefix)))
        try:
            yield future
        finally:
            future.exception()  # wait: the user is deleted only once made


def user_url(vhost_url: str, user: tuple[str, str]) -> str:
    name, password = user
    vhost = url_vhost(vhost_url)
    return url_with_vhost(f"amqp://{quote(name)}:{password}@127.0.0.1:5672/", vhost)


def test_kill_delete_reschedule_report_per_job(wms, cli, jdl, settings, vhost_url):
    from DIRAC.WorkloadManagementSystem.Client.JobStateUpdateClient import (
        JobStateUpdateClient,
    )

    with user_in_background(url_vhost(vhost_url), "clibob") as bob:
        a, b, c = submit(cli, jdl("a.jdl"), jdl("b.jdl"), jdl("c.jdl"))
        updater = JobStateUpdateClient(settings=settings)
        for status in ("Checking", "Waiting"):
            assert updater.setJobStatus(c, status, "by the test", "test")["OK"]

        rescheduled, refused = cli.many([("dirac-wms-job-reschedule", str(c)),
                                         ("dirac-wms-job-reschedule", str(a))])
        assert ok(rescheduled).stdout == f"Rescheduled jobs {c}\n"
        assert failed(refused).stdout == ""
        assert refused.stderr.startswith(f"ERROR: job {a}: Job status error ( 1505 : "
                                         f"Transition from Received to Rescheduled is not "
                                         f"allowed"), refused.stderr

        status, partial = cli.many([("dirac-wms-job-status", str(c)),
                                    ("dirac-wms-job-kill", str(a), f"{b},{UNKNOWN}")])
        assert "Status=Received; MinorStatus=Job Rescheduled;" in ok(status).stdout
        assert failed(partial).stdout == f"Killed jobs {a},{b}\n"
        assert partial.stderr == f"ERROR: Job {UNKNOWN} not found\n"

        # another broker user is another DIRAC user: not the owner of these jobs
        again, mixed, other = cli.many([
            ("dirac-wms-job-kill", str(a), "--json"),
            ("dirac-wms-job-reschedule", str(a), str(UNKNOWN), "--json"),
            ("dirac-wms-job-delete", str(c),
             {"DIRAC_BROKER_URL": user_url(vhost_url, bob.result())})])
    assert json.loads(ok(again).stdout) == {"Successful": [a], "Failed": {}}
    report = json.loads(failed(mixed).stdout)
    assert report["Successful"] == [] and set(report["Failed"]) == {str(a), str(UNKNOWN)}
    assert "Transition from Killed to Rescheduled" in report["Failed"][str(a)]
    assert failed(other).stdout == ""
    assert other.stderr == f"ERROR: job {c}: not authorized (you are not its owner)\n"

    ids = "\n".join(f"{a}, {b}\n{c}" for _ in range(2))  # repeated: each job once
    done = ok(cli("dirac-wms-job-delete", "--file", "-", stdin=ids))
    assert done.stdout == f"Deleted jobs {a},{b},{c}\n"
    statuses = json.loads(ok(cli("dirac-wms-job-status", "-f", "-", "--json", stdin=ids)).stdout)
    assert {s["Status"] for s in statuses.values()} == {"Deleted"} and len(statuses) == 3


def test_select_jobs_and_status_of_a_job_group(wms, cli, jdl, vhost_url):
    me = url_user(vhost_url)
    group = f"cli-select-{os.getpid()}"
    first, second = submit(cli, jdl("s1.jdl", group=group), jdl("s2.jdl", group=group))
    today = time.strftime("%Y-%m-%d", time.gmtime())

    select = "dirac-wms-select-jobs"
    done, limited, as_json, none, nowhere, status, empty = map(ok, cli.many([
        (select, "--JobGroup", group),
        (select, "--JobGroup", group, "--Maximum", "1"),
        (select, "--JobGroup", group, "--Status", "received,Waiting", "--Owner", me,
         "--json"),
        (select, "--JobGroup", group, "--Date", "2999-01-01"),
        (select, "--JobGroup", group, "--Site", "Nowhere"),
        ("dirac-wms-job-status", "--JobGroup", group),
        (select, "--JobGroup", "no-such-group", "--json")]))
    assert done.stdout == (f"==> Selected 2 jobs with conditions: Date = {today}, "
                           f"JobGroup = {group}\n{first},{second}\n")
    assert limited.stdout.startswith("==> Selected 2 jobs (first 1 shown) with conditions")
    assert limited.stdout.endswith(f"\n{first}\n")
    assert json.loads(as_json.stdout) == {
        "JobIDs": [first, second], "Total": 2, "Date": today,
        "Conditions": {"JobGroup": group, "Status": ["Received", "Waiting"], "Owner": me}}
    assert none.stdout.startswith("==> Selected 0 jobs with conditions: Date = 2999-01-01")
    assert none.stdout.count("\n") == 1
    assert nowhere.stdout.startswith("==> Selected 0 jobs")
    assert [line.split()[0] for line in status.stdout.splitlines()] == [
        f"JobID={first}", f"JobID={second}"]
    assert json.loads(empty.stdout)["JobIDs"] == []

    no_group = failed(cli("dirac-wms-job-status", "--JobGroup", "no-such-group"))
    assert no_group.stderr == "ERROR: No jobs in job group no-such-group\n"


# --------------------------------------------------------- framework commands
def test_ping_service(wms, cli, vhost_url):
    ping = "dirac-framework-ping-service"
    done, as_json, dips, nothing = cli.many([
        (ping, "WorkloadManagement", "JobMonitoring"),
        (ping, "WorkloadManagement/JobManager", "--json"),
        (ping, "dips://host:9130/WorkloadManagement/JobStateUpdate", "--json"),
        (ping, "Nope", "Nothing")])
    answer = ast.literal_eval(ok(done).stdout)
    assert answer["name"] == "WorkloadManagement/JobMonitoring"
    assert {"version", "time", "service uptime", "host uptime", "load", "hostname", "pid",
            "counters"} <= set(answer)
    as_json = json.loads(ok(as_json).stdout)
    assert as_json["name"] == "WorkloadManagement/JobManager" and "T" in as_json["time"]
    assert as_json["time"].endswith("+00:00"), as_json["time"]
    assert json.loads(ok(dips).stdout)["name"] == "WorkloadManagement/JobStateUpdate"
    assert failed(nothing).stdout == ""
    assert nothing.stderr.startswith("ERROR: Nope/Nothing: No such service queue ( 1143 :")
    # a queue that exists but that no worker consumes (any more)
    service = f"T{uuid.uuid4().hex[:12]}/Gone"
    conn = pika.BlockingConnection(pika.URLParameters(vhost_url))
    try:
        queue = topology.declare_service_queue(conn.channel(), service)
        gone = failed(cli("dirac-framework-ping-service", service, "--timeout", "1"))
        conn.channel().queue_delete(queue)
    finally:
        conn.close()
    assert f"ERROR: {service}: No worker consumed the request ( 1144 :" in gone.stderr, \
        gone.stderr


def test_proxy_info_without_a_configuration_service(wms, cli, vhost_url):
    me = url_user(vhost_url)
    done, as_json, nope = cli.many([
        ("dirac-proxy-info",),
        ("dirac-proxy-info", "--json", "--service", "WorkloadManagement/JobManager"),
        ("dirac-proxy-info", "--service", "Nope/Nope")])
    rows = dict(line.split(" : ", 1) for line in ok(done).stdout.splitlines())
    rows = {k.strip(): v for k, v in rows.items()}
    assert rows["username"] == me and rows["broker user"] == me
    assert rows["service"] == "WorkloadManagement/JobMonitoring"
    as_json = json.loads(ok(as_json).stdout)
    assert as_json["username"] == me and as_json["service"] == \
        "WorkloadManagement/JobManager"
    assert failed(nope).stderr.startswith("ERROR: Nope/Nope: No such service queue ( 1143 :")


def test_dirac_info_shows_the_settings_in_use(wms, cli, vhost_url, tmp_path):
    config = tmp_path / "dirac.toml"
    config.write_text(f'[broker]\nurl = "{vhost_url}"\nrpc_timeout = 42\n')
    done, as_json = cli.many([
        ("dirac-info", {"DIRAC_BROKER_URL": None, "DIRAC_CONFIG_FILE": str(config)}),
        ("dirac-info", "--json", "--timeout", "7")])
    ok(done)
    rows = {line[:20].strip(): line[20:].strip() for line in done.stdout.splitlines()[2:]}
    assert rows["Config file"] == str(config)
    assert rows["Broker URL"] == mask_url(vhost_url)
    assert rows["Broker"] == "reachable" and rows["RPC timeout"] == "42 s"
    assert rows["ConfigurationServer"] == "none (no Configuration service on this broker)"
    assert rows["DIRAC version"].startswith("v9")
    password = urlsplit(vhost_url).password
    assert not password or f":{password}@" not in done.stdout + done.stderr
    as_json = json.loads(ok(as_json).stdout)
    assert as_json["Config file"] == "none (defaults, environment)"
    assert as_json["RPC timeout"] == "7 s" and as_json["Setup"] == "Unknown"


def test_identity_and_setup_from_a_configuration_service(cli, fresh_vhost_url, tmp_path):
    """With a Configuration worker, proxy-info asks it, and the Registry says who we are."""
    cs = tmp_path / "cs.toml"
    cs.write_text(textwrap.dedent('''\
        [DIRAC]
        Setup = "CLI-Test"
        VirtualOrganization = "clivo"

        [Registry]
        DefaultGroup = "cli_user"

        [Registry.Users.cliadmin]
        BrokerUser = "{user}"
        DN = "/DC=org/CN=CLI Admin"
        Groups = ["cli_user"]

        [Registry.Groups.cli_user]
        Properties = ["NormalUser"]
        ''').replace("{user}", url_user(fresh_vhost_url)))
    pool = WorkerPool(fresh_vhost_url, tmp_path, True)
    try:
        with user_in_background(url_vhost(fresh_vhost_url), "clinobody") as nobody:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("DIRAC_CS_FILE", str(cs))
                pool.start("Configuration", pythonpath=[])
            me, text, info, stranger = cli.many([
                ("dirac-proxy-info", "--json"), ("dirac-proxy-info",), ("dirac-info", "--json"),
                # a broker user the Registry does not know: 'anonymous', and exit 1
                ("dirac-proxy-info", {"DIRAC_BROKER_URL": user_url(fresh_vhost_url,
                                                                   nobody.result())})],
                env={"DIRAC_BROKER_URL": fresh_vhost_url})
        identity = json.loads(ok(me).stdout)
        assert identity == {"username": "cliadmin", "group": "cli_user",
                            "properties": ["NormalUser"], "DN": "/DC=org/CN=CLI Admin",
                            "brokerUser": url_user(fresh_vhost_url),
                            "service": "Configuration/Server"}
        assert "identity     : /DC=org/CN=CLI Admin\n" in ok(text).stdout
        assert "DIRAC group  : cli_user\n" in text.stdout
        facts = json.loads(ok(info).stdout)
        assert (facts["Setup"], facts["VirtualOrganization"]) == ("CLI-Test", "clivo")
        assert facts["ConfigurationServer"].startswith("Configuration/Server (version ")
        assert "username     : anonymous\n" in failed(stranger).stdout
        assert (f"broker user {nobody.result()[0]!r} is not a registered DIRAC user"
                in stranger.stderr)
    finally:
        problems = pool.stop_all()
        assert not problems, problems


def test_docs_show_each_command_s_usage_line(cli):
    """docs/commands.md gives each command's synopsis as its --help's Usage line."""
    docs = (REPO_DIR / "docs" / "commands.md").read_text()
    for command, done in zip(COMMANDS, cli.many([(c, "-h") for c in COMMANDS]), strict=True):
        usage = done.stdout.split("\nUsage:\n", 1)[1].splitlines()[0].strip()
        assert usage.startswith(command), (command, usage)
        assert f"\n{usage}\n" in docs, f"docs/commands.md lacks {command}'s usage: {usage}"


def test_o_options_reach_the_configuration(wms, cli):
    """DIRAC's -o sets a configuration option for the command (dirac-info shows Setup)."""
    done = ok(cli("dirac-info", "-o", "/DIRAC/Setup=FromCommandLine", "--json"))
    assert json.loads(done.stdout)["Setup"] == "FromCommandLine"
