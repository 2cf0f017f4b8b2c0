"""DIRAC-style scripts (tests/scripts_corpus/), unchanged DIRAC code, each run as a
subprocess against the real broker: a WorkloadManagement worker on this module's vhost
(no Configuration service: the caller is its broker user).  Each case compares what the
script prints and its exit status with what DIRAC's would.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from diracmq_testing import REPO_DIR, url_user

pytestmark = pytest.mark.timeout(120)

CORPUS = Path(__file__).resolve().parent.parent / "scripts_corpus"

GENERAL_OPTIONS = """
General options:
  -o  --option <value>         : Option=value to add
  -s  --section <value>        : Set base section for relative parsed options
  -c  --cert <value>           : Use server certificate to connect to Core Services
  -d  --debug                  : Set debug mode (-ddd is extra debug)
  -   --cfg=                   : Load additional config file
  -h  --help                   : Shows this help
"""

MODULE_FORM_HELP = f"""
Print the positional arguments (the older module form of Script).


Usage:
  dirac_corpus_module_form.py [options] ... Arg1 Arg2
{GENERAL_OPTIONS}
Options:
  -v  --value <value>          : a value

Arguments:
  Arg1: the first
  Arg2: the second

Example:
  $ dirac_corpus_module_form.py a b

"""

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d,\d{6}Z"


@pytest.fixture(scope="module")
def wms(module_workers, tmp_path_factory):
    data = tmp_path_factory.mktemp("corpus-wms-data")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DIRAC_DATA_DIR", str(data))
        mp.setenv("DIRAC_JOBDB_URL", "")
        mp.delenv("DIRAC_CS_FILE", raising=False)
        return module_workers.start("WorkloadManagement", pythonpath=[])


@pytest.fixture(scope="module")
def run(vhost_url, tmp_path_factory):
    home = tmp_path_factory.mktemp("corpus-home")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DIRAC_", "DIRACTEST_", "PYTHONPATH"))}
    env.update(DIRAC_BROKER_URL=vhost_url, HOME=str(home))

    def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, name, *args], cwd=CORPUS, env=env, text=True,
                              capture_output=True, timeout=90, stdin=subprocess.DEVNULL)

    return run_script


def expect(done: subprocess.CompletedProcess, code: int, stdout: str | None = None) -> None:
    assert done.returncode == code, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    if stdout is not None:
        assert done.stdout == stdout, done.stdout
    assert "Traceback" not in done.stderr, done.stderr


# ------------------------------------------------------- Script: the command line
def test_switches_with_callbacks_and_unprocessed_ones(run):
    expect(run("dirac_corpus_switches.py", "A", "-n", "3", "--raw", "--tag=x", "B"), 0,
           "pings=3 raw=True\nunprocessed=[('tag', 'x')]\nargs=['A', 'B']\n")
    # a callback's S_ERROR ends the script as DIRAC's does
    expect(run("dirac_corpus_switches.py", "-n", "x"), 1,
           "There were errors when loading configuration \n'x' is not a number of pings\n")
    unknown = run("dirac_corpus_switches.py", "--bogus")
    expect(unknown, 2)
    assert unknown.stdout.startswith("Error when parsing command line arguments: option "
                                     "--bogus not recognized\n")
    assert "\nOptions:\n  -n  --numPings <value>       : Number of pings to do\n" \
           "  -r  --raw                    : Raw output\n" in unknown.stdout


def test_single_alternative_and_list_arguments(run):
    expect(run("dirac_corpus_arguments.py", "WMS", "alice", "S1", "S2"), 0,
           "system=WMS who=alice sites=['S1', 'S2']\nflat=['WMS', 'alice', 'S1', 'S2']\n")
    missing = run("dirac_corpus_arguments.py", "WMS")
    expect(missing, 1)
    assert missing.stdout.startswith("Error when parsing command line arguments: not all "
                                     "mandatory arguments are defined.\n")
    assert "\nUsage:\n  dirac-corpus-arguments [options] ... System <User|DN> Site [Site]\n" \
        in missing.stdout
    assert "\nArguments:\n  System:  a System name\n  User:    a user name\n" \
           "  DN:      a user DN\n  Site:    a site\n" in missing.stdout


def test_argument_values_and_defaults(run):
    expect(run("dirac_corpus_values.py", "fast"), 0, "mode=fast level=low\n")
    expect(run("dirac_corpus_values.py", "slow", "high"), 0, "mode=slow level=high\n")
    refused = run("dirac_corpus_values.py", "quick")
    expect(refused, 1)
    assert refused.stdout.startswith('Error when parsing command line arguments: "quick" does '
                                     'not match the allowed values for Mode\n')
    assert "  Mode:   how to run [fast, slow]\n  Level:  how much [default: low] (optional)\n" \
        in refused.stdout


def test_declarations_dirac_refuses(run):
    expect(run("dirac_corpus_bad_declarations.py"), 0,
           "refused: The mandatory argument cannot go after the optional one.\n"
           "refused: Short switch o: is already defined!\n"
           "refused: No short or long options defined\n")


def test_o_options_sections_and_defaults(run, wms):
    expect(run("dirac_corpus_options.py", "-o", "/DIRAC/Setup=MySetup", "-o", "Shape=square",
               "-o", "/Other/Size=3"), 0,
           "setup MySetup\ncolour blue\nshape square\nsize 3\n")
    expect(run("dirac_corpus_options.py", "-s", "/Other", "-o", "Size=4"), 0,
           "setup none\ncolour none\nshape none\nsize 4\n")
    expect(run("dirac_corpus_options.py", "-s", "Other"), 1,
           "There were errors when loading configuration \n"
           "Other is not a valid section. It should start with '/'\n")


def test_module_form_usage_message_and_help(run):
    expect(run("dirac_corpus_module_form.py", "a", "-v", "1", "b"), 0, "a b {'v': '1'}\n")
    expect(run("dirac_corpus_module_form.py", "-h"), 0, MODULE_FORM_HELP)
    expect(run("dirac_corpus_module_form.py", "a"), 1, MODULE_FORM_HELP)


def test_script_decorator_names_the_command_after_its_file(run):
    expect(run("dirac_corpus_decorated.py", "4", "-S", "2"), 0,
           "refused: Short switch s: is already defined!\ndirac-corpus-decorated [0, 2, 4]\n")
    helped = run("dirac_corpus_decorated.py", "--help")
    expect(helped, 0)
    assert helped.stdout.startswith("refused: Short switch s: is already defined!\n"
                                    "\nCount to a number (a @Script() command, help from this "
                                    "docstring).\n\n\nUsage:\n  dirac-corpus-decorated "
                                    "[options] ... Number\n")


# ---------------------------------------------------------------- gLogger
def test_glogger_levels_in_a_script(run):
    expect(run("dirac_corpus_loglevels.py"), 0,
           "always\nnotice\ninfo with a variable part\nwarn\nerror\nfatal\nlevel INFO\n")
    verbose = run("dirac_corpus_loglevels.py", "-d")
    expect(verbose, 0, "always\nnotice\ninfo with a variable part\nverbose\nwarn\nerror\n"
                       "fatal\nlevel VERBOSE\n")
    headers = run("dirac_corpus_loglevels.py", "-dd").stdout.splitlines()
    assert re.fullmatch(rf"{STAMP} dirac-corpus-loglevels VERBOSE: verbose", headers[3])
    debug = run("dirac_corpus_loglevels.py", "-ddd").stdout.splitlines()
    assert re.fullmatch(rf"{STAMP} dirac-corpus-loglevels \[\d+\] DEBUG: debug", debug[4])
    assert debug[-1] == "level DEBUG"


def test_glogger_sub_loggers(run):
    done = run("dirac_corpus_sublogger.py")
    expect(done, 0)
    lines = done.stdout.splitlines()
    assert lines[:4] == ["INFO INFO False True", "VERBOSE VERBOSE True False",
                         "False VERBOSE", "from the inner logger"]
    assert lines[4] == "Framework/Agent/Cycle NOTICE: with a header"
    assert lines[5] == "True ERROR VERBOSE"


def test_dirac_exit_and_abort(run):
    expect(run("dirac_corpus_exit.py", "exit"), 3, "finally runs\n")
    aborted = run("dirac_corpus_exit.py", "abort")
    expect(aborted, 4)
    assert re.fullmatch(rf"{STAMP} Framework FATAL: Giving up: the reason\n", aborted.stdout)


# ----------------------------------------------------- clients, identity, jobs
def test_create_client(run, wms):
    expect(run("dirac_corpus_createclient.py"), 0,
           "generated: ['getJobSummary', 'getJobsStatus', 'getOwners']\n"
           "doc: getJobsStatus(jobIDs, **kwargs)\n"
           "kept own getJobs: True\n"
           "unknown job: {'OK': True, 'Value': {}}\n"
           "nobody's jobs: []\n")


def test_get_proxy_info(run, wms, vhost_url):
    user = url_user(vhost_url)
    expect(run("dirac_corpus_proxyinfo.py"), 0,
           f"username={user} validDN=True isProxy=False secondsLeft>0=True\n"
           f"identity=/CN={user}\nVO=''\n")


def test_submit_and_follow_a_job(run, wms):
    expect(run("dirac_corpus_submit.py", "corpus-job"), 0,
           "submitted corpus-job: Received (JobID key: True)\n")


def test_initialize_keywords(run, wms):
    expect(run("dirac_corpus_initialize.py"), 0,
           "positional refused: TypeError\n"
           "TypeError: security_expression cannot be used with require_auth=False\n"
           "host_credentials: host_credentials cannot apply here\n"
           "level: VERBOSE\n"
           "answer: 42\n"
           "AuthError: True\n"
           "authenticated\n")


def test_return_values(run):
    expect(run("dirac_corpus_returnvalues.py"), 0,
           "{'OK': True, 'Value': 2.0}\n"
           "Invalid job description ( 1501 : one is not allowed)\n"
           "re-raised the original: Broken('two breaks it')\n"
           "SErrorException: 1501\n"
           "{'OK': True, 'Value': [1, 2]} 0\n")


def test_job_state_machine_with_real_jobs(run, wms):
    done = run("dirac_corpus_jobstate.py")
    expect(done, 0)
    lines = done.stdout.splitlines()
    assert lines[:6] == ["Running", "Done", "Running", "False", "True", "[]"]
    assert re.fullmatch(r"Job Status Error \d+ can't move from Received to Done", lines[6])
    assert lines[7] == "Job state transition not allowed"


def test_parametric_job_expansion(run):
    expect(run("dirac_corpus_parametric.py"), 0,
           "True 3\n"
           "analysis_0 --run 10 --file a.root\n"
           "analysis_1 --run 11 --file b.root\n"
           "analysis_2 --run 12 --file c.root\n"
           "False 1501\n")


def test_ping_services(run, wms):
    done = run("dirac_corpus_ping.py", "WorkloadManagement/JobMonitoring", "Nope/Nothing")
    expect(done, 1, "WorkloadManagement/JobMonitoring: up, name "
                    "WorkloadManagement/JobMonitoring\nNope/Nothing: down No such service queue\n")


def test_the_corpus_is_complete():
    """Every script of the corpus is run by a test above."""
    source = Path(__file__).read_text()
    scripts = sorted(p.name for p in CORPUS.glob("dirac_corpus_*.py"))
    assert len(scripts) >= 15
    assert [s for s in scripts if f'"{s}"' not in source] == []


# ------------------------------------------------- the README's extension command
def test_readme_extension_command(workers, vhost_url, tmp_path):
    examples = REPO_DIR / "examples"
    workers.start("Mine", extension="myext", cwd=examples, pythonpath=[])
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DIRAC_", "DIRACTEST_", "PYTHONPATH"))}
    env.update(DIRAC_BROKER_URL=vhost_url, HOME=str(tmp_path))
    command = [sys.executable, "-m", "myext.scripts.dirac_mine_hello"]
    done = subprocess.run([*command, "world", "--shout"], cwd=examples, env=env, text=True,
                          capture_output=True, timeout=60)
    user = url_user(vhost_url)
    expect(done, 0, f"HELLO WORLD! (ASKED BY {user.upper()})\n")
    usage = subprocess.run(command, cwd=examples, env=env, text=True, capture_output=True,
                           timeout=60)
    expect(usage, 2)
    assert usage.stdout.startswith("Error when parsing command line arguments: not all "
                                   "mandatory arguments are defined.\n")
    readme = (REPO_DIR / "README.md").read_text()
    code = (examples / "myext" / "scripts" / "dirac_mine_hello.py").read_text()
    listed = code[code.index("from DIRAC import"):code.index("\n\nif __name__")]
    assert listed in readme, "README's listing of dirac_mine_hello.py is not the file"
    assert "HELLO WORLD! (ASKED BY GUEST)" in readme


def test_readme_lists_call_thing_whole():
    """The README's listing of examples/call_thing.py is the file (after its docstring),
    so it matches the output shown under it."""
    readme = (REPO_DIR / "README.md").read_text()
    code = (REPO_DIR / "examples" / "call_thing.py").read_text()
    body = code[code.index('"""', 3) + 3:].lstrip("\n")
    assert f"```python\n{body}```" in readme
