#!/usr/bin/env bash
# bench/players.sh: how many real-time HLS players one edge holds on this machine, and what each
# gigabyte costs it, against nginx + secure_link serving the same package the same way.
#
# Starts the local stack (`make demo`: a 20 s 720p video, 3 renditions + audio, gated by an NFT,
# and a viewer's tokenized HLS URL). Then, per server:
#   - edge:  a RELEASE edge on its own port over the stack's origin (same token keys,
#            `[cache] memory = 512MiB`, `server.threads` = BENCH_THREADS), cache warmed first;
#   - nginx: Debian's nginx (`worker_processes` = BENCH_THREADS, sendfile, open_file_cache)
#            serving the very files the transcoder wrote (the S3 server's directory) behind a
#            secure_link md5 link that grants the content id, like the edge's token;
# and drives it with the release `streamgate-loadtest` at real-time pace (every player asks
# for each 4 s segment when it is due) in steps of BENCH_PLAYERS players, edge then nginx at
# each step. A step holds when it has no error, no late segment and segment p99 < 50 ms; a
# server stops stepping after the first step it does not hold.
#
# With 2+ cores the server runs on CPU BENCH_SERVER_CPU (1) and the load generator on
# BENCH_LOAD_CPU (0), pinned with taskset, so the two do not steal each other's cycles. Per step
# the script records the server's CPU time (utime + stime of all its processes, /proc) and the
# body bytes the players received, i.e. CPU-seconds per GB served, and the server's memory
# (sum of Pss of its processes, so nginx's shared pages are not counted twice), sampled every
# second; per player it reports the peak and the growth over idle.
#
#   bench/players.sh            # steps "1000 2500 5000 7500 10000", both servers
#   BENCH_PLAYERS="500 1000" BENCH_RAMP=10s BENCH_HOLD=20s BENCH_SERVERS=edge bench/players.sh
#
# Writes bench/results/players-<UTC>.json and players-latest.json. Environment: BENCH_PLAYERS,
# BENCH_RAMP (20s), BENCH_HOLD (30s), BENCH_THREADS (2), BENCH_P99_MS (50), BENCH_SERVERS
# ("edge nginx"), BENCH_PIN (1; 0 leaves both unpinned), BENCH_SERVER_CPU, BENCH_LOAD_CPU,
# BENCH_EDGE_PORT / BENCH_EDGE_METRICS_PORT / BENCH_NGINX_PORT (18180 / 19190 / 18181),
# BENCH_EDGE_BIN (the edge binary to measure, default the release build; e.g. an older build
# kept aside, to compare two edges with the same script).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/nginx.sh
. bench/nginx.sh
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/streamgate/target}
STEPS=${BENCH_PLAYERS:-"1000 2500 5000 7500 10000"}
RAMP=${BENCH_RAMP:-20s}
HOLD=${BENCH_HOLD:-30s}
THREADS=${BENCH_THREADS:-2}
P99_LIMIT_MS=${BENCH_P99_MS:-50}
SERVERS=${BENCH_SERVERS:-"edge nginx"}
EDGE_PORT=${BENCH_EDGE_PORT:-18180}
EDGE_METRICS_PORT=${BENCH_EDGE_METRICS_PORT:-19190}
NGINX_PORT=${BENCH_NGINX_PORT:-18181}
REL=$CARGO_TARGET_DIR/release
EDGE_BIN=${BENCH_EDGE_BIN:-$REL/streamgate-proxy}
WORK=$(mktemp -d)
EDGE_PID=""
NGINX_PID=""
SAMPLER=""
log() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }
stop() { # pid
  [ -n "$1" ] && kill -0 "$1" 2>/dev/null || return 0
  kill "$1" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$1" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$1" 2>/dev/null || true
}
cleanup() { stop "$SAMPLER"; stop "$EDGE_PID"; stop "$NGINX_PID"; rm -rf "$WORK"; }
trap cleanup EXIT

