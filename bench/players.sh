#!/usr/bin/env bash
# bench/players.sh: how many real-time HLS players one edge holds on this machine.
#
# Starts the local stack (`make demo`: a 20 s 720p video, 3 renditions + audio, gated by an NFT,
# and a viewer's tokenized HLS URL), runs a RELEASE edge on its own port over the stack's origin
# (same token keys, `[cache] memory = 512MiB`, `server.threads` = BENCH_THREADS), warms its
# cache, then drives it with the release `streamgate-loadtest` at real-time pace (every player
# asks for each 4 s segment when it is due) in steps of BENCH_PLAYERS players. A step holds when
# it has no error, no late segment and segment p99 < 50 ms. Edge RSS is sampled during each step.
#
#   bench/players.sh            # steps "1000 2500 5000 10000"
#   BENCH_PLAYERS="500 1000" BENCH_RAMP=10s BENCH_HOLD=20s bench/players.sh
#
# Writes bench/results/players-<UTC>.json and players-latest.json. The load generator runs on
# the same 2 cores as the edge: the figures are a lower bound on what the edge alone holds.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/streamgate/target}
STEPS=${BENCH_PLAYERS:-"1000 2500 5000 10000"}
RAMP=${BENCH_RAMP:-20s}
HOLD=${BENCH_HOLD:-30s}
THREADS=${BENCH_THREADS:-2}
P99_LIMIT_MS=${BENCH_P99_MS:-50}
EDGE_PORT=${BENCH_EDGE_PORT:-18180}
EDGE_METRICS_PORT=${BENCH_EDGE_METRICS_PORT:-19190}
REL=$CARGO_TARGET_DIR/release
WORK=$(mktemp -d)
EDGE_PID=""
cleanup() { [ -n "$EDGE_PID" ] && kill "$EDGE_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
log() { echo "bench: $*" >&2; }

log "building release edge and loadtest (first time: several minutes)"
cargo build --release --quiet -p streamgate-proxy -p streamgate-loadtest

log "starting the stack and the demo content"
demo=$(make --no-print-directory demo)
hls=$(printf %s "$demo" | sed -n 's/^  HLS:  //p')
[ -n "$hls" ] || { log "make demo printed no HLS URL"; exit 1; }
# shellcheck disable=SC1091
. .stack/env
path=${hls#"$EDGE_URL"}

# The release edge: the stack's edge config (same keys, origin, grants) on other ports.
sed -e "s/^listen = .*/listen = \"127.0.0.1:$EDGE_PORT\"/" \
    -e "s/^metrics-listen = .*/metrics-listen = \"127.0.0.1:$EDGE_METRICS_PORT\"/" \
    -e "s/^memory = .*/memory = \"512MiB\"/" \
    "$STREAMGATE_CONFIG_DIR/proxy.toml" >"$WORK/proxy.toml"
printf '\n' >>"$WORK/proxy.toml"
python3 - "$WORK/proxy.toml" "$THREADS" <<'PY'
import re, sys
p, threads = sys.argv[1], sys.argv[2]
s = open(p).read()
s = s.replace("[server]\n", f"[server]\nthreads = {threads}\n", 1)
open(p, "w").write(s)
PY
"$REL/streamgate-proxy" --config "$WORK/proxy.toml" --check-config >/dev/null
ulimit -n 65536 || log "cannot raise the open-file limit: $(ulimit -n)"
STREAMGATE__LOG__FILTER=warn "$REL/streamgate-proxy" --config "$WORK/proxy.toml" >"$WORK/edge.log" 2>&1 &
EDGE_PID=$!
edge="http://127.0.0.1:$EDGE_PORT"
for _ in $(seq 1 100); do curl -fsS "$edge/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
url="$edge$path"

# Warm every rendition into L1 (one fast player per rendition for a few seconds).
"$REL/streamgate-loadtest" players --url "$url" --players 6 --duration 5s --ramp-up 0s \
  --pace max --quiet >/dev/null

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$EDGE_PID/status"; }
idle_kb=$(rss_kb)
results=()
best=0
for n in $STEPS; do
  log "step: $n players (ramp $RAMP, hold $HOLD)"
  peak=0
  ( while kill -0 "$EDGE_PID" 2>/dev/null; do rss_kb; sleep 1; done ) >"$WORK/rss-$n" &
  sampler=$!
  "$REL/streamgate-loadtest" players --url "$url" --players "$n" --ramp-up "$RAMP" \
    --duration "$HOLD" --pace realtime --timeout 10s --report "$WORK/step-$n.json" \
    >"$WORK/step-$n.txt" || true
  kill "$sampler" 2>/dev/null || true
  peak=$(sort -n "$WORK/rss-$n" | tail -1)
  cat "$WORK/step-$n.txt" >&2
  verdict=$(python3 - "$WORK/step-$n.json" "$n" "$peak" "$idle_kb" "$P99_LIMIT_MS" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); n = int(sys.argv[2]); peak = int(sys.argv[3]); idle = int(sys.argv[4])
limit = float(sys.argv[5])
seg = r["kinds"].get("segment", {"latency_ms": {"p99": float("inf")}, "requests": 0})
ok = r["errors"] == 0 and r["late_segments"] == 0 and seg["latency_ms"]["p99"] < limit and seg["requests"] > 0
out = {"players": n, "holds": ok, "segment_p99_ms": seg["latency_ms"]["p99"],
       "segment_requests": seg["requests"], "errors": r["errors"], "late_segments": r["late_segments"],
       "requests_per_sec": r["requests_per_sec"], "gbit_per_sec": r["gbit_per_sec"],
       "edge_rss_peak_mib": peak / 1024, "edge_rss_per_player_kib": peak / n,
       "edge_rss_growth_per_player_kib": max(peak - idle, 0) / n,
       "time_to_first_segment_ms": r["time_to_first_segment_ms"], "cache_tiers": r["cache_tiers"],
       "errors_by_status": r["errors_by_status"]}
print(json.dumps(out))
PY
)
  log "result: $verdict"
  results+=("$verdict")
  if printf %s "$verdict" | grep -q '"holds": true'; then best=$n; else break; fi
done

stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results
python3 - "$best" "$idle_kb" "$THREADS" "$RAMP" "$HOLD" "${results[@]}" >"bench/results/players-$stamp.json" <<'PY'
import json, os, sys
best, idle, threads, ramp, hold = sys.argv[1:6]
steps = [json.loads(s) for s in sys.argv[6:]]
print(json.dumps({
    "bench": "players", "machine": {"cores": os.cpu_count(), "note": "load generator on the same cores"},
    "edge_threads": int(threads), "ramp": ramp, "hold": hold, "segment_p99_limit_ms": 50,
    "edge_rss_idle_mib": int(idle) / 1024, "max_players_holding": int(best), "steps": steps,
}, indent=2))
PY
cp "bench/results/players-$stamp.json" bench/results/players-latest.json
log "most players held: $best (bench/results/players-$stamp.json)"
