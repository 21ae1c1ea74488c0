#!/usr/bin/env bash
# Installs what StreamGate's build, stack and tests need. Idempotent and quick when done:
# Debian packages (cmake for pingora's zlib-ng, Redis, FFmpeg, curl) and the S3 server s3s-fs.
set -euo pipefail
export PATH="$HOME/.cargo/bin:$PATH"

need=()
for pkg in cmake pkg-config redis-server redis-tools ffmpeg curl procps; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
  echo "setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

S3S_VERSION=0.14.1   # 0.17 needs a newer rustc than 1.95
if ! s3s-fs --version 2>/dev/null | grep -q "$S3S_VERSION"; then
  echo "setup: installing s3s-fs $S3S_VERSION (takes a few minutes once)"
  # its own target dir: never disturb the workspace build cache
  CARGO_TARGET_DIR="$HOME/.cache/streamgate/s3s-target" \
    cargo install "s3s-fs@$S3S_VERSION" --features binary --locked --quiet
fi
echo "setup: ok"