# Pinning: the server on one core, the load generator on another.
PIN=${BENCH_PIN:-1}
if [ "$PIN" = 1 ] && [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
  SERVER_CPU=${BENCH_SERVER_CPU:-1}
  LOAD_CPU=${BENCH_LOAD_CPU:-0}
  ON_SERVER=(taskset -c "$SERVER_CPU")
  ON_LOAD=(taskset -c "$LOAD_CPU")
  PINNING="server on CPU $SERVER_CPU, load generator on CPU $LOAD_CPU (taskset)"
else
  ON_SERVER=()
  ON_LOAD=()
  PINNING="none: server and load generator share the cores"
fi

if [[ " $SERVERS " == *" nginx "* ]] && ! command -v nginx >/dev/null; then
  log "installing nginx (apt)"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends nginx >/dev/null
fi

log "building release edge and loadtest (first time: several minutes)"
cargo build --release --quiet -p streamgate-proxy -p streamgate-loadtest

log "starting the stack and the demo content"
demo=$(make --no-print-directory demo)
hls=$(printf %s "$demo" | sed -n 's/^  HLS:  //p')
[ -n "$hls" ] || die "make demo printed no HLS URL"
# shellcheck disable=SC1091
. .stack/env
path=${hls#"$EDGE_URL"}
# /p/{token}/{content id}/master.m3u8
cid=$(printf %s "$path" | awk -F/ '{ print $4 }')
[ -n "$cid" ] && [ "$(printf %s "$path" | awk -F/ '{ print $5 }')" = master.m3u8 ] \
  || die "unexpected HLS path shape: $path"
ulimit -n 65536 || log "cannot raise the open-file limit: $(ulimit -n)"

# --- the edge -------------------------------------------------------------------------------

start_edge() {
  # The stack edge's config on other ports: [server] listen and metrics-listen replaced, its TLS
  # listener dropped (this edge serves plain HTTP only), L1 512 MiB, BENCH_THREADS threads.
  python3 - "$STREAMGATE_CONFIG_DIR/proxy.toml" "$WORK/proxy.toml" "$THREADS" "$EDGE_PORT" \
    "$EDGE_METRICS_PORT" <<'PY'
import re, sys
src, dst, threads, port, mport = sys.argv[1:6]
out, section = [], ""
for line in open(src).read().splitlines():
    m = re.match(r"^\[\[?([^\]]+)\]\]?\s*$", line)
    if m:
        section = m.group(1)
        if section == "server.tls":
            continue
        out.append(line)
        if section == "server":
            out.append(f"threads = {threads}")
        continue
    if section == "server.tls":
        continue
    if section == "server" and re.match(r"^(listen|threads)\s*=", line):
        if line.startswith("listen"):
            out.append(f'listen = "127.0.0.1:{port}"')
        continue
    if section == "server" and re.match(r"^metrics-listen\s*=", line):
        out.append(f'metrics-listen = "127.0.0.1:{mport}"')
        continue
    if section == "cache" and re.match(r"^memory\s*=", line):
        out.append('memory = "512MiB"')
        continue
    out.append(line)
open(dst, "w").write("\n".join(out) + "\n")
PY
  "$EDGE_BIN" --config "$WORK/proxy.toml" --check-config >/dev/null
  STREAMGATE__LOG__FILTER=warn "${ON_SERVER[@]}" "$EDGE_BIN" --config "$WORK/proxy.toml" \
    >"$WORK/edge.log" 2>&1 &
  EDGE_PID=$!
  local edge="http://127.0.0.1:$EDGE_PORT"
  for _ in $(seq 1 100); do curl -fsS "$edge/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fsS "$edge/healthz" >/dev/null || die "the release edge did not start (see $WORK/edge.log)"
  URL_edge="$edge$path"
  PIDS_edge=$EDGE_PID
}

# --- nginx: secure_link over the transcoder's own files ---------------------------------------

start_nginx() {
  local media=$STACK_DIR/data/s3/$S3_BUCKET/media secret expires md5 bad
  [ -f "$media/$cid/master.m3u8" ] || die "no packaged master at $media/$cid/master.m3u8"
  secret=$(openssl rand -hex 16)
  expires=$(($(date +%s) + 86400))
  mkdir -p "$WORK/nginx/tmp"
  cat >"$WORK/nginx/nginx.conf" <<CONF
# generated by bench/players.sh
daemon off;
user $(id -un);   # workers read the package as the user who runs the bench
worker_processes $THREADS;
worker_rlimit_nofile 65536;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 32768; }
http {
$(nginx_http_common "$WORK/nginx")
  server {
    listen 127.0.0.1:$NGINX_PORT reuseport backlog=4096;
$(secure_link_location "$secret" "$media")
    }
    location / { return 404; }
  }
}
CONF
  nginx -t -q -e "$WORK/nginx/error.log" -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" \
    || die "the generated nginx config is invalid"
  "${ON_SERVER[@]}" nginx -e "$WORK/nginx/error.log" -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" &
  NGINX_PID=$!
  URL_nginx="http://127.0.0.1:$NGINX_PORT$(secure_link_path "$secret" "$expires" "$cid" master.m3u8)"
  md5=$(printf %s "$URL_nginx" | awk -F/ '{ print $5 }')
  for _ in $(seq 1 100); do curl -fsS -o /dev/null "$URL_nginx" 2>/dev/null && break; sleep 0.1; done
  curl -fsS -o "$WORK/master-nginx" "$URL_nginx" || die "nginx does not serve the master"
  cmp -s "$WORK/master-nginx" "$media/$cid/master.m3u8" || die "nginx's master differs from the package"
  bad=${URL_nginx/\/s\/$md5\//\/s\/AAAAAAAAAAAAAAAAAAAAAA\/}
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$bad")" = 403 ] || die "nginx serves a bad link"
  PIDS_nginx=$(server_tree "$NGINX_PID")
}

