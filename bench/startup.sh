#!/usr/bin/env bash
# bench/startup.sh: cold start of each StreamGate service, from exec to its readiness answer,
# BENCH_ROUNDS (5) times each, against a private release stack (bench/private-stack.sh): origin
# to `GET /readyz` 200 (Redis and the bucket reachable), the transcoder to `GET /healthz` on
# its metrics port, the edge to `GET /readyz` 200 (grants configured: origin's JWKS loaded).
# The baseline, in the same run, is Redis itself: `redis-server` on a fresh port to PING.
# Writes bench/results/startup-<UTC>.json and startup-latest.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${BENCH_ROUNDS:-5}
BENCH_CLIP_SECONDS=${BENCH_CLIP_SECONDS:-1}
. bench/private-stack.sh

now() { date +%s.%N; }

# Starts "$@" in the background, polls `probe` every 10 ms, prints the seconds to ready, stops it.
time_to_ready() { # probe command (string), then the service command
  local probe=$1; shift
  local t0 pid
  t0=$(now)
  "$@" >>"$WORK/startup.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 3000); do
    if eval "$probe" >/dev/null 2>&1; then break; fi
    kill -0 "$pid" 2>/dev/null || { tail -20 "$WORK/startup.log" >&2; die "$* exited"; }
    sleep 0.01
  done
  local t1; t1=$(now)
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  python3 -c "print(round($t1 - $t0, 3))"
}

stop_service() { # the stack's own process of this name
  local pid; pid=$(cat "$STACK_DIR/run/$1.pid")
  kill -TERM "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
}

for s in edge transcoder origin; do stop_service "$s"; done
CONF=$STACK_DIR/config
BIN=$STREAMGATE_BIN_DIR
declare -A results
spare=$((BASE + 999))
for r in $(seq 1 "$ROUNDS"); do
  results[redis]+=" $(time_to_ready "redis-cli -p $spare ping | grep -q PONG" redis-server --port "$spare" --save '' --appendonly no)"
  results[origin]+=" $(time_to_ready "curl -fsS http://127.0.0.1:$ORIGIN_PORT/readyz" "$BIN/streamgate-origin" --config "$CONF/origin.toml")"
  results[transcoder]+=" $(time_to_ready "curl -fsS http://127.0.0.1:$TRANSCODER_METRICS_PORT/healthz" "$BIN/streamgate-transcoder" --config "$CONF/transcoder.toml")"
  # The edge's grants need origin's JWKS: origin runs meanwhile.
  "$BIN/streamgate-origin" --config "$CONF/origin.toml" >>"$WORK/startup.log" 2>&1 &
  origin=$!
  for _ in $(seq 1 500); do curl -fsS "http://127.0.0.1:$ORIGIN_PORT/readyz" >/dev/null 2>&1 && break; sleep 0.01; done
  results[edge]+=" $(time_to_ready "curl -fsS http://127.0.0.1:$EDGE_PORT/readyz" "$BIN/streamgate-proxy" --config "$CONF/proxy.toml")"
  kill -TERM "$origin"; wait "$origin" 2>/dev/null || true
  log "round $r: redis${results[redis]##* }s origin ${results[origin]##* }s transcoder ${results[transcoder]##* }s edge ${results[edge]##* }s"
done

mkdir -p bench/results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=bench/results/startup-$stamp.json
python3 - "$(nproc)" "${results[redis]}" "${results[origin]}" "${results[transcoder]}" "${results[edge]}" >"$out" <<'PY'
import json, sys, statistics
cores = int(sys.argv[1])
names = ["redis", "origin", "transcoder", "edge"]
runs = {n: [float(x) for x in a.split()] for n, a in zip(names, sys.argv[2:6])}
med = {n: statistics.median(v) for n, v in runs.items()}
print(json.dumps({
    "cores": cores, "release_build": True, "runs_s": runs,
    "median_s": {n: round(v, 3) for n, v in med.items()},
    "vs_redis": {n: round(med[n] / med["redis"], 1) for n in names[1:]},
    "under_2s": {n: max(runs[n]) < 2.0 for n in names[1:]},
    "ready_means": {"origin": "GET /readyz 200", "transcoder": "GET /healthz on metrics-listen",
                    "edge": "GET /readyz 200 (JWKS loaded)", "redis": "PING answered"},
}, indent=2))
PY
cp "$out" bench/results/startup-latest.json
cat "$out"
