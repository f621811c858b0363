#!/usr/bin/env bash
# End-to-end load test over loopback (not part of CI): installs wrk if missing, then runs
# benches/loadtest.rs, which serves the demo's MCP app and a trivial axum handler, each unguarded and
# guarded, and drives them with wrk (LOADTEST_ROUNDS alternating rounds, default 5, of LOADTEST_SECS per
# path, default 10; LOADTEST_CONNECTIONS, default 4; server pinned to CPU 0 and wrk to CPU 1 unless
# LOADTEST_PIN=0). Prints both throughputs and their ratio. Loopback only, bounded in time.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then
        apt-get update -qq && apt-get install -y -qq wrk
    else
        sudo apt-get update -qq && sudo apt-get install -y -qq wrk
    fi
fi
exec nice -n -5 cargo bench --bench loadtest -- run
