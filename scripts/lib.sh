# shellcheck shell=bash
# Helpers shared by ./demo.sh, ./run-tests.sh and .ci/run.  Source it from the
# project root: `. scripts/lib.sh`.  Every wait here has a deadline.

VENV=${VENV:-.venv}
PY="$VENV/bin/python"

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# A Python >= 3.11 to create the virtual environment with ($PYTHON wins).
find_python() {
    local candidate
    for candidate in ${PYTHON:-} python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

# ensure_venv [EXTRAS]: create .venv if missing, then `pip install -e .[EXTRAS]` quietly.
ensure_venv() {
    local extras=${1:-} python
    if [ ! -x "$PY" ]; then
        python=$(find_python) || die "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)"
        say "creating $VENV with $python"
        "$python" -m venv "$VENV"
    fi
    say "installing diracmq${extras:+[$extras]} into $VENV (pip install -e)"
    local out
    out=$(mktemp "${TMPDIR:-/tmp}/diracmq-pip.XXXXXX")
    if ! "$PY" -m pip install --quiet --disable-pip-version-check \
            -e ".${extras:+[$extras]}" >"$out" 2>&1; then
        cat "$out" >&2
        rm -f "$out"
        die "pip install -e .${extras:+[$extras]} failed (output above)"
    fi
    rm -f "$out"
}

# Where the configured broker is (env, config file, default), without the password,
# then "default" or "configured" on a second line.
broker_where() {
    "$PY" - <<'PYEOF'
import pika
from diracmq.broker.config import DEFAULT_BROKER_URL, Settings
url = Settings.load().url
p = pika.URLParameters(url)
print(f"{p.credentials.username}@{p.host}:{p.port} vhost {p.virtual_host!r}")
print("default" if url == DEFAULT_BROKER_URL else "configured")
PYEOF
}

# broker_answers [SECONDS]: log in to the configured broker once (retrying for
# SECONDS); prints why not on failure.
broker_answers() {
    "$PY" - "${1:-2}" <<'PYEOF'
import logging, sys
logging.disable(logging.CRITICAL)   # tenacity's retry warnings are noise here
from diracmq.broker.config import Settings
from diracmq.broker.connection import BrokerUnreachable, connect
try:
    connect(Settings.load(), "diracmq broker check", timeout=float(sys.argv[1])).close()
except BrokerUnreachable as exc:
    print(exc, file=sys.stderr)
    sys.exit(1)
PYEOF
}

docker_engine_answers() {
    command -v docker >/dev/null 2>&1 && timeout 10 docker info >/dev/null 2>&1
}

# ensure_broker: make sure the configured broker (DIRAC_BROKER_URL, the config
# file, else amqp://guest:guest@127.0.0.1:5672/) accepts a login.  When nothing
# is configured and nothing answers locally, start compose.yaml's rabbitmq if a
# Docker engine answers; otherwise fail saying how to get a broker.
ensure_broker() {
    local where origin why
    { read -r where && read -r origin; } < <(broker_where) ||
        die "cannot read the broker configuration (see docs/configuration.md)"
    if why=$(broker_answers 2 2>&1); then
        say "broker answers: $where"
        return 0
    fi
    if [ "$origin" != default ]; then
        die "the configured broker ($where) does not answer: $why
  (it comes from DIRAC_BROKER_URL or the config file; see docs/configuration.md)"
    fi
    if docker_engine_answers; then
        say "no broker on 127.0.0.1:5672; starting one with: docker compose up -d --wait rabbitmq"
        docker compose up -d --wait rabbitmq || die "docker compose could not start rabbitmq"
        why=$(broker_answers 60 2>&1) || die "rabbitmq started by docker compose does not answer: $why"
        say "broker answers at 127.0.0.1:5672 (docker compose service rabbitmq)"
        return 0
    fi
    die "no RabbitMQ broker answers at 127.0.0.1:5672 ($why), and no Docker engine answers.
Start one of these, then run this command again:
  - Docker:          docker compose up -d --wait rabbitmq
  - Debian/Ubuntu:   sudo apt-get install rabbitmq-server && sudo systemctl start rabbitmq-server
                     (or, without systemd, as root: rabbitmq-server -detached)
  - another broker:  export DIRAC_BROKER_URL=amqp://USER:PASSWORD@HOST:5672/%2F"
}

# start_local_rabbitmq: for CI machines where RabbitMQ is installed but not answering.
# Starts the node unless it is already up (e.g. still booting), then waits, bounded,
# until the broker application runs.
start_local_rabbitmq() {
    command -v rabbitmq-server >/dev/null 2>&1 || return 1
    if ! rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
        say "starting the local RabbitMQ: rabbitmq-server -detached"
        rabbitmq-server -detached || return 1
    fi
    local deadline=$((SECONDS + 90))
    until rabbitmq-diagnostics -q ping >/dev/null 2>&1; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 1
    done
    rabbitmqctl -q await_startup --timeout 60
}

# ensure_chromium: the browser tests (tests/integration/test_webapp.py) drive Debian's
# `chromium` with Playwright.  Install it when missing and we may (root, apt-get), within
# bounded time and quietly; otherwise say how, and let those tests fail saying so.
ensure_chromium() {
    [ -x "${DIRACMQ_CHROMIUM:-/usr/bin/chromium}" ] && return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        say "no chromium: the browser tests will fail (sudo apt-get install chromium)"
        return 0
    fi
    say "installing chromium for the browser tests (apt-get install chromium)"
    local out
    out=$(mktemp "${TMPDIR:-/tmp}/diracmq-apt.XXXXXX")
    if ! { timeout 300 apt-get update -qq &&
           DEBIAN_FRONTEND=noninteractive timeout 900 apt-get install -y -qq \
               --no-install-recommends chromium; } >"$out" 2>&1; then
        tail -20 "$out" >&2
        say "could not install chromium; the browser tests will fail"
    fi
    rm -f "$out"
}
