#!/usr/bin/env bash
# The whole interop suite, one command (scripts/test runs it after the cargo tests; CI runs scripts/test):
#
#   bash tests/interop/run.sh
#
# 1. Installs what it needs, only when missing or stale: `npm ci` (node_modules vs package-lock.json) and a
#    Python virtualenv .venv with requirements.txt (the official MCP Python SDK, pinned).
# 2. Builds the demo server and the rmcp client (workspace member rmcp-client/) once: cargo build --example demo --bin rmcp-interop-client
# 3. Runs, each against its own freshly started as.mjs (+ demo): the AS self test; the official TypeScript
#    client, the official Python client and the rmcp client, each against the demo with RS256 JWTs, with
#    introspected opaque tokens and with ES256 JWTs; each client against the demo's embedded development
#    authorization server (no as.mjs; the TypeScript client through its consent page); the negative cases.
#
# Prints one line per scenario and a final `N passed, M failed` (the checks of all scripts added up);
# exits non-zero on any failure. Every step runs under `timeout`; everything listens on 127.0.0.1 only.
# Each scenario's full output is in tests/interop/.logs/<scenario>.log (INTEROP_LOG_DIR to change).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$HERE"

LOG_DIR="${INTEROP_LOG_DIR:-$HERE/.logs}"
mkdir -p "$LOG_DIR"
rm -f "$LOG_DIR"/*.log
# Process groups of the servers the scripts start (lib/flow.mjs spawnGroup appends, stopGroup removes);
# whatever is still listed when this script exits is ended by the trap below.
export INTEROP_PIDFILE="$LOG_DIR/server-pgids"
: >"$INTEROP_PIDFILE"

PASSED=0
FAILED=0
SKIPPED=0
SCENARIO_FAILED=0
START=$SECONDS
STEP_PID=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n "$STEP_PID" ]] && kill -0 "$STEP_PID" 2>/dev/null; then
    kill -TERM "$STEP_PID" 2>/dev/null || true
    wait "$STEP_PID" 2>/dev/null || true
  fi
  if [[ -s "$INTEROP_PIDFILE" ]]; then
    local pgid
    while read -r pgid; do
      [[ "$pgid" =~ ^[0-9]+$ ]] && kill -TERM -- "-$pgid" 2>/dev/null || true
    done <"$INTEROP_PIDFILE"
    sleep 1
    while read -r pgid; do
      [[ "$pgid" =~ ^[0-9]+$ ]] && kill -KILL -- "-$pgid" 2>/dev/null || true
    done <"$INTEROP_PIDFILE"
    : >"$INTEROP_PIDFILE"
  fi
  exit "$rc"
}
interrupted() {
  echo "FAIL interop suite interrupted by $1 (servers and clients stopped)"
  echo "$PASSED passed, $((FAILED + 1)) failed"
  exit "$2"
}
trap cleanup EXIT
trap 'interrupted SIGINT 130' INT
trap 'interrupted SIGTERM 143' TERM


# run_bounded SECS LOGFILE CMD...: runs CMD under timeout (TERM, then KILL 10 s later) with its output in
# LOGFILE; returns CMD's exit code (124 on timeout). Runs in the background so the trap can end it.
run_bounded() {
  local secs=$1 log=$2
  shift 2
  timeout -k 10 "$secs" "$@" >"$log" 2>&1 </dev/null &
  STEP_PID=$!
  local rc=0
  wait "$STEP_PID" || rc=$?
  STEP_PID=""
  return "$rc"
}

die_setup() {
  local what=$1 log=$2
  echo "FAIL setup: $what - see $log"
  tail -n 30 "$log" | sed 's/^/    /'
  FAILED=$((FAILED + 1))
  echo "$PASSED passed, $FAILED failed"
  exit 1
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

for tool in node npm python3 cargo timeout sha256sum; do
  command -v "$tool" >/dev/null || { echo "FAIL setup: $tool not found"; echo "0 passed, 1 failed"; exit 1; }
done

# --- 1. dependencies -----------------------------------------------------------------------------------
lock_sha=$(sha package-lock.json)
if [[ -d node_modules && "$(cat node_modules/.interop-lock.sha256 2>/dev/null)" == "$lock_sha" ]]; then
  echo "INFO npm ci - node_modules matches package-lock.json"
else
  log="$LOG_DIR/setup-npm-ci.log"
  run_bounded 300 "$log" npm ci --no-audit --no-fund || die_setup "npm ci" "$log"
  echo "$lock_sha" >node_modules/.interop-lock.sha256
  echo "INFO npm ci - installed from package-lock.json"
fi

req_sha=$(sha requirements.txt)
if [[ -x .venv/bin/python && "$(cat .venv/.interop-requirements.sha256 2>/dev/null)" == "$req_sha" ]]; then
  echo "INFO python venv - .venv matches requirements.txt"
else
  log="$LOG_DIR/setup-venv.log"
  if [[ ! -x .venv/bin/python ]]; then
    rm -rf .venv
    run_bounded 120 "$log" python3 -m venv .venv || die_setup "python3 -m venv .venv" "$log"
  fi
  run_bounded 600 "$log" .venv/bin/pip install --disable-pip-version-check --no-input -q -r requirements.txt \
    || die_setup "pip install -r requirements.txt" "$log"
  echo "$req_sha" >.venv/.interop-requirements.sha256
  echo "INFO python venv - .venv installed from requirements.txt ($(timeout 30 .venv/bin/python -c 'import sys, importlib.metadata as m; print("Python", sys.version.split()[0] + ", mcp", m.version("mcp"))'))"
fi

# --- 2. build ------------------------------------------------------------------------------------------
log="$LOG_DIR/setup-cargo-build.log"
run_bounded 1200 "$log" cargo build --manifest-path "$ROOT/Cargo.toml" -p bearer-guard -p rmcp-interop-client --example demo --bin rmcp-interop-client \
  || die_setup "cargo build --example demo --bin rmcp-interop-client" "$log"
TARGET_DIR="$(timeout 60 cargo metadata --manifest-path "$ROOT/Cargo.toml" --format-version 1 --no-deps \
  | timeout 10 node -e 'let s="";process.stdin.on("data",(d)=>{s+=d;}).on("end",()=>console.log(JSON.parse(s).target_directory))')"
DEMO="$TARGET_DIR/debug/examples/demo"
export RMCP_CLIENT="$TARGET_DIR/debug/rmcp-interop-client"
[[ -x "$DEMO" && -x "$RMCP_CLIENT" ]] || die_setup "built binaries not found in $TARGET_DIR/debug" "$log"
echo "INFO cargo build - demo and rmcp-interop-client built ($((SECONDS - START))s so far)"

# --- 3. scenarios --------------------------------------------------------------------------------------
free_port() {
  timeout 10 node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close();});'
}

# scenario NAME SECS CMD...: one line per scenario, counts added from the script's closing line.
scenario() {
  local name=$1 secs=$2
  shift 2
  local log="$LOG_DIR/$name.log" t0=$SECONDS rc=0
  run_bounded "$secs" "$log" "$@" || rc=$?
  local summary p=0 f=0 s=0
  summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$log" | tail -n 1 || true)
  if [[ -n "$summary" ]]; then
    p=$(sed -E 's/^([0-9]+) passed.*/\1/' <<<"$summary")
    f=$(sed -E 's/^[0-9]+ passed, ([0-9]+) failed.*/\1/' <<<"$summary")
    [[ "$summary" == *skipped ]] && s=$(sed -E 's/.*, ([0-9]+) skipped$/\1/' <<<"$summary")
  fi
  if [[ $rc -ne 0 && $f -eq 0 ]]; then
    f=1 # crashed, timed out (124) or exited non-zero without a failed check
  fi
  PASSED=$((PASSED + p))
  FAILED=$((FAILED + f))
  SKIPPED=$((SKIPPED + s))
  local took=$((SECONDS - t0))
  if [[ $rc -eq 0 && $f -eq 0 ]]; then
    echo "PASS $name - ${summary:-no summary} (${took}s)"
    grep -E '^SKIP ' "$log" | sed 's/^/    /' || true
  else
    SCENARIO_FAILED=$((SCENARIO_FAILED + 1))
    local why="exit $rc"
    [[ $rc -eq 124 || $rc -eq 137 ]] && why="timed out after ${secs}s"
    echo "FAIL $name - ${summary:-no summary} ($why, ${took}s; full output: $log)"
    grep -E '^(FAIL|SKIP) ' "$log" | sed 's/^/    /' || true
    tail -n 15 "$log" | sed 's/^/    | /'
  fi
}

