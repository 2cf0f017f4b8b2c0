"""``dirac-job-agent``: ask the Matcher for jobs and run them here."""

from __future__ import annotations

import logging
import signal
import sys
from typing import Any

from DIRAC.Interfaces.scripts.common import EXIT_OK, make_parser, run_command, setup

PROG = "dirac-job-agent"

DESCRIPTION = """\
Run jobs on this machine: describe the resource to WorkloadManagement/Matcher, take
the jobs it matches and run each in a fresh directory (WORKDIR/<jobID>): input sandbox
and InputData downloaded, Executable run with its Arguments, heartbeats with CPU, memory
and wall-clock figures (a killed job is stopped within one heartbeat), CPU and wall-clock
limits enforced, output sandbox (stdout, stderr, the OutputSandbox files) uploaded,
OutputData put and registered in the catalogue, then Done or Failed with the reason.

The broker user needs a group with the GenericPilot property (set DIRAC_GROUP to it):
see docs/jobs.md. Any number of agents, on any hosts, may run at once.

--metrics-port PORT serves Prometheus metrics (jobs started, finished by final
status, running; Matcher requests by outcome, "no match" included; heartbeats) at
http://ADDR:PORT/metrics: see docs/operations.md.

SIGTERM or Ctrl-C: no new jobs; the running ones are stopped, their output uploaded,
and they end Failed / "Job agent stopped" (never left Running).

Example:
  DIRAC_GROUP=dirac_pilot dirac-job-agent --site LCG.CERN.cern --slots 4
  dirac-job-agent --max-jobs 10 --idle-timeout 60
  dirac-job-agent --slots 8 --metrics-port 9200
"""

EPILOG = "Exit status: 0 stopped normally, 1 cannot reach the broker, 2 usage error."


@run_command
def main() -> int:
    parser = make_parser(PROG, DESCRIPTION, epilog=EPILOG, json_output=False)
    parser.add_argument("--site", default="DIRAC.Local.local",
                        help="the site name offered to the Matcher (default %(default)s)")
    parser.add_argument("--cpu-time", type=int, default=86400, metavar="SECONDS",
                        help="CPU time a job may use here (default %(default)s)")
    parser.add_argument("--tag", action="append", default=[], metavar="TAG",
                        help="a tag this resource offers (repeatable)")
    parser.add_argument("--slots", type=int, default=1,
                        help="jobs run at once (default %(default)s)")
    parser.add_argument("--max-jobs", type=int, default=0, metavar="N",
                        help="stop after N jobs (default 0: no limit)")
    parser.add_argument("--idle-timeout", type=float, default=0.0, metavar="SECONDS",
                        help="stop after this long without a job (default 0: never)")
    parser.add_argument("--heartbeat", type=float, default=30.0, metavar="SECONDS",
                        help="seconds between heartbeats of a running job "
                             "(default %(default)s)")
    parser.add_argument("--poll", type=float, default=5.0, metavar="SECONDS",
                        help="seconds between requests when there is no job "
                             "(default %(default)s)")
    parser.add_argument("--max-wallclock", type=float, default=3 * 86400, metavar="SECONDS",
                        help="wall-clock limit of a job whose JDL sets no MaxWallClockTime "
                             "(default %(default)s)")
    parser.add_argument("--workdir", default="jobagent",
                        help="where the jobs' directories are made (default ./%(default)s)")
    parser.add_argument("--keep-workdirs", action="store_true",
                        help="keep each job's directory after it ended")
    parser.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                        help="serve Prometheus metrics over HTTP on this port "
                             "(default: off)")
    parser.add_argument("--metrics-addr", default="0.0.0.0", metavar="ADDR",
                        help="address the metrics endpoint listens on (default %(default)s)")
    args = parser.parse_args()
    if args.slots < 1:
        parser.error("--slots must be at least 1")
    if args.metrics_port is not None and not 0 < args.metrics_port < 65536:
        parser.error("--metrics-port must be between 1 and 65535")
    setup(args)
    logging.getLogger("dirac-job-agent").setLevel(logging.DEBUG if args.debug else logging.INFO)
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s: %(message)s"))
    logging.getLogger("dirac-job-agent").addHandler(handler)
    logging.getLogger("dirac-job-agent").propagate = False

    from DIRAC.WorkloadManagementSystem.Agent.JobAgent import JobAgent
    from DIRAC.WorkloadManagementSystem.Agent.JobAgentMetrics import JobAgentMetrics

    metrics = None
    if args.metrics_port is not None:
        metrics = JobAgentMetrics(slots=args.slots)
        try:
            metrics.serve(args.metrics_port, args.metrics_addr)
        except OSError as exc:
            parser.error(f"cannot serve metrics on {args.metrics_addr}:{args.metrics_port}: "
                         f"{exc}")

    agent = JobAgent(site=args.site, cpuTime=args.cpu_time, tags=args.tag, slots=args.slots,
                     maxJobs=args.max_jobs, idleTimeout=args.idle_timeout,
                     heartbeat=args.heartbeat, pollInterval=args.poll, workDir=args.workdir,
                     maxWallClock=args.max_wallclock, keepWorkDirs=args.keep_workdirs,
                     metrics=metrics)

    def on_signal(signum: int, _frame: Any) -> None:
        logging.getLogger("dirac-job-agent").info("signal %d: stopping", signum)
        agent.stop("Job agent stopped")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    logging.getLogger("dirac-job-agent").info(
        "job agent ready: site %s, %d slot(s)", args.site, args.slots)
    agent.run()
    counts: dict[str, int] = {}
    for outcome in agent.results.values():
        counts[outcome] = counts.get(outcome, 0) + 1
    print(f"Ran {len(agent.results)} job(s)"
          + "".join(f", {n} {s}" for s, n in sorted(counts.items())), flush=True)
    return EXIT_OK


if __name__ == "__main__":
    main()
