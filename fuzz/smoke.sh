#!/usr/bin/env bash
# Fuzz smoke runs (what .ci/run does): installs cargo-fuzz if missing, writes the seed corpora
# (seeds.py), builds every target, and runs each for FUZZ_SECONDS (default 60) from its seeds with its
# dictionary, after replaying the inputs that once failed (fuzz/regressions/<target>/). A crash or a
# failed oracle fails the run; its input is in fuzz/artifacts/<target>/.
#
#   bash fuzz/smoke.sh                 # every target, 60 s each
#   FUZZ_SECONDS=10 bash fuzz/smoke.sh mcp_body jwt_validator
#
# cargo-fuzz needs nightly compiler flags; on the stable toolchain RUSTC_BOOTSTRAP=1 unlocks them.
# Targets are built without a sanitizer (`-s none`): the crate forbids `unsafe`, so what is looked for
# is panics (debug assertions and overflow checks on, `-a`), hangs and the targets' own oracles.
set -euo pipefail
cd "$(dirname "$0")"
export RUSTC_BOOTSTRAP=1
SECONDS_EACH="${FUZZ_SECONDS:-60}"
CARGO_FUZZ_VERSION=0.13.2

if ! cargo fuzz --version 2>/dev/null | grep -q "$CARGO_FUZZ_VERSION"; then
  echo "== installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

declare -A DICT=(
  [layer_authorization]=dict/http.dict
  [jwt_validator]=dict/jose.dict
  [jwks_document]=dict/jose.dict
  [introspection_answer]=dict/jose.dict
  [mcp_body]=dict/mcp.dict
  [dpop_proof]=dict/jose.dict
)
TARGETS=("$@")
if [[ ${#TARGETS[@]} -eq 0 ]]; then
  TARGETS=(layer_authorization jwt_validator jwks_document introspection_answer mcp_body dpop_proof)
fi

python3 seeds.py
echo "== building ${#TARGETS[@]} fuzz targets"
for target in "${TARGETS[@]}"; do
  if ! cargo fuzz build -s none -a "$target" >build.log 2>&1; then
    cat build.log
    exit 1
  fi
done
rm -f build.log

failed=0
for target in "${TARGETS[@]}"; do
  # Inputs that once failed (fuzz/regressions/<target>/) are run first, every time.
  if [[ -d regressions/$target ]]; then
    if ! cargo fuzz run -s none -a "$target" regressions/"$target"/* -- -runs=1 >regressions.log 2>&1; then
      failed=$((failed + 1))
      echo "FAIL fuzz $target - a regression input fails again"
      tail -40 regressions.log
    fi
    rm -f regressions.log
  fi
  work="$(mktemp -d)"
  cp corpus/"$target"/* "$work"/
  echo "== fuzz $target for ${SECONDS_EACH}s"
  if cargo fuzz run -s none -a "$target" "$work" -- \
      -max_total_time="$SECONDS_EACH" -dict="${DICT[$target]}" -max_len=4096 -timeout=10 \
      -rss_limit_mb=2048 -print_final_stats=1 >"$work.log" 2>&1; then
    echo "PASS fuzz $target - $(grep -E '^stat::number_of_executed_units' "$work.log" | awk '{print $2}') runs, no crash"
  else
    failed=$((failed + 1))
    echo "FAIL fuzz $target - see below; the input is in fuzz/artifacts/$target/"
    tail -40 "$work.log"
  fi
  rm -rf "$work" "$work.log"
done
exit "$failed"
