#!/usr/bin/env bash
# The README's first command: install diracmq, make sure a RabbitMQ broker answers,
# start a WorkloadManagement worker, submit a few demo jobs as the calling user,
# run the DIRAC documentation's JobMonitoring example (examples/seed_list_jobs.py),
# stop the worker it started, and exit with the example's status.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

READY_TIMEOUT=${DEMO_READY_TIMEOUT:-60}   # seconds to wait for the service to answer
STOP_TIMEOUT=${DEMO_STOP_TIMEOUT:-45}     # seconds to wait for the worker to exit after SIGTERM

ensure_venv ""    # no extras: the demo needs only the package
ensure_broker

log_dir=$(mktemp -d "${TMPDIR:-/tmp}/diracmq-demo.XXXXXX")
worker_log="$log_dir/worker.log"
worker_pid=""
interrupted=""

# shellcheck disable=SC2317  # called from the EXIT trap
stop_worker() {
    [ -n "$worker_pid" ] || return 0
    local pid=$worker_pid deadline=$((SECONDS + STOP_TIMEOUT))
    worker_pid=""
    if kill -0 "$pid" 2>/dev/null; then
        # A Ctrl-C in the terminal reaches the worker too, and a second signal would
        # make it stop without finishing its requests: signal it only if it was not
        # interrupted already (whatever its log level shows).
        if [ -z "$interrupted" ]; then
            say "stopping the worker (pid $pid) with SIGTERM"
            kill -TERM "$pid" 2>/dev/null || true
        fi
        while kill -0 "$pid" 2>/dev/null && [ "$SECONDS" -lt "$deadline" ]; do
            sleep 0.2
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "worker $pid still running after ${STOP_TIMEOUT}s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # the EXIT trap
on_exit() {
    local status=$?
    stop_worker
    if [ "$status" -ne 0 ] && [ -s "$worker_log" ]; then
        say "demo failed (status $status); last lines of the worker log ($worker_log):"
        tail -n 20 "$worker_log" >&2
    else
        rm -rf "$log_dir"
    fi
    exit "$status"
}
trap on_exit EXIT
trap 'interrupted=1; exit 130' INT
trap 'exit 143' TERM

say "starting: dirac-worker WorkloadManagement (log: $worker_log)"
"$VENV/bin/dirac-worker" WorkloadManagement </dev/null >"$worker_log" 2>&1 &
worker_pid=$!

# Ready when the service answers a ping: this does not depend on the worker's log level
# (DIRAC_LOG_LEVEL=WARNING hides its INFO "worker ready" line).
deadline=$((SECONDS + READY_TIMEOUT))
until "$VENV/bin/dirac-framework-ping-service" WorkloadManagement JobMonitoring \
        --timeout 2 >/dev/null 2>&1; do
    kill -0 "$worker_pid" 2>/dev/null || die "the worker exited before it was ready"
    [ "$SECONDS" -lt "$deadline" ] || die "the service did not answer within ${READY_TIMEOUT}s"
    sleep 0.2
done
say "worker ready: WorkloadManagement/JobMonitoring answers (pid $worker_pid)"

say "submitting demo jobs: examples/submit_demo_jobs.py"
"$PY" examples/submit_demo_jobs.py

say "running the DIRAC documentation's example: examples/seed_list_jobs.py"
status=0
"$PY" examples/seed_list_jobs.py || status=$?
exit "$status"
