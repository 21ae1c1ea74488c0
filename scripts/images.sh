#!/usr/bin/env bash
# `make images`: container images of StreamGate built here, without any registry.
#
#   1. base images from Debian bookworm, bootstrapped with mmdebstrap and imported into podman
#      (once; `--rebuild-base` to redo): streamgate-base (ca-certificates), streamgate-media-base
#      (+ ffmpeg), streamgate-deps-base (+ redis-server, for the compose stack)
#   2. the binaries, built on the host (same glibc as the base): release by default,
#      IMAGE_PROFILE=debug to reuse the test build
#   3. `podman build` per service: localhost/streamgate-{proxy,origin,transcoder}:$IMAGE_TAG
#      and localhost/streamgate-deps:$IMAGE_TAG (Redis, s3s-fs, anvil for the compose file)
#
# Podman runs with deploy/images/containers.conf (runc, cgroupfs, host network, ulimits).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
export CONTAINERS_CONF=$ROOT/deploy/images/containers.conf
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/streamgate/target}
PROFILE=${IMAGE_PROFILE:-release}
TAG=${IMAGE_TAG:-latest}
MIRRORS=("deb http://deb.debian.org/debian bookworm main"
         "deb http://deb.debian.org/debian-security bookworm-security main")
log() { echo "images: $*" >&2; }

base() { # name, extra packages (comma-separated)
  local name=$1 include=ca-certificates${2:+,$2}
  if [ "${REBUILD_BASE:-0}" = 1 ] || ! podman image exists "localhost/$name:bookworm"; then
    log "bootstrapping $name (Debian bookworm minbase + $include)"
    mmdebstrap --quiet --variant=minbase --include="$include" bookworm - "${MIRRORS[@]}" \
      | podman import --quiet - "localhost/$name:bookworm" >/dev/null
  fi
}

[ "${1:-}" = --rebuild-base ] && REBUILD_BASE=1
base streamgate-base
base streamgate-media-base ffmpeg
base streamgate-deps-base redis-server

if [ "$PROFILE" = release ]; then
  cargo build --release --workspace --bins --quiet
  BIN_DIR=$CARGO_TARGET_DIR/release
else
  BIN_DIR=$CARGO_TARGET_DIR/debug
fi
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp deploy/images/Containerfile deploy/images/Containerfile.deps "$ctx/"
for svc in proxy origin transcoder; do
  cp "$BIN_DIR/streamgate-$svc" "$ctx/"
  b=localhost/streamgate-media-base:bookworm
  [ "$svc" = proxy ] && b=localhost/streamgate-base:bookworm
  podman build --quiet -f "$ctx/Containerfile" --build-arg BASE="$b" \
    --build-arg BIN="streamgate-$svc" -t "localhost/streamgate-$svc:$TAG" "$ctx" >/dev/null
  log "built localhost/streamgate-$svc:$TAG ($PROFILE binary)"
done
cp "$(command -v s3s-fs)" scripts/chain/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil "$ctx/"
podman build --quiet -f "$ctx/Containerfile.deps" -t "localhost/streamgate-deps:$TAG" "$ctx" >/dev/null
log "built localhost/streamgate-deps:$TAG (redis-server, s3s-fs, anvil)"
