#!/usr/bin/env bash
# Install (npm ci from package-lock.json), build (tsc -> dist/) and run the test suite of the
# TypeScript ringgate client against a real ringgate binary.
#
#   RINGGATE_BIN=/path/to/ringgate ./run-tests.sh [extra node --test args...]
#
# Environment:
#   RINGGATE_BIN  the server binary (default /work/bin/ringgate). Required: the server tests
#                 fail with a clear message when it is missing.
#   NPM_INSTALL   "ci" (default when package-lock.json exists) or "install"
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"
export RINGGATE_BIN="${RINGGATE_BIN:-/work/bin/ringgate}"

node -e 'const [M]=process.versions.node.split(".").map(Number); if (M < 20) { console.error(`ringgate-client needs Node >= 20, this is ${process.version}`); process.exit(1); }'

if [ ! -x "$RINGGATE_BIN" ]; then
    echo "run-tests: RINGGATE_BIN=$RINGGATE_BIN is not an executable ringgate binary." >&2
    echo "run-tests: build it (cargo build --release) and set RINGGATE_BIN=.../target/release/ringgate" >&2
    exit 1
fi

if ! command -v jq >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "run-tests: installing jq (for the ringgate-tail | jq test)" >&2
        apt-get install -y -qq jq >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq jq >/dev/null 2>&1; } || true
    fi
    command -v jq >/dev/null 2>&1 || echo "run-tests: WARNING: jq not found; the ringgate-tail | jq test will be skipped" >&2
fi

mode="${NPM_INSTALL:-}"
if [ -z "$mode" ]; then
    if [ -f package-lock.json ]; then mode=ci; else mode=install; fi
fi
npm "$mode" --no-audit --no-fund --loglevel=error
npm run --silent build

start=$(date +%s)
node --test --test-timeout=90000 "$@" test/*.test.mjs
echo "run-tests: done in $(( $(date +%s) - start )) s" >&2