# Warm-up, timed: the first start of the authorization server after `npm ci` (module loading from a cold
# disk, the first key generation) once took over 60 s on CI while every later start took under 1 s.
# Paying that once here, with its own bound and its time reported, keeps it out of the scenarios' bounds.
log="$LOG_DIR/setup-as-warmup.log"
t0=$SECONDS
run_bounded 240 "$log" node --input-type=module -e "
  import { generateKeyPairSync } from 'node:crypto';
  await import('oidc-provider');
  generateKeyPairSync('rsa', { modulusLength: 2048 });
  console.log('oidc-provider loaded and an RSA key generated in', Math.round(performance.now()), 'ms');
" || die_setup "authorization server warm-up (import oidc-provider, generate a key)" "$log"
echo "INFO as warm-up - $(tail -n 1 "$log") ($((SECONDS - t0))s)"

scenario as-selftest 90 node selftest.mjs

for client in ts py rmcp; do
  port=$(free_port)
  scenario "$client-client-jwt-rs256" 150 node run-e2e.mjs --client "$client" --wait 60 \
    --server "http://127.0.0.1:$port/mcp" -- \
    "$DEMO" --listen "127.0.0.1:$port" --issuer '{issuer}'

  port=$(free_port)
  scenario "$client-client-opaque-introspection" 150 node run-e2e.mjs --client "$client" --wait 60 \
    --server "http://127.0.0.1:$port/opaque-mcp" -- \
    "$DEMO" --listen "127.0.0.1:$port" --resource "http://127.0.0.1:$port/opaque-mcp" --issuer '{issuer}' \
    --introspection-url '{issuer}/token/introspection' \
    --client-id '{introspection_client_id}' --client-secret '{introspection_client_secret}'

  port=$(free_port)
  scenario "$client-client-jwt-es256" 150 node run-e2e.mjs --client "$client" --wait 60 \
    --server "http://127.0.0.1:$port/es256-mcp" -- \
    "$DEMO" --listen "127.0.0.1:$port" --resource "http://127.0.0.1:$port/es256-mcp" --issuer '{issuer}'
