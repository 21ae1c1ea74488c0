#!/usr/bin/env bash
# Edge vs nginx on gated cache hits: the StreamGate edge (release build of streamgate-proxy) and
# Debian's nginx with secure_link serve the same two objects, a ~1 KB HLS master playlist and a
# 1 MiB fMP4 segment, from the same machine, driven by the same load tool (wrk) in the same run.
# Every request carries a valid credential and is checked: a playback token on the edge, an
# md5/expires link on nginx. The edge answers from its L1 memory cache (warmed first, then
# verified HIT-L1); nginx answers from disk (page cache) with sendfile.
#
#   bench/compare.sh
#
# Starts everything it needs and stops it on exit (nginx twice over: the secure_link server and
# a plain origin for the edge, both on free loopback ports; the edge), installs nginx and wrk
# with apt if missing, and builds the release edge if it is missing or older than its sources.
# Each (server x object) pair is measured BENCH_RUNS times (2), alternating edge/nginx/edge/nginx, and the mean
# is reported with both runs. Prints a table and the edge/nginx ratios, and writes
# bench/results/compare-<UTC timestamp>.json and bench/results/compare-latest.json.
#
# Besides wrk's figures, each run records the server's own CPU time (utime + stime of its
# processes, from /proc): CPU microseconds per request, a cost that does not depend on how much
# of the shared machine the server happened to get during the run.
#
# Environment: BENCH_DURATION (wrk -d, default 10s), BENCH_RUNS (measured runs per pair, 2),
# BENCH_CONNECTIONS (wrk -c, 64),
# BENCH_WRK_THREADS (wrk -t, 2), BENCH_THREADS (the edge's server.threads and nginx's
# worker_processes, 2), BENCH_WARMUP (unrecorded wrk pass per pair before measuring, 2s; 0 skips),
# BENCH_NGINX_SENDFILE (on|off, default on), BENCH_NO_BUILD=1 (use the release binary as it is),
# BENCH_KEEP=1 (keep the temp dir, configs, logs and raw wrk output), CARGO_TARGET_DIR (default
# ~/.cache/streamgate/target; the binary is $CARGO_TARGET_DIR/release/streamgate-proxy),
# BENCH_PROFILE=1 (after the measured runs, sample both servers under the same load with
# `perf record` (cpu-clock, DWARF call graphs) and write flame graphs
# bench/results/flame-{edge,nginx}-{manifest,segment}.svg; installs linux-perf with apt and
# inferno with cargo if missing), BENCH_PROFILE_SECONDS (sampling time per graph, 5).
#
# wrk runs on the same cores as the servers (2 on the reference machine), so every figure is
# "server + load generator sharing the CPU"; nothing is pinned. Compare ratios, not absolutes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
# shellcheck source=bench/nginx.sh
. bench/nginx.sh
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/streamgate/target}
BIN=$CARGO_TARGET_DIR/release/streamgate-proxy
DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-64}
WRK_THREADS=${BENCH_WRK_THREADS:-2}
WORKERS=${BENCH_THREADS:-2}     # nginx worker_processes = the edge's server.threads
WARMUP=${BENCH_WARMUP:-2s}
RUNS=${BENCH_RUNS:-2}            # measured runs per (object x server), alternating
CLK_TCK=$(getconf CLK_TCK)
SENDFILE=${BENCH_NGINX_SENDFILE:-on}
RESULTS=$ROOT/bench/results
CID=benchvideo01               # content id: [A-Za-z0-9_-]{1,64}
MANIFEST=master.m3u8
SEGMENT=360p/seg-00001.m4s
STARTED_AT=$(date -u +%Y-%m-%dT%H:%M:%SZ)
STAMP=$(date -u +%Y-%m-%dT%H%M%SZ)
T0=$SECONDS

log() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }

# --- tools ------------------------------------------------------------------------------------

installed() { dpkg -s "$1" 2>/dev/null | grep -q '^Status: install ok installed'; }

