#!/usr/bin/env bash
# The README's first command: install diracmq, make sure a RabbitMQ broker answers,
# start a WorkloadManagement worker, an Optimizers worker and a job agent, submit demo
# jobs (one with an input sandbox) as the calling user, wait for them to be Done, print
# a job's output from its output sandbox, run the DIRAC documentation's JobMonitoring
# example (examples/seed_list_jobs.py), stop everything it started, and exit with the
# examples' status.
#
# Identity: the workers read a Registry (written to the demo's temporary folder) in
# which your broker user is in two groups: dirac_user (the default, for submitting)
# and dirac_pilot (GenericPilot, which the job agent uses: DIRAC_GROUP=dirac_pilot).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

READY_TIMEOUT=${DEMO_READY_TIMEOUT:-60}   # seconds to wait for "worker ready"
STOP_TIMEOUT=${DEMO_STOP_TIMEOUT:-45}     # seconds to wait for the worker to exit after SIGTERM

ensure_venv ""    # no extras: the demo needs only the package
ensure_broker

log_dir=$(mktemp -d "${TMPDIR:-/tmp}/diracmq-demo.XXXXXX")
pids=()       # what the demo started, stopped in reverse order
names=()
logs=()

# shellcheck disable=SC2317  # called from the EXIT trap
stop_one() {
    local pid=$1 name=$2 log=$3 deadline=$((SECONDS + STOP_TIMEOUT))
    if kill -0 "$pid" 2>/dev/null; then
        # A Ctrl-C in the terminal reaches the processes too, and a second signal would
        # make a worker stop without finishing its requests: signal it only if it is
        # not stopping already.
        if ! grep -q "signal [0-9]*: \(finishing\|stopping\)" "$log"; then
            say "stopping $name (pid $pid) with SIGTERM"
            kill -TERM "$pid" 2>/dev/null || true
        fi
        while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "$name ($pid) still running after ${STOP_TIMEOUT}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # called from the EXIT trap
stop_all() {
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        stop_one "${pids[$i]}" "${names[$i]}" "${logs[$i]}"
    done
    pids=()
}

# shellcheck disable=SC2317  # the EXIT trap
on_exit() {
    local status=$? log
    stop_all
    if [ "$status" -ne 0 ]; then
        say "demo failed (status $status); last lines of the logs in $log_dir:"
        for log in "${logs[@]}"; do
            [ -s "$log" ] && { echo "--- $log" >&2; tail -n 15 "$log" >&2; }
        done
    else
        rm -rf "$log_dir"
    fi
    exit "$status"
}
trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME LOG COMMAND...: run in the background, remember it
start() {
    local name=$1 log=$2
    shift 2
    "$@" </dev/null >"$log" 2>&1 &
    pids+=("$!")
    names+=("$name")
    logs+=("$log")
}

wait_for_line() {  # wait_for_line PATTERN LOG WHAT
    local deadline=$((SECONDS + READY_TIMEOUT)) pid=${pids[${#pids[@]}-1]}
    until grep -q "$1" "$2"; do
        kill -0 "$pid" 2>/dev/null || die "$3 exited before it was ready (log: $2)"
        [ "$SECONDS" -lt "$deadline" ] || die "$3 was not ready within ${READY_TIMEOUT}s"
        sleep 0.1
    done
}

user=$("$PY" -c 'from diracmq.broker.config import Settings
from diracmq.broker.connection import broker_user
print(broker_user(Settings.load()))')
export DIRAC_CS_FILE="$log_dir/demo-cs.toml"
cat >"$DIRAC_CS_FILE" <<TOML
[Registry]
DefaultGroup = ["dirac_user"]

[Registry.Users.$user]
BrokerUser = "$user"
Groups = ["dirac_user", "dirac_pilot"]

[Registry.Groups.dirac_user]
Properties = ["NormalUser"]

[Registry.Groups.dirac_pilot]
Properties = ["GenericPilot"]
TOML
# Optimize jobs found in Received within 2 s (default 30 s): the demo's jobs from
# earlier runs, or an announcement the broker lost.
export DIRAC_WMS_OPTIMIZER_SWEEP=${DIRAC_WMS_OPTIMIZER_SWEEP:-2}

# wait_for_answer SYSTEM SERVICE: ready when the service answers a ping, whatever the
# worker's log level (DIRAC_LOG_LEVEL=WARNING hides its INFO "worker ready" line).
wait_for_answer() {
    local deadline=$((SECONDS + READY_TIMEOUT)) pid=${pids[${#pids[@]}-1]}
    until "$VENV/bin/dirac-framework-ping-service" "$1" "$2" --timeout 2 >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || die "the $1 worker exited before it was ready"
        [ "$SECONDS" -lt "$deadline" ] || die "$1/$2 did not answer within ${READY_TIMEOUT}s"
        sleep 0.2
    done
    say "worker ready: $1/$2 answers (pid $pid)"
}

for pair in WorkloadManagement/JobMonitoring Optimizers/OptimizationMind; do
    system=${pair%/*}
    say "starting: dirac-worker $system (log: $log_dir/$system.log)"
    start "the $system worker" "$log_dir/$system.log" "$VENV/bin/dirac-worker" "$system"
    wait_for_answer "$system" "${pair#*/}"
done
# The clients below are not workers: they take their identity from the Registry the
# Configuration service serves, or, with none running, from their broker login.
unset DIRAC_CS_FILE

say "starting: dirac-job-agent (group dirac_pilot; log: $log_dir/agent.log)"
start "the job agent" "$log_dir/agent.log" env DIRAC_GROUP=dirac_pilot \
    "$VENV/bin/dirac-job-agent" --slots 2 --heartbeat 5 --poll 0.5 --workdir "$log_dir/agent"
wait_for_line "job agent ready" "$log_dir/agent.log" "the job agent"

say "submitting demo jobs: examples/submit_demo_jobs.py"
"$PY" examples/submit_demo_jobs.py

say "a job with an input sandbox, to its output: examples/job_with_sandbox.py"
status=0
"$PY" examples/job_with_sandbox.py || status=$?

say "running the DIRAC documentation's example: examples/seed_list_jobs.py"
"$PY" examples/seed_list_jobs.py || status=$?
exit "$status"
