#!/usr/bin/env bash
# The stack in containers: scripts/compose.sh up|down|test
#
#   up    make the images if missing (scripts/images.sh, IMAGE_PROFILE=debug reuses the test
#         build), prepare STACK_DIR (default .stack-compose) with scripts/stack.sh's secrets, CA
#         and configs on their own ports (28xxx: beside a running local stack), run
#         deploy/compose/compose.yaml with podman-compose, wait until every service answers,
#         and write STACK_DIR/env (the same keys as the local stack's)
#   down  stop and remove the containers (the data in STACK_DIR stays)
#   test  up, the demo flow (scripts/demo.sh: sign-in, NFT-gated upload, transcode, grant)
#         through the containers, the granted HLS played to its last segment, then down
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cache/streamgate/venv/bin:$HOME/.cargo/bin:$PATH"
export CONTAINERS_CONF=$ROOT/deploy/images/containers.conf
export STACK_DIR=${COMPOSE_STACK_DIR:-$ROOT/.stack-compose}
export EDGE_PORT=${COMPOSE_EDGE_PORT:-28080} EDGE_TLS_PORT=28443 ORIGIN_PORT=28081
export ORIGIN_INTERNAL_PORT=28082 EDGE_METRICS_PORT=29180 TRANSCODER_METRICS_PORT=29181
export REDIS_PORT=26379 S3_PORT=29000 ANVIL_PORT=28545 PLAYER_PAGE_PORT=28090
export IMAGE_TAG=${IMAGE_TAG:-latest}
COMPOSE=(podman-compose -f deploy/compose/compose.yaml)
log() { echo "compose: $*" >&2; }

wait_url() { # what, url, [curl args]
  local what=$1 url=$2; shift 2
  for _ in $(seq 1 600); do
    curl -fsS -o /dev/null "$@" "$url" 2>/dev/null && return 0
    sleep 0.1
  done
  log "$what did not answer at $url"; "${COMPOSE[@]}" logs "$what" 2>&1 | tail -n 30 >&2; return 1
}

up() {
  for i in proxy origin transcoder deps; do
    podman image exists "localhost/streamgate-$i:$IMAGE_TAG" || { scripts/images.sh; break; }
  done
  scripts/stack.sh prepare
  "${COMPOSE[@]}" up -d >/dev/null 2>&1
  for _ in $(seq 1 300); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  wait_url origin "http://127.0.0.1:$ORIGIN_PORT/readyz"
  wait_url transcoder "http://127.0.0.1:$TRANSCODER_METRICS_PORT/healthz"
  wait_url edge "http://127.0.0.1:$EDGE_PORT/readyz"
  wait_url edge "https://localhost:$EDGE_TLS_PORT/readyz" --cacert "$STACK_DIR/tls/ca.pem"
  scripts/stack.sh env
  log "up from images (tag $IMAGE_TAG); environment in $STACK_DIR/env"
  podman ps --format '{{.Names}} {{.Image}} {{.Status}}' | grep streamgate >&2 || true
}

down() {
  "${COMPOSE[@]}" down -t 15 >/dev/null 2>&1 || true
  rm -f "$STACK_DIR/env"
  log "down"
}

test_flow() {
  trap down EXIT
  up
  out=$(STACK_DIR=$STACK_DIR scripts/demo.sh)
  # (The URLs carry playback tokens: not echoed.)
  echo "$out" | grep -m1 "StreamGate demo is up" >&2
  hls=$(echo "$out" | awk '$1=="HLS:"{print $2}')
  [ -n "$hls" ] || { log "the demo printed no HLS URL"; exit 1; }
  # The granted stream plays from the containers: every rendition's playlist and segments.
  ffprobe -v error -show_entries format=duration -of csv=p=0 "$hls" | grep -Eq '^[0-9.]+$' \
    || { log "ffprobe could not read $hls"; exit 1; }
  ffmpeg -v error -i "$hls" -map 0 -c copy -f null - || { log "ffmpeg could not read every segment"; exit 1; }
  forged=$(echo "$hls" | sed -E 's#/p/[^/]+/#/p/x/#')
  code=$(curl -s -o /dev/null -w '%{http_code}' "$forged")
  [ "$code" = 403 ] || { log "a forged token got $code, not 403"; exit 1; }
  for c in edge origin transcoder; do
    user=$(podman exec "streamgate_${c}_1" id -u 2>/dev/null || echo "?")
    [ "$user" = 10001 ] || { log "$c runs as uid $user, not 10001"; exit 1; }
  done
  log "demo flow through the images: ok"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  test) test_flow ;;
  *) echo "usage: $0 up|down|test" >&2; exit 2 ;;
esac