done

# DPoP (RFC 9449): oauth4webapi's client against the demo with --dpop required and server nonces; oidc-provider
# binds the tokens to the client's key (cnf.jkt in the JWT, or in the introspection answer of an opaque token).
port=$(free_port)
scenario dpop-client-jwt-rs256 150 node run-e2e.mjs --client dpop --wait 60 \
  --server "http://127.0.0.1:$port/mcp" -- \
  "$DEMO" --listen "127.0.0.1:$port" --issuer '{issuer}' --dpop required --dpop-nonces
port=$(free_port)
scenario dpop-client-opaque-introspection 150 node run-e2e.mjs --client dpop --wait 60 \
  --server "http://127.0.0.1:$port/opaque-mcp" -- \
  "$DEMO" --listen "127.0.0.1:$port" --resource "http://127.0.0.1:$port/opaque-mcp" --issuer '{issuer}' \
  --introspection-url '{issuer}/token/introspection' \
  --client-id '{introspection_client_id}' --client-secret '{introspection_client_secret}' \
  --dpop required --dpop-nonces

# The demo's embedded development authorization server (no as.mjs): the TypeScript client answers its
# consent page as a user would; the Python and rmcp clients run against its automatic consent.
port=$(free_port)
scenario "ts-client-embedded-dev-as" 150 node run-e2e.mjs --client ts --no-as --wait 60 \
  --server "http://127.0.0.1:$port/mcp" -- "$DEMO" --listen "127.0.0.1:$port"
for client in py rmcp; do
  port=$(free_port)
  scenario "$client-client-embedded-dev-as" 150 node run-e2e.mjs --client "$client" --no-as --wait 60 \
    --server "http://127.0.0.1:$port/mcp" -- "$DEMO" --listen "127.0.0.1:$port" --auto-consent
done

scenario negative-cases 200 node negative.mjs --demo "$DEMO"

echo "INFO interop suite took $((SECONDS - START))s; logs in $LOG_DIR"
if [[ $SKIPPED -gt 0 ]]; then
  echo "$PASSED passed, $FAILED failed, $SKIPPED skipped"
else
  echo "$PASSED passed, $FAILED failed"
fi
[[ $FAILED -eq 0 && $SCENARIO_FAILED -eq 0 ]]
