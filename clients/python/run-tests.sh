#!/usr/bin/env bash
# Create (or reuse) a virtualenv, install ringgate-client from this directory plus pytest,
# and run the test suite against a real ringgate binary.
#
#   RINGGATE_BIN=/path/to/ringgate ./run-tests.sh [pytest args...]
#
# Environment:
#   RINGGATE_BIN  the server binary (default /work/bin/ringgate; server tests are skipped,
#                 loudly, when it is missing)
#   PYTHON        interpreter for the venv (default python3; needs >= 3.10)
#   VENV          venv directory (default ./.venv, which is gitignored)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

PYTHON="${PYTHON:-python3}"
VENV="${VENV:-$here/.venv}"
export RINGGATE_BIN="${RINGGATE_BIN:-/work/bin/ringgate}"

"$PYTHON" - <<'PY'
import sys
if sys.version_info < (3, 10):
    sys.exit(f"ringgate-client needs Python >= 3.10, {sys.executable} is {sys.version.split()[0]}")
PY

if [ ! -x "$VENV/bin/python" ]; then
    echo "run-tests: creating venv $VENV" >&2
    "$PYTHON" -m venv "$VENV"
fi

# The package builds with its in-tree backend (no build dependencies); pip only fetches
# websockets and pytest.
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade --force-reinstall --no-deps "$here"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$here[test]"

if [ ! -x "$RINGGATE_BIN" ]; then
    echo "run-tests: WARNING: RINGGATE_BIN=$RINGGATE_BIN is not an executable; server tests will be SKIPPED" >&2
fi
if ! command -v jq >/dev/null 2>&1; then
    echo "run-tests: WARNING: jq not found (apt-get install -y jq); the ringgate-tail | jq test will be skipped" >&2
fi

# Run from tests/ so `ringgate_client` is imported from the installed package, not src/.
cd "$here/tests"
export PATH="$VENV/bin:$PATH"
exec "$VENV/bin/python" -m pytest -p no:cacheprovider -q -rs --durations=5 "$@" .
