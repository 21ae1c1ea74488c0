#!/usr/bin/env bash
# bench/heap.sh: where the edge's memory goes under player load, by allocation site.
#
# Builds the release edge with line tables (a separate target directory, so the normal release
# build is left alone: ~10 min the first time), runs it under heaptrack through
# bench/players.sh (edge only, BENCH_PLAYERS players, default 5000: twice what one pinned core
# holds, the overload case), and prints the heap at its peak by allocation site with
# bench/heap_peak.py. Writes bench/results/heap-<UTC>.json (the sites) and heap-latest.json.
#
#   bench/heap.sh
#   BENCH_PLAYERS=2500 BENCH_HOLD=20s bench/heap.sh
#
# Installs heaptrack with apt if missing. heaptrack slows the edge (every allocation is
# recorded), so the load figures of this run mean nothing; only the sites do. Environment:
# BENCH_PLAYERS (5000), BENCH_RAMP (20s), BENCH_HOLD (20s), HEAP_TARGET_DIR
# (~/.cache/streamgate/prof-target), and what bench/players.sh reads.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
TARGET=${HEAP_TARGET_DIR:-$HOME/.cache/streamgate/prof-target}
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
log() { echo "bench: $*" >&2; }
die() { echo "bench: error: $*" >&2; exit 1; }

if ! command -v heaptrack >/dev/null; then
  log "installing heaptrack (apt)"
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends heaptrack zstd >/dev/null
fi
command -v zstdcat >/dev/null || die "zstdcat (zstd) is required"

log "building the release edge with line tables in $TARGET"
CARGO_PROFILE_RELEASE_DEBUG=line-tables-only CARGO_TARGET_DIR=$TARGET \
  cargo build --release --quiet -p streamgate-proxy
EDGE=$TARGET/release/streamgate-proxy

# players.sh starts "$BENCH_EDGE_BIN --config ..." and stops it with SIGTERM: this wrapper runs
# the edge under heaptrack and passes the signal on, so the recording ends cleanly.
cat >"$WORK/edge" <<SH
#!/usr/bin/env bash
for a in "\$@"; do [ "\$a" = --check-config ] && exec "$EDGE" "\$@"; done
heaptrack -o "$WORK/edge" "$EDGE" "\$@" 2>"$WORK/heaptrack.log" &
trap 'pkill -TERM -f "^$EDGE --config"; wait' TERM INT
wait
SH
chmod +x "$WORK/edge"

before=$(ls bench/results/players-2*.json 2>/dev/null | wc -l)
keep=$WORK/players-latest.json
[ -f bench/results/players-latest.json ] && cp bench/results/players-latest.json "$keep"
BENCH_SERVERS=edge BENCH_PLAYERS=${BENCH_PLAYERS:-5000} BENCH_RAMP=${BENCH_RAMP:-20s} \
  BENCH_HOLD=${BENCH_HOLD:-20s} BENCH_EDGE_BIN=$WORK/edge bench/players.sh >&2
# The players figures of an edge under heaptrack are not results: drop them.
if [ "$(ls bench/results/players-2*.json | wc -l)" -gt "$before" ]; then
  rm -f "$(ls -t bench/results/players-2*.json | head -n 1)"
fi
[ -f "$keep" ] && cp "$keep" bench/results/players-latest.json
for _ in $(seq 1 100); do pgrep -f "^$EDGE --config" >/dev/null || break; sleep 0.1; done

recording=$(ls "$WORK"/edge*.zst 2>/dev/null | head -n 1)
[ -n "$recording" ] || die "heaptrack wrote no recording (see $WORK/heaptrack.log)"
python3 bench/heap_peak.py "$recording" --json "bench/results/heap-$STAMP.json"
cp "bench/results/heap-$STAMP.json" bench/results/heap-latest.json
log "wrote bench/results/heap-$STAMP.json and bench/results/heap-latest.json"