# --- measurements -----------------------------------------------------------------------------

# One step: prints the step's JSON line.
step() { # server, players
  local server=$1 n=$2 url pids t0 t1 peak idle
  url=URL_$server; url=${!url}
  pids=PIDS_$server; pids=${!pids}
  # shellcheck disable=SC2086
  idle=$(pss_kb $pids)
  # shellcheck disable=SC2086
  ( while kill -0 "${pids%% *}" 2>/dev/null; do pss_kb $pids; sleep 1; done ) >"$WORK/mem-$server-$n" &
  SAMPLER=$!
  # shellcheck disable=SC2086
  t0=$(cpu_ticks $pids)
  "${ON_LOAD[@]}" "$REL/streamgate-loadtest" players --url "$url" --players "$n" --ramp-up "$RAMP" \
    --duration "$HOLD" --pace realtime --timeout 10s --report "$WORK/step-$server-$n.json" \
    >"$WORK/step-$server-$n.txt" || true
  # shellcheck disable=SC2086
  t1=$(cpu_ticks $pids)
  stop "$SAMPLER"; SAMPLER=""
  peak=$(sort -n "$WORK/mem-$server-$n" | tail -1)
  cat "$WORK/step-$server-$n.txt" >&2
  python3 - "$WORK/step-$server-$n.json" "$server" "$n" "${peak:-0}" "$idle" "$P99_LIMIT_MS" \
    "$((t1 - t0))" "$(getconf CLK_TCK)" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); server = sys.argv[2]; n = int(sys.argv[3])
peak, idle, limit = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
cpu_s = int(sys.argv[7]) / int(sys.argv[8])
seg = r["kinds"].get("segment", {"latency_ms": {"p99": float("inf")}, "requests": 0})
ok = r["errors"] == 0 and r["late_segments"] == 0 and seg["latency_ms"]["p99"] < limit and seg["requests"] > 0
gb = r["bytes"] / 1e9
print(json.dumps({
    "server": server, "players": n, "holds": ok, "segment_p99_ms": seg["latency_ms"]["p99"],
    "segment_requests": seg["requests"], "errors": r["errors"], "late_segments": r["late_segments"],
    "requests_per_sec": r["requests_per_sec"], "gbit_per_sec": r["gbit_per_sec"],
    "bytes": r["bytes"], "seconds": r["seconds"], "cpu_seconds": cpu_s,
    "cpu_seconds_per_gb": cpu_s / gb if gb > 0 else None,
    "memory_idle_mib": idle / 1024, "memory_peak_mib": peak / 1024,
    "memory_per_player_kib": peak / n, "memory_growth_per_player_kib": max(peak - idle, 0) / n,
    "time_to_first_segment_ms": r["time_to_first_segment_ms"], "cache_tiers": r["cache_tiers"],
    "errors_by_status": r["errors_by_status"]}))
