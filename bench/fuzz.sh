#!/usr/bin/env bash
# Coverage-guided fuzzing of every parser of untrusted bytes, on the stable toolchain: libFuzzer
# (the libfuzzer-sys crate) with LLVM's SanitizerCoverage switched on through stable `-C` flags
# (no nightly, no cargo-fuzz). Harnesses: fuzz/fuzz_targets/*.rs; seeds: fuzz/corpus/TARGET/.
#
#   bench/fuzz.sh TARGET|all [SECONDS]     (default 120 s per target)
#   bench/fuzz.sh list
#
# FUZZ_RUNS=N stops a target once it has run N inputs (SECONDS stays the cap): the figures in
# README come from `FUZZ_RUNS=1000000 bench/fuzz.sh all 600`.
#
# Prints, per target, the executions run, executions per second, coverage and crashes, and
# writes bench/results/fuzz.json. Inputs that crash are kept under $FUZZ_OUT/crashes (default
# ~/.cache/streamgate/fuzz/crashes); each one found so far became a unit test beside its parser.
# Instrumented builds use their own target dir (different RUSTFLAGS would rebuild the main one).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

TARGETS=(playback_token gated_path cookie range siwe siws jwt policy manifest tus config proxy_header)
what=${1:-all}
SECONDS_PER=${2:-120}
FUZZ_OUT=${FUZZ_OUT:-$HOME/.cache/streamgate/fuzz}
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$HOME/.cache/streamgate/fuzz-target}

log() { echo "fuzz: $*" >&2; }

case "$what" in
  list) printf '%s\n' "${TARGETS[@]}"; exit 0 ;;
  all) run=("${TARGETS[@]}") ;;
  *)
    printf '%s\n' "${TARGETS[@]}" | grep -qx "$what" \
      || { echo "fuzz: unknown target '$what' (bench/fuzz.sh list)" >&2; exit 2; }
    run=("$what") ;;
esac
[[ "$SECONDS_PER" =~ ^[1-9][0-9]*$ ]] || { echo "fuzz: SECONDS must be a positive integer, got '$SECONDS_PER'" >&2; exit 2; }

# SanitizerCoverage as cargo-fuzz sets it up, minus the sanitizer (which needs nightly):
# 8-bit counters + PC table for coverage, comparison tracing for magic values.
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
export CARGO_PROFILE_RELEASE_DEBUG=1
# An explicit --target keeps RUSTFLAGS off build scripts and proc macros (which must not be
# instrumented: nothing links libFuzzer's callbacks into them).
HOST=$(rustc -vV | sed -n 's/^host: //p')
log "building ${#run[@]} harness(es) for $HOST, instrumented (the first build takes a while)"
cargo build --release --quiet --target "$HOST" -p streamgate-fuzz $(printf -- '--bin %s ' "${run[@]}")
BIN="$CARGO_TARGET_DIR/$HOST/release"

max_len() {
  case "$1" in
    manifest) echo 65536 ;;
    config) echo 16384 ;;
    siwe|siws|policy) echo 8192 ;;
    *) echo 4096 ;;
  esac
}

mkdir -p "$FUZZ_OUT/crashes" bench/results
json="bench/results/fuzz.json"
[ "$what" = all ] || json="bench/results/fuzz-$what.json"
rows=()
total_crashes=0
printf '%-16s %14s %10s %8s %8s\n' target execs exec/s cov crashes
for t in "${run[@]}"; do
  work="$FUZZ_OUT/corpus/$t"
  mkdir -p "$work"
  artifacts="$FUZZ_OUT/crashes/$t"
  mkdir -p "$artifacts"
  before=$(find "$artifacts" -type f | wc -l)
  out="$FUZZ_OUT/$t.log"
  # New inputs go to the work corpus; the committed seeds are only read.
  set +e
  "$BIN/$t" "$work" "fuzz/corpus/$t" \
    -max_total_time="$SECONDS_PER" -runs="${FUZZ_RUNS:--1}" -max_len="$(max_len "$t")" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$artifacts/" >"$out" 2>&1
  rc=$?
  set -e
  execs=$(awk '/stat::number_of_executed_units/ {print $NF}' "$out" | tail -1)
  rate=$(awk '/stat::average_exec_per_sec/ {print $NF}' "$out" | tail -1)
  cov=$({ grep -o 'cov: [0-9]*' "$out" || true; } | tail -1 | awk '{print $2}')
  crashes=$(( $(find "$artifacts" -type f | wc -l) - before ))
  [ "$rc" = 0 ] || [ "$crashes" -gt 0 ] || crashes=1   # libFuzzer stopped on a finding
  total_crashes=$((total_crashes + crashes))
  printf '%-16s %14s %10s %8s %8s\n' "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "$crashes"
  [ "$crashes" = 0 ] || log "$t: see $out and $artifacts"
  rows+=("{\"target\": \"$t\", \"seconds\": $SECONDS_PER, \"execs\": ${execs:-0}, \"execs_per_sec\": ${rate:-0}, \"coverage\": ${cov:-0}, \"crashes\": $crashes}")
done
{
  echo "{"
  echo "  \"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\","
  echo "  \"machine\": \"$(nproc) cores, $(uname -m)\","
  echo "  \"engine\": \"libFuzzer (libfuzzer-sys), SanitizerCoverage via stable -C flags\","
  echo "  \"targets\": ["
  for i in "${!rows[@]}"; do
    sep=","; [ "$i" = $(( ${#rows[@]} - 1 )) ] && sep=""
    echo "    ${rows[$i]}$sep"
  done
  echo "  ]"
  echo "}"
} >"$json"
log "results in $json"
[ "$total_crashes" = 0 ]
