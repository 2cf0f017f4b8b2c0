#!/usr/bin/env bash
# mypy over the core under its installed names (diracmq.broker, diracmq.client,
# diracmq.workers), with the configuration of pyproject.toml; arguments go to mypy.
# mypy cannot follow setup.py's package-dir mapping (the editable install finds the
# packages with an import hook, which mypy does not run), so the three folders are shown
# to it as diracmq/<name> through symbolic links kept in the venv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=scripts/lib.sh
. scripts/lib.sh

[ -x "$VENV/bin/mypy" ] || ensure_venv test
links="$(cd "$VENV" && pwd)/mypy-path"
mkdir -p "$links/diracmq"
for package in broker client workers; do
    ln -sfn "$PWD/$package" "$links/diracmq/$package"
done
say "mypy (diracmq.broker, diracmq.client, diracmq.workers)"
MYPYPATH="$links" exec "$VENV/bin/mypy" "$@"
