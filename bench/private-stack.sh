# bench/private-stack.sh: sourced by the benches that need the whole stack. Starts a private
# RELEASE stack (STACK_DIR in a temp dir, ports from BENCH_PORT_BASE, default 28000) and stops
# it on exit, makes a BENCH_CLIP_SECONDS (20) 1280x720 clip with a tone, signs in a creator and
# a viewer on the content's allowlist, and defines `package ENCRYPTION`: upload the clip, wait
# for it, print "id job_s ffmpeg_s" (the transcoder's own histograms, one job at a time).
# BENCH_NO_BUILD=1 uses the release binaries as they are; BENCH_KEEP=1 keeps the temp dir.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/streamgate/target}
CLIP_SECONDS=${BENCH_CLIP_SECONDS:-20}
BASE=${BENCH_PORT_BASE:-28000}
WORK=$(mktemp -d)
log() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }

export STACK_DIR=$WORK/stack
export STREAMGATE_BIN_DIR=$CARGO_TARGET_DIR/release
export EDGE_PORT=$((BASE + 80)) EDGE_TLS_PORT=$((BASE + 443)) ORIGIN_PORT=$((BASE + 81))
export ORIGIN_INTERNAL_PORT=$((BASE + 82)) EDGE_METRICS_PORT=$((BASE + 180))
export TRANSCODER_METRICS_PORT=$((BASE + 181)) REDIS_PORT=$((BASE + 379)) S3_PORT=$((BASE + 900))
export ANVIL_PORT=$((BASE + 545)) PLAYER_PAGE_PORT=$((BASE + 90))
export LICENSE_PER_MINUTE=10000000 ENT_TTL_ALLOW=10m ENT_TTL_DENY=10m
cleanup() {
  scripts/stack.sh down >/dev/null 2>&1 || true
  if [ "${BENCH_KEEP:-0}" = 1 ]; then log "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

scripts/setup.sh >/dev/null
if [ "${BENCH_NO_BUILD:-0}" != 1 ]; then
  log "building the release services (first time: many minutes)"
  cargo build --release --quiet -p streamgate-origin -p streamgate-transcoder -p streamgate-proxy
fi
scripts/stack.sh up >/dev/null
set -a; . "$STACK_DIR/env"; set +a

log "a ${CLIP_SECONDS}s 1280x720 clip"
ffmpeg -v error -f lavfi -i "testsrc2=size=1280x720:rate=30:duration=$CLIP_SECONDS" \
  -f lavfi -i "sine=frequency=440:duration=$CLIP_SECONDS" -c:v libx264 -preset veryfast \
  -pix_fmt yuv420p -c:a aac -shortest "$WORK/clip.mp4"
size=$(stat -c %s "$WORK/clip.mp4")

key() { od -An -tx1 -N32 /dev/urandom | tr -d ' \n'; }
creator_key=$(key); viewer_key=$(key)
creator=$(node scripts/vectors/signin.mjs "$ORIGIN_URL" "$creator_key")
viewer=$(node scripts/vectors/signin.mjs "$ORIGIN_URL" "$viewer_key")
viewer_addr=$(cd scripts/vectors && node --input-type=module -e \
  "import { privateKeyToAccount } from 'viem/accounts'; console.log(privateKeyToAccount('0x$viewer_key').address)")
policy="{\"allow\":[\"eip155:31337:$viewer_addr\"]}"

metric_sum() { # metric name: its _sum on the transcoder's page
  curl -fsS "$TRANSCODER_METRICS_URL/metrics" | awk -v m="$1_sum" '$1==m {print $2}'
}

# CPU seconds the stack's own processes (not the transcoder's FFmpeg children) have used, by
# service: "name seconds" lines. What they take during a job is taken from FFmpeg's two cores.
stack_cpu() {
  local f name
  for f in "$STACK_DIR"/run/*.pid; do
    name=$(basename "$f" .pid)
    awk -v n="$name" -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print n, ($12 + $13) / hz }' \
      "/proc/$(cat "$f")/stat" 2>/dev/null || true
  done
}

phase_sums() { # the transcoder's per-phase _sum lines as "phase seconds", one per line
  curl -fsS "$TRANSCODER_METRICS_URL/metrics" \
    | awk '$1 ~ /^streamgate_transcoder_phase_seconds_sum\{phase="/ { split($1, p, "\""); print p[2], $2 }'
}

deltas() { # two "name value" listings, before and after: {"name": after - before, ...} in one word
  python3 -c '
import json, sys
before, after = (dict(l.split() for l in a.splitlines() if l.strip()) for a in sys.argv[1:3])
print(json.dumps({k: round(float(v) - float(before.get(k, 0)), 3) for k, v in after.items()}, separators=(",", ":")))
' "$1" "$2"
}

# Uploads the clip as a new content (encryption $1) and waits for it; prints "id job_s ffmpeg_s
# phases stack_cpu": phases a JSON object of this job's seconds per phase (download, probe,
# encode, package, artwork, upload), stack_cpu one of the CPU seconds each stack service used
# meanwhile, both without spaces.
package() {
  local id loc status job0 ff0 job1 ff1 meta ph0 ph1 cpu0 cpu1
  job0=$(metric_sum streamgate_transcoder_job_duration_seconds); ff0=$(metric_sum streamgate_transcoder_ffmpeg_seconds)
  ph0=$(phase_sums); cpu0=$(stack_cpu)
  id=$(curl -fsS -X POST "$ORIGIN_URL/v1/contents" -H "Authorization: Bearer $creator" \
    -H 'content-type: application/json' \
    -d "{\"title\":\"bench $1\",\"policy\":$policy,\"encryption\":\"$1\"}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  meta="content_id $(printf %s "$id" | base64 -w0),filename $(printf clip.mp4 | base64 -w0)"
  loc=$(curl -fsS -D - -o /dev/null -X POST "$ORIGIN_URL/v1/uploads" -H "Authorization: Bearer $creator" \
    -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: $size" -H "Upload-Metadata: $meta" \
    | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
  curl -fsS -X PATCH "$loc" -H "Authorization: Bearer $creator" -H 'Tus-Resumable: 1.0.0' \
    -H 'Upload-Offset: 0' -H 'Content-Type: application/offset+octet-stream' \
    --data-binary "@$WORK/clip.mp4" -o /dev/null
  # Polled once a second with curl alone: the job shares the cores with this loop.
  for _ in $(seq 1 600); do
    status=$(curl -fsS "$ORIGIN_URL/v1/contents/$id" | grep -o '"status":"[a-z_]*"' | cut -d'"' -f4)
    case $status in ready) break ;; failed) die "job of $id failed" ;; esac
    sleep 1
  done
  [ "$status" = ready ] || die "$id not ready after 10 min"
  # The metrics are updated when the job is acknowledged, right after the ready record.
  for _ in $(seq 1 100); do
    job1=$(metric_sum streamgate_transcoder_job_duration_seconds)
    [ "$job1" != "$job0" ] && break
    sleep 0.1
  done
  ff1=$(metric_sum streamgate_transcoder_ffmpeg_seconds)
  ph1=$(phase_sums); cpu1=$(stack_cpu)
  echo "$id $(python3 -c "print(round($job1-$job0,3), round($ff1-$ff0,3))") $(deltas "$ph0" "$ph1") $(deltas "$cpu0" "$cpu1")"
}

# wrk on URL (extra wrk arguments after it: -H, -s) with BENCH_CONNECTIONS and BENCH_DURATION;
# prints "requests/s p99_ms"; any non-2xx answer fails the bench.
wrk_rps() { # name, url, wrk args...
  local name=$1 url=$2; shift 2
  local out=$WORK/wrk-$name.txt
  wrk -t2 -c"${CONNECTIONS:-32}" -d"${DURATION:-10s}" --latency "$@" "$url" >"$out"
  grep -q "Non-2xx" "$out" && { cat "$out" >&2; die "$name: non-2xx answers under load"; }
  python3 - "$out" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t)[1])
def ms(v, u): return float(v) * {"us": 0.001, "ms": 1, "s": 1000}[u]
p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", t)
print(rps, round(ms(*p99.groups()), 3))
PY
}