PY
}

for s in $SERVERS; do
  case $s in
    edge) start_edge
      # Warm every rendition into L1 (one fast player per rendition for a few seconds).
      "${ON_LOAD[@]}" "$REL/streamgate-loadtest" players --url "$URL_edge" --players 6 --duration 5s \
        --ramp-up 0s --pace max --quiet >/dev/null ;;
    nginx) start_nginx
      "${ON_LOAD[@]}" "$REL/streamgate-loadtest" players --url "$URL_nginx" --players 6 --duration 5s \
        --ramp-up 0s --pace max --quiet >/dev/null ;;
    *) die "BENCH_SERVERS: unknown server '$s' (edge, nginx)" ;;
  esac
done
log "pinning: $PINNING"

declare -A RUNNING=() BEST=()
for s in $SERVERS; do RUNNING[$s]=1; BEST[$s]=0; done
: >"$WORK/steps.jsonl"
for n in $STEPS; do
  for s in $SERVERS; do
    [ "${RUNNING[$s]}" = 1 ] || continue
    log "step: $s, $n players (ramp $RAMP, hold $HOLD)"
    verdict=$(step "$s" "$n")
    log "result: $verdict"
    printf '%s\n' "$verdict" >>"$WORK/steps.jsonl"
    if printf %s "$verdict" | grep -q '"holds": true'; then BEST[$s]=$n; else RUNNING[$s]=0; fi
  done
done

stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results
python3 - "$WORK/steps.jsonl" "$THREADS" "$RAMP" "$HOLD" "$P99_LIMIT_MS" "$PINNING" \
  "$(git rev-parse HEAD 2>/dev/null || echo unknown)" "$EDGE_BIN" >"bench/results/players-$stamp.json" <<'PY'
import json, os, sys
steps = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
threads, ramp, hold, limit, pinning, commit, edge_bin = sys.argv[2:9]
by = {}
for s in steps:
    by.setdefault(s["server"], []).append(s)
def best(server):
    held = [s["players"] for s in by.get(server, []) if s["holds"]]
    return max(held) if held else 0
def total_cpu_per_gb(server):
    ss = by.get(server, [])
    gb = sum(s["bytes"] for s in ss) / 1e9
    return sum(s["cpu_seconds"] for s in ss) / gb if gb > 0 else None
out = {
    "bench": "players", "git": {"commit": commit}, "edge_binary": edge_bin,
    "machine": {"cores": os.cpu_count(), "pinning": pinning},
    "server_threads": int(threads), "edge_threads": int(threads), "ramp": ramp, "hold": hold,
    "segment_p99_limit_ms": float(limit),
    "max_players_holding": best("edge"),
    "servers": {srv: {"max_players_holding": best(srv), "cpu_seconds_per_gb": total_cpu_per_gb(srv),
                      "steps": ss} for srv, ss in by.items()},
    "steps": by.get("edge", []),
}
if "edge" in by and "nginx" in by:
    ratios = []
    nginx = {s["players"]: s for s in by["nginx"]}
    for e in by["edge"]:
        g = nginx.get(e["players"])
        if g and e["cpu_seconds_per_gb"] and g["cpu_seconds_per_gb"]:
            ratios.append({"players": e["players"],
                           "cpu_per_gb": e["cpu_seconds_per_gb"] / g["cpu_seconds_per_gb"],
                           "memory_per_player": e["memory_per_player_kib"] / g["memory_per_player_kib"]})
    e, g = total_cpu_per_gb("edge"), total_cpu_per_gb("nginx")
    out["edge_over_nginx"] = {
        "cpu_seconds_per_gb_all_steps": e / g if e and g else None,
        "max_players_holding": best("edge") / best("nginx") if best("nginx") else None,
        "per_step": ratios}
print(json.dumps(out, indent=2))
PY
cp "bench/results/players-$stamp.json" bench/results/players-latest.json
for s in $SERVERS; do log "$s: most players held: ${BEST[$s]}"; done
log "wrote bench/results/players-$stamp.json"
