#!/usr/bin/env bash
# The README's second command (and what .ci/run calls): install diracmq with its
# test extras into .venv, make sure a RabbitMQ broker answers, run the whole test
# suite against it.  Extra arguments go to pytest, e.g. ./run-tests.sh -k codec -x
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

ensure_venv test
ensure_broker

say "running: $PY -m pytest -q $*"
status=0
"$PY" -m pytest -q "$@" || status=$?
if [ "$status" -eq 5 ]; then
    die "pytest collected no tests (exit 5): a test run that runs nothing does not pass"
fi
exit "$status"