install_tools() {
  local need=() p
  for p in nginx wrk; do installed "$p" || need+=("$p"); done
  if ((${#need[@]})); then
    log "installing ${need[*]} (apt)"
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    # Only the binaries are used: this script never starts the packaged nginx service.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  command -v nginx >/dev/null || die "nginx not found after installing it"
  command -v wrk >/dev/null || die "wrk not found after installing it"
  nginx -V 2>&1 | grep -q -- --with-http_secure_link_module \
    || die "this nginx has no secure_link module (nginx -V)"
  for p in curl openssl cmp awk; do command -v "$p" >/dev/null || die "$p is required"; done
}

# Flame graphs (BENCH_PROFILE=1): perf from Debian, inferno's collapse and SVG writer from
# crates.io, installed under ~/.cache/streamgate/tools (not the project's target dir).
INFERNO_ROOT=$HOME/.cache/streamgate/tools
install_profiler() {
  if ! command -v perf >/dev/null; then
    log "installing linux-perf (apt)"
    local sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends linux-perf >/dev/null
  fi
  perf record -e cpu-clock -o /dev/null -- true >/dev/null 2>&1 \
    || die "perf record does not work here (perf_event_paranoid=$(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null))"
  if [ ! -x "$INFERNO_ROOT/bin/inferno-flamegraph" ]; then
    log "installing inferno ^0.12 (cargo install, about a minute)"
    CARGO_TARGET_DIR=$INFERNO_ROOT/target cargo install --quiet --locked --root "$INFERNO_ROOT" inferno@^0.12 \
      || die "cargo install inferno failed"
  fi
}

# --- the edge binary --------------------------------------------------------------------------

ensure_binary() {
  local newer=""
  if [ -x "$BIN" ]; then
    newer=$(find proxy/src proxy/Cargo.toml config/src config/Cargo.toml auth/src auth/Cargo.toml \
      Cargo.toml Cargo.lock rust-toolchain.toml -newer "$BIN" -type f -print -quit 2>/dev/null || true)
    [ -z "$newer" ] && return 0
    if [ "${BENCH_NO_BUILD:-0}" = 1 ]; then
      log "warning: $BIN is older than $newer (BENCH_NO_BUILD=1: using it anyway)"
      return 0
    fi
    log "$BIN is older than $newer: rebuilding"
  else
    [ "${BENCH_NO_BUILD:-0}" = 1 ] && die "missing $BIN and BENCH_NO_BUILD=1"
    log "missing $BIN: building it"
  fi
  log "cargo build --release -p streamgate-proxy (about 10 min from scratch on 2 cores)"
  cargo build --release -p streamgate-proxy \
    || die "release build failed; build it with 'CARGO_TARGET_DIR=$CARGO_TARGET_DIR cargo build --release -p streamgate-proxy'"
  [ -x "$BIN" ] || die "the build finished but $BIN is missing"
}

# --- processes and cleanup --------------------------------------------------------------------

WORK=""
NGINX_PID=""
EDGE_PID=""
WRK_PID=""

stop_pid() { # pid, signal
  local pid=$1 sig=$2
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  stop_pid "$WRK_PID" TERM
  stop_pid "$EDGE_PID" TERM
  stop_pid "$NGINX_PID" TERM   # nginx: fast stop of master and workers
  if [ -n "$WORK" ] && [ -d "$WORK" ]; then
    if [ "$rc" != 0 ] && [ "$rc" != 130 ] && [ "$rc" != 143 ]; then
      for f in "$WORK/edge.log" "$WORK/nginx/error.log"; do
        [ -s "$f" ] && { echo "--- tail of $f" >&2; tail -n 20 "$f" >&2; }
      done
    fi
    if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PICKED=" "
# Below the ephemeral range, so that no client socket (curl, wrk, the edge's own) holds it.
EPHEMERAL_LOW=$(awk '{ print $1 }' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
pick_port() { # variable name: a loopback port nothing listens on, not picked before
  local p
  for _ in $(seq 1 500); do
    p=$((10000 + RANDOM % (EPHEMERAL_LOW - 10000)))
    case "$PICKED" in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      PICKED="$PICKED$p "
      printf -v "$1" %s "$p"
      return 0
    fi
  done
  die "no free loopback port found"
}

wait_http() { # name, url, pid: until it answers at all (up to 30 s), while the process lives
  for _ in $(seq 1 300); do
    kill -0 "$3" 2>/dev/null || die "$1 exited at start-up"
    curl -s -o /dev/null --max-time 1 "$2" && return 0
    sleep 0.1
  done
  die "$1 did not answer at $2"
}

# --- the objects ------------------------------------------------------------------------------

# A master playlist in the transcoder's format (the stack's largest is ~0.5 KB for 3 renditions;
# this one has 5 renditions, an audio group and I-frame playlists, ~1 KB). Relative URIs, as the
# transcoder writes them: the edge's manifest rewriter runs but copies them unchanged.
write_master() {
  local r
  {
    printf '#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n'
    printf '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="group_A1",NAME="audio",DEFAULT=YES,AUTOSELECT=YES,LANGUAGE="en",URI="audio/index.m3u8"\n'
    for r in "431850 426x240 avc1.4d4015" "931850 640x360 avc1.4d401e" "1931850 960x540 avc1.64001f" \
      "3131850 1280x720 avc1.64001f" "5131850 1920x1080 avc1.640028"; do
      set -- $r
      printf '#EXT-X-STREAM-INF:BANDWIDTH=%s,RESOLUTION=%s,CODECS="%s,mp4a.40.2",AUDIO="group_A1"\n%sp/index.m3u8\n\n' \
        "$1" "$2" "$3" "${2#*x}"
    done
    for r in "86370 640x360" "257170 1920x1080"; do
      set -- $r
      printf '#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=%s,RESOLUTION=%s,CODECS="avc1.64001f",URI="%sp/iframes.m3u8"\n' \
        "$1" "$2" "${2#*x}"
    done
  } >"$1"
}

make_objects() {
  mkdir -p "$WWW/v/$CID/360p"
  write_master "$WWW/v/$CID/$MANIFEST"
  head -c 1048576 /dev/urandom >"$WWW/v/$CID/$SEGMENT"
  # nginx workers may run as nobody: the served tree must be world-readable.
  chmod 755 "$WORK" "$WWW" "$WWW/v" "$WWW/v/$CID" "$WWW/v/$CID/360p"
  chmod 644 "$WWW/v/$CID/$MANIFEST" "$WWW/v/$CID/$SEGMENT"
}

# --- nginx: the secure_link server (measured) and the edge's origin (warm-up only) -------------

write_nginx_conf() {
  mkdir -p "$WORK/nginx/tmp"
  cat >"$WORK/nginx/nginx.conf" <<CONF
# generated by bench/compare.sh
daemon off;
worker_processes $WORKERS;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 4096; }
http {
$(nginx_http_common "$WORK/nginx" "$SENDFILE")

  # Measured: /s/{md5}/{expires}/{content id}/{path}. Like the edge's playback token, the link
  # grants one content id (every path under it) until an expiry: md5 over expiry, id and secret.
  server {
    listen 127.0.0.1:$NGINX_PORT reuseport;
$(secure_link_location "$NGINX_SECRET" "$WWW/v")
      add_header Cache-Control "public, max-age=31536000, immutable";
    }
    location / { return 404; }
  }

  # The edge's origin: /v/{id}/{path}, immutable, with an ETag (nginx's default).
  server {
    listen 127.0.0.1:$ORIGIN_PORT;
    root $WWW;
    location /v/ { add_header Cache-Control "public, max-age=31536000, immutable"; }
    location / { return 404; }
  }
}
CONF
}

nginx_link() { # content id, path, [secret]: /s/{md5}/{expires}/{id}/{path}
  secure_link_path "${3:-$NGINX_SECRET}" "$EXPIRES" "$1" "$2"
}

# --- the edge ---------------------------------------------------------------------------------

write_edge_conf() {
  mkdir -p "$WORK/secrets"
  chmod 700 "$WORK/secrets"
  openssl rand -hex 32 >"$WORK/secrets/token-k1"
  cat >"$WORK/proxy.toml" <<TOML
# generated by bench/compare.sh: no [session]/[entitlements] (playback tokens only), no L2
[server]
listen = "127.0.0.1:$EDGE_PORT"
metrics-listen = "127.0.0.1:$EDGE_METRICS_PORT"
threads = $WORKERS
grace-period = "1s"

[upstream]
origin = "127.0.0.1:$ORIGIN_PORT"

[cache]
memory = "256MiB"

[tokens]
signing-key = "k1"

[[tokens.keys]]
id = "k1"
secret = { file = "$WORK/secrets/token-k1" }

[log]
filter = "info"
TOML
  "$BIN" --config "$WORK/proxy.toml" --check-config >/dev/null || die "the generated edge config is invalid"
}

mint() { # content id: prints the token
  "$BIN" token mint --config "$WORK/proxy.toml" --content "$1" --ttl 1h 2>"$WORK/mint.err" \
    || { cat "$WORK/mint.err" >&2; die "token mint failed"; }
}

# --- checks -----------------------------------------------------------------------------------

fetch() { # url, body file, header file: prints the status
  curl -s -o "$2" -D "$3" -w '%{http_code}' --max-time 10 "$1" || true   # 000: no answer
}

header() { # header file, name
  awk -v n="$2" 'BEGIN { n = tolower(n) } { sub(/\r$/, "") }
    tolower(substr($0, 1, length(n) + 1)) == n ":" { v = substr($0, length(n) + 2); sub(/^ +/, "", v); print v; exit }' "$1"
}

verify() { # name, edge url, nginx url, source file
  local name=$1 edge=$2 ngx=$3 src=$4 st xc
  st=$(fetch "$edge" "$WORK/b" "$WORK/h")
  xc=$(header "$WORK/h" x-cache)
  [ "$st" = 200 ] && [ "$xc" = MISS ] || die "$name: first edge fetch answered $st x-cache '$xc' (want 200 MISS)"
  st=$(fetch "$edge" "$WORK/b" "$WORK/h")
  xc=$(header "$WORK/h" x-cache)
  [ "$st" = 200 ] && [ "$xc" = HIT-L1 ] || die "$name: second edge fetch answered $st x-cache '$xc' (want 200 HIT-L1)"
  cmp -s "$WORK/b" "$src" || die "$name: the edge's bytes differ from $src"
  st=$(fetch "$ngx" "$WORK/b" "$WORK/h")
  [ "$st" = 200 ] || die "$name: nginx answered $st (want 200)"
  cmp -s "$WORK/b" "$src" || die "$name: nginx's bytes differ from $src"
  log "$name: edge 200 MISS then HIT-L1, nginx 200, both byte-identical to the source ($(wc -c <"$src") B)"
}

verify_refusals() {
  local st bad other
  # A tampered token (one character of the signature changed), and a valid token for other content.
  bad=$(printf '%s' "$TOKEN" | awk '{ i = int(length($0) / 2); c = substr($0, i, 1); print substr($0, 1, i - 1) (c == "A" ? "B" : "A") substr($0, i + 1) }')
  other=$(mint othervideo)
  st=$(fetch "$EDGE_URL/p/$bad/$CID/$MANIFEST" /dev/null /dev/null)
  [ "$st" = 403 ] || die "edge: a tampered token answered $st (want 403)"
  st=$(fetch "$EDGE_URL/p/$other/$CID/$SEGMENT" /dev/null /dev/null)
  [ "$st" = 403 ] || die "edge: another content's token answered $st (want 403)"
  # A link signed with another secret, and a valid link for other content used on this one.
  st=$(fetch "$NGINX_URL$(nginx_link "$CID" "$MANIFEST" wrong-secret)" /dev/null /dev/null)
  [ "$st" = 403 ] || die "nginx: a wrong md5 answered $st (want 403)"
  other=$(nginx_link othervideo "$SEGMENT")
  st=$(fetch "$NGINX_URL${other/othervideo/$CID}" /dev/null /dev/null)
  [ "$st" = 403 ] || die "nginx: another content's link answered $st (want 403)"
  log "refusals: a bad credential and another content's credential get 403 on both servers"
}

# Whether a second request on the connection is answered on it (curl reuses it): "true"/"false".
keepalive() { # url
  local n
  n=$(curl -s -o /dev/null -o /dev/null -w '%{num_connects}\n' --max-time 10 "$1" "$1" | tail -n 1) || true
  if [ "$n" = 0 ]; then echo true; else echo false; fi
}

check_keepalive() {
  local o s url
  for o in manifest segment; do
    for s in edge nginx; do
      if [ "$s" = edge ]; then url=$EDGE_URL${EDGE_PATHS[$o]}; else url=$NGINX_URL${NGINX_PATHS[$o]}; fi
      KEEPALIVE[$o-$s]=$(keepalive "$url")
      [ "${KEEPALIVE[$o-$s]}" = true ] \
        || log "warning: $s closes the connection after a $o answer (no keep-alive): every request pays a new TCP connection"
    done
  done
}

origin_fetches() {
  curl -s --max-time 5 "$EDGE_METRICS_URL/metrics" \
    | awk '/^streamgate_edge_origin_fetches_total/ { s += $NF } END { printf "%d", s }'
}

# --- load -------------------------------------------------------------------------------------

# wrk's summary as one TSV row: rps, MiB/s, p50 ms, p99 ms, requests, non-2xx/3xx, then socket
# errors: connect, read, write, timeout.
parse_wrk() {
  awk '
    function ms(v) {
      if (v ~ /us$/) return v / 1000
      if (v ~ /ms$/) return v + 0
      if (v ~ /m$/) return v * 60000
      if (v ~ /s$/) return v * 1000
      return v + 0
    }
    function mib(v,  n) {
      n = v + 0
      if (v ~ /TB$/) return n * 1048576
      if (v ~ /GB$/) return n * 1024
      if (v ~ /MB$/) return n
      if (v ~ /KB$/) return n / 1024
      return n / 1048576
    }
    $1 == "50%" { p50 = ms($2) }
    $1 == "99%" { p99 = ms($2) }
    $2 == "requests" && $3 == "in" { reqs = $1 }
    /^Requests\/sec:/ { rps = $2 }
    /^Transfer\/sec:/ { tr = mib($2) }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ { gsub(/,/, ""); ec = $4; er = $6; ew = $8; et = $10 }
    END {
      if (rps == "") exit 1
      printf "%.2f\t%.2f\t%.3f\t%.3f\t%d\t%d\t%d\t%d\t%d\t%d\n", rps, tr, p50, p99, reqs, non2xx + 0, ec + 0, er + 0, ew + 0, et + 0
    }'
}

server_pids() { # server
  if [ "$1" = edge ]; then echo "$EDGE_PID"; else server_tree "$NGINX_PID"; fi
}

run_wrk() { # object, server, run number, url
  local out=$WORK/wrk-$1-$2-$3.txt row pids t0 t1
  pids=$(server_pids "$2")
  # shellcheck disable=SC2086
  t0=$(cpu_ticks $pids)
  # In the background and waited for, so that an interrupt is handled at once (cleanup stops it).
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$4" >"$out" 2>&1 &
  WRK_PID=$!
  wait "$WRK_PID" || { cat "$out" >&2; die "wrk failed on $2 $1"; }
  WRK_PID=""
  # shellcheck disable=SC2086
  t1=$(cpu_ticks $pids)
  row=$(parse_wrk <"$out") || { cat "$out" >&2; die "cannot read wrk's output for $2 $1"; }
  row=$(printf '%s\t%s' "$row" "$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" 'BEGIN { printf "%.3f", t / hz }')")
  printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$row" >>"$WORK/runs.tsv"
  log "$(printf '%-8s %-5s run %s: %s' "$1" "$2" "$3" "$(printf '%s' "$row" | awk -F'\t' '{ printf "%9.0f req/s %8.1f MiB/s  p50 %7.3f ms  p99 %7.3f ms  non-2xx %d  socket errors %d  server CPU %.1f s = %.1f us/request", $1, $2, $3, $4, $6, $7 + $8 + $9 + $10, $11, ($5 > 0 ? $11 * 1e6 / $5 : 0) }')")"
  [ "$(printf '%s' "$row" | cut -f6)" = 0 ] || die "$2 $1: wrk saw non-2xx answers (see above)"
  [ "$(printf '%s' "$row" | cut -f8)" = 0 ] \
    || log "  note: $(printf '%s' "$row" | cut -f8) read errors: $2 closed connections under wrk (a close after every answer means no keep-alive, see checks)"
}

# --- profiles -------------------------------------------------------------------------------

# Samples `pids` (comma-separated) while wrk loads `url`, and writes the flame graph.
profile_one() { # object, server, pids, url
  local data=$WORK/perf-$1-$2.data svg=$RESULTS/flame-$2-$1.svg secs=${BENCH_PROFILE_SECONDS:-5}
  wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$((secs + 2))s" "$4" >"$WORK/wrk-profile-$1-$2.txt" 2>&1 &
  WRK_PID=$!
  sleep 1   # past connection set-up: sample the steady state
  perf record -q -e cpu-clock -F 499 --call-graph dwarf,16384 -p "$3" -o "$data" -- sleep "$secs" \
    >"$WORK/perf-$1-$2.log" 2>&1 || { cat "$WORK/perf-$1-$2.log" >&2; die "perf record failed on $2"; }
  wait "$WRK_PID" || die "wrk failed while profiling $2 $1"
  WRK_PID=""
  mkdir -p "$RESULTS"
  perf script -i "$data" 2>/dev/null \
    | "$INFERNO_ROOT/bin/inferno-collapse-perf" --all \
    | "$INFERNO_ROOT/bin/inferno-flamegraph" --title "$2 serving the $1 (gated cache hit), wrk -c$CONNECTIONS on the same cores" \
      --subtitle "perf cpu-clock 499 Hz x ${secs}s, $(date -u +%Y-%m-%d), commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
      --minwidth 0.2 >"$svg" || die "cannot render $svg"
  log "profile: ${svg#"$ROOT"/} ($(perf report -i "$data" --stdio 2>/dev/null | awk '/^# Samples/ { print $3; exit }') samples)"
}

profiles() {
  local workers object
  workers=$(pgrep -d, -P "$NGINX_PID" || true)
  [ -n "$workers" ] || die "no nginx worker processes found under $NGINX_PID"
  for object in manifest segment; do
    profile_one "$object" edge "$EDGE_PID" "$EDGE_URL${EDGE_PATHS[$object]}"
    profile_one "$object" nginx "$workers" "$NGINX_URL${NGINX_PATHS[$object]}"
  done
}

# --- report -----------------------------------------------------------------------------------

json_str() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }

report() {
  local json=$RESULTS/compare-$STAMP.json commit dirty cpu kernel nginx_v wrk_v
  mkdir -p "$RESULTS"
  commit=$(git rev-parse HEAD 2>/dev/null || echo unknown)
  dirty=false
  [ -z "$(git --no-optional-locks status --porcelain 2>/dev/null)" ] || dirty=true
  cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
  kernel=$(uname -sr)
  nginx_v=$(nginx -v 2>&1 | sed 's|.*nginx/||')
  wrk_v=$(dpkg-query -W -f='${Version}' wrk 2>/dev/null || echo unknown)
  awk -F'\t' \
    -v started="$STARTED_AT" -v finished="$(date -u +%Y-%m-%dT%H:%M:%SZ)" -v elapsed="$((SECONDS - T0))" \
    -v commit="$commit" -v dirty="$dirty" -v cpus="$(nproc)" -v cpu="$(json_str "$cpu")" \
    -v kernel="$(json_str "$kernel")" -v nginx_v="$nginx_v" -v wrk_v="$wrk_v" \
    -v bin="$BIN" -v bin_mtime="$(date -u -r "$BIN" +%Y-%m-%dT%H:%M:%SZ)" \
    -v duration="$DURATION" -v conns="$CONNECTIONS" -v threads="$WRK_THREADS" -v workers="$WORKERS" \
    -v warmup="$WARMUP" -v sendfile="$SENDFILE" -v mbytes="$MANIFEST_BYTES" -v sbytes="$SEGMENT_BYTES" \
    -v mpath="$MANIFEST" -v spath="$SEGMENT" -v cid="$CID" \
    -v fetches="$FETCHES_DURING_LOAD" -v json="$json" -v runs="$RUNS" \
    -v kalive="manifest-edge=${KEEPALIVE[manifest-edge]} manifest-nginx=${KEEPALIVE[manifest-nginx]} segment-edge=${KEEPALIVE[segment-edge]} segment-nginx=${KEEPALIVE[segment-nginx]}" '
    BEGIN { nk = split(kalive, kv, " "); for (i = 1; i <= nk; i++) { split(kv[i], p, "="); ka[p[1]] = p[2] } }
    {
      k = $1 SUBSEP $2; n[k]++
      run[k, n[k]] = sprintf("{\"rps\": %.2f, \"mib_per_s\": %.2f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"requests\": %d, \"non_2xx\": %d, \"socket_errors\": {\"connect\": %d, \"read\": %d, \"write\": %d, \"timeout\": %d}, \"server_cpu_s\": %.3f, \"server_cpu_us_per_request\": %.3f}", $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, ($8 > 0 ? $14 * 1e6 / $8 : 0))
      rps[k] += $4; mib[k] += $5; p50[k] += $6; p99[k] += $7; scpu[k] += $14; reqs[k] += $8
      rpsl[k] = rpsl[k] (n[k] > 1 ? " / " : "") sprintf("%.0f", $4)
    }
    function mean(a, k) { return a[k] / n[k] }
    function us_per_req(k) { return reqs[k] > 0 ? scpu[k] * 1e6 / reqs[k] : 0 }
    function cpu_ratio(o,  e, g) { e = us_per_req(o SUBSEP "edge"); g = us_per_req(o SUBSEP "nginx"); return g > 0 ? e / g : 0 }
    function server(o, s, bytes,  k, i, out) {
      k = o SUBSEP s
      out = sprintf("{\"rps\": %.2f, \"mib_per_s\": %.2f, \"payload_mb_per_s\": %.2f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"server_cpu_us_per_request\": %.3f, \"keepalive\": %s, \"runs\": [", \
        mean(rps, k), mean(mib, k), mean(rps, k) * bytes / 1e6, mean(p50, k), mean(p99, k), us_per_req(k), ka[o "-" s])
      for (i = 1; i <= n[k]; i++) out = out (i > 1 ? ", " : "") run[k, i]
      return out "]}"
    }
    function ratio(a, o) { return a[o SUBSEP "edge"] / n[o SUBSEP "edge"] / (a[o SUBSEP "nginx"] / n[o SUBSEP "nginx"]) }
    function object(o, path, bytes, ep, np) {
      return sprintf("{\"bytes\": %d, \"edge_path\": \"%s\", \"nginx_path\": \"%s\",\n      \"edge\": %s,\n      \"nginx\": %s,\n      \"edge_over_nginx\": {\"rps\": %.3f, \"mib_per_s\": %.3f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"server_cpu_per_request\": %.3f, \"requests_per_server_cpu_s\": %.3f}}", \
        bytes, ep, np, server(o, "edge", bytes), server(o, "nginx", bytes), ratio(rps, o), ratio(mib, o), ratio(p50, o), ratio(p99, o), cpu_ratio(o), (cpu_ratio(o) > 0 ? 1 / cpu_ratio(o) : 0))
    }
    END {
      printf "{\n  \"schema\": 1,\n  \"bench\": \"compare\",\n" > json
      printf "  \"started_at\": \"%s\",\n  \"finished_at\": \"%s\",\n  \"elapsed_s\": %d,\n", started, finished, elapsed > json
      printf "  \"git\": {\"commit\": \"%s\", \"dirty\": %s},\n", commit, dirty > json
      printf "  \"machine\": {\"cpus\": %d, \"cpu\": \"%s\", \"kernel\": \"%s\"},\n", cpus, cpu, kernel > json
      printf "  \"software\": {\"nginx\": \"%s\", \"wrk\": \"%s\", \"edge_binary\": \"%s\", \"edge_binary_built_at\": \"%s\"},\n", nginx_v, wrk_v, bin, bin_mtime > json
      printf "  \"settings\": {\"duration\": \"%s\", \"connections\": %d, \"wrk_threads\": %d, \"server_workers\": %d, \"warmup\": \"%s\", \"nginx_sendfile\": \"%s\", \"runs_per_pair\": %d, \"order\": \"edge, nginx, edge, nginx, ... (per object)\", \"load_generator_shares_cpu\": true},\n", duration, conns, threads, workers, warmup, sendfile, runs > json
      printf "  \"checks\": {\"byte_identical\": true, \"edge_cache_hits_verified\": true, \"bad_credentials_403\": true, \"keepalive\": {\"manifest\": {\"edge\": %s, \"nginx\": %s}, \"segment\": {\"edge\": %s, \"nginx\": %s}}, \"edge_origin_fetches_during_load\": %d},\n", ka["manifest-edge"], ka["manifest-nginx"], ka["segment-edge"], ka["segment-nginx"], fetches > json
      printf "  \"objects\": {\n    \"manifest\": %s,\n", object("manifest", mpath, mbytes, "/p/{token}/" cid "/" mpath, "/s/{md5}/{expires}/" cid "/" mpath) > json
      printf "    \"segment\": %s\n  }\n}\n", object("segment", spath, sbytes, "/p/{token}/" cid "/" spath, "/s/{md5}/{expires}/" cid "/" spath) > json
      close(json)

      printf "\n%-9s %-6s %10s %19s %10s %12s %9s %9s %9s  %s\n", "object", "server", "req/s", "(runs)", "MiB/s", "payload MB/s", "p50 ms", "p99 ms", "CPU us/req", "keep-alive"
      split("manifest segment", objs, " "); split("edge nginx", srvs, " ")
      for (i = 1; i <= 2; i++) for (j = 1; j <= 2; j++) {
        o = objs[i]; s = srvs[j]; k = o SUBSEP s; b = (o == "manifest" ? mbytes : sbytes)
        printf "%-9s %-6s %10.0f %19s %10.1f %12.1f %9.3f %9.3f %9.2f  %s\n", o, s, mean(rps, k), "(" rpsl[k] ")", mean(mib, k), mean(rps, k) * b / 1e6, mean(p50, k), mean(p99, k), us_per_req(k), (ka[o "-" s] == "true" ? "yes" : "NO")
      }
      printf "\nedge/nginx req/s: manifest %.2f, segment %.2f   (MiB/s: %.2f, %.2f; p50: %.2f, %.2f; p99: %.2f, %.2f)\n", \
        ratio(rps, "manifest"), ratio(rps, "segment"), ratio(mib, "manifest"), ratio(mib, "segment"), \
        ratio(p50, "manifest"), ratio(p50, "segment"), ratio(p99, "manifest"), ratio(p99, "segment")
      printf "edge/nginx server CPU per request: manifest %.2f, segment %.2f   (requests per server CPU-second: %.2f, %.2f)\n", \
        cpu_ratio("manifest"), cpu_ratio("segment"), 1 / cpu_ratio("manifest"), 1 / cpu_ratio("segment")
    }' "$WORK/runs.tsv"
  cp "$json" "$RESULTS/compare-latest.json"
  printf '\n%s workers/threads per server, wrk -t%s -c%s -d%s on the same %s cores (the load tool competes with the server: compare ratios, not absolutes)\n' \
    "$WORKERS" "$WRK_THREADS" "$CONNECTIONS" "$DURATION" "$(nproc)"
  printf 'wrote %s and %s (%ss)\n' "${json#"$ROOT"/}" "bench/results/compare-latest.json" "$((SECONDS - T0))"
}

# --- main -------------------------------------------------------------------------------------

install_tools
[ "${BENCH_PROFILE:-0}" = 1 ] && install_profiler
ensure_binary

WORK=$(mktemp -d "${TMPDIR:-/tmp}/streamgate-bench.XXXXXX")
WWW=$WORK/www
pick_port NGINX_PORT; pick_port ORIGIN_PORT; pick_port EDGE_PORT; pick_port EDGE_METRICS_PORT
NGINX_URL=http://127.0.0.1:$NGINX_PORT
EDGE_URL=http://127.0.0.1:$EDGE_PORT
EDGE_METRICS_URL=http://127.0.0.1:$EDGE_METRICS_PORT
NGINX_SECRET=$(openssl rand -hex 16)
EXPIRES=$(($(date +%s) + 3600))

make_objects
MANIFEST_BYTES=$(wc -c <"$WWW/v/$CID/$MANIFEST")
SEGMENT_BYTES=$(wc -c <"$WWW/v/$CID/$SEGMENT")

write_nginx_conf
nginx -t -q -e "$WORK/nginx/error.log" -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" \
  || die "the generated nginx config is invalid ($WORK/nginx/nginx.conf)"
nginx -e "$WORK/nginx/error.log" -p "$WORK/nginx/" -c "$WORK/nginx/nginx.conf" &
NGINX_PID=$!
wait_http nginx "$NGINX_URL/" "$NGINX_PID"
wait_http origin "http://127.0.0.1:$ORIGIN_PORT/" "$NGINX_PID"
log "nginx (pid $NGINX_PID, $WORKERS workers): secure_link on :$NGINX_PORT, edge origin on :$ORIGIN_PORT"

write_edge_conf
"$BIN" --config "$WORK/proxy.toml" >"$WORK/edge.log" 2>&1 &
EDGE_PID=$!
wait_http edge "$EDGE_URL/readyz" "$EDGE_PID"
curl -fs -o /dev/null --max-time 5 "$EDGE_URL/readyz" || die "the edge is not ready at $EDGE_URL/readyz"
log "edge (pid $EDGE_PID, $WORKERS threads) on :$EDGE_PORT, L1 cache 256MiB"

TOKEN=$(mint "$CID")
[ -n "$TOKEN" ] || die "token mint printed nothing"
declare -A EDGE_PATHS=([manifest]="/p/$TOKEN/$CID/$MANIFEST" [segment]="/p/$TOKEN/$CID/$SEGMENT")
declare -A NGINX_PATHS=([manifest]="$(nginx_link "$CID" "$MANIFEST")" [segment]="$(nginx_link "$CID" "$SEGMENT")")

verify manifest "$EDGE_URL${EDGE_PATHS[manifest]}" "$NGINX_URL${NGINX_PATHS[manifest]}" "$WWW/v/$CID/$MANIFEST"
verify segment "$EDGE_URL${EDGE_PATHS[segment]}" "$NGINX_URL${NGINX_PATHS[segment]}" "$WWW/v/$CID/$SEGMENT"
verify_refusals
declare -A KEEPALIVE=()
check_keepalive

FETCHES_BEFORE=$(origin_fetches)
: >"$WORK/runs.tsv"
log "load: wrk -t$WRK_THREADS -c$CONNECTIONS -d$DURATION --latency, per object edge/nginx/edge/nginx"
for object in manifest segment; do
  if [ "$WARMUP" != 0 ] && [ "$WARMUP" != 0s ]; then
    wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$EDGE_URL${EDGE_PATHS[$object]}" >/dev/null 2>&1 || true
    wrk -t"$WRK_THREADS" -c"$CONNECTIONS" -d"$WARMUP" "$NGINX_URL${NGINX_PATHS[$object]}" >/dev/null 2>&1 || true
  fi
  for n in $(seq 1 "$RUNS"); do
    run_wrk "$object" edge "$n" "$EDGE_URL${EDGE_PATHS[$object]}"
    sleep 1
    run_wrk "$object" nginx "$n" "$NGINX_URL${NGINX_PATHS[$object]}"
    sleep 1
  done
done
FETCHES_DURING_LOAD=$(($(origin_fetches) - FETCHES_BEFORE))
[ "$FETCHES_DURING_LOAD" = 0 ] || log "warning: the edge fetched from origin $FETCHES_DURING_LOAD times under load (not all cache hits)"

report
if [ "${BENCH_PROFILE:-0}" = 1 ]; then profiles; fi
