#!/usr/bin/env bash
# Installs what StreamGate's build, stack and tests need. Idempotent and quick when done:
# Debian packages (cmake for pingora's zlib-ng, Redis, FFmpeg, curl, openssl and certutil for
# the local CA, Chromium), the S3 server
# s3s-fs, and npm packages for sign-in vectors (scripts/vectors), the local EVM chain
# (scripts/chain), the local Solana cluster (scripts/solana) and the player check (scripts/players).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

need=()
for pkg in cmake pkg-config redis-server redis-tools ffmpeg curl procps openssl libnss3-tools; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
# Node.js and npm: the machine image ships them; install Debian's only where they are missing.
command -v node >/dev/null && command -v npm >/dev/null || need+=(nodejs npm)
if ((${#need[@]})); then
  echo "setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Debian's Chromium for the headless player check (scripts/players drives it with playwright-core,
# which downloads no browser); without recommends, so no desktop extras come along.
if ! dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
  echo "setup: installing chromium (headless player check)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

# promtool (Prometheus rule checks, deploy/monitoring) and systemd-analyze (deploy/systemd).
# podman, buildah, mmdebstrap and runc: the images (deploy/images) and the compose stack.
for pkg in prometheus systemd podman buildah mmdebstrap runc uidmap; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    echo "setup: installing $pkg (deploy checks, images)"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$pkg" >/dev/null
  fi
done
# Python tools, pinned, in a venv of the project's (kubernetes-validate for deploy/kubernetes).
VENV=$HOME/.cache/streamgate/venv
if [ ! -f "$VENV/.stamp" ] || [ scripts/requirements.txt -nt "$VENV/.stamp" ]; then
  echo "setup: installing Python tools (scripts/requirements.txt) into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r scripts/requirements.txt
  touch "$VENV/.stamp"
fi

S3S_VERSION=0.14.1   # 0.17 needs a newer rustc than 1.95
if ! s3s-fs --version 2>/dev/null | grep -q "$S3S_VERSION"; then
  echo "setup: installing s3s-fs $S3S_VERSION (takes a few minutes once)"
  # its own target dir: never disturb the workspace build cache
  CARGO_TARGET_DIR="$HOME/.cache/streamgate/s3s-target" \
    cargo install "s3s-fs@$S3S_VERSION" --features binary --locked --quiet
fi
# Real wallet libraries (viem, @solana/web3.js, tweetnacl) for sign-in vectors and the demo.
if [ ! -d scripts/vectors/node_modules ] || [ scripts/vectors/package-lock.json -nt scripts/vectors/node_modules ]; then
  echo "setup: installing wallet libraries (npm ci in scripts/vectors)"
  npm ci --prefix scripts/vectors --silent --no-audit --no-fund
  touch scripts/vectors/node_modules
fi
# The local chain: anvil, solc and OpenZeppelin (the test wallet contracts), viem (deploys).
if [ ! -d scripts/chain/node_modules ] || [ scripts/chain/package-lock.json -nt scripts/chain/node_modules ]; then
  echo "setup: installing the local chain (npm ci in scripts/chain)"
  npm ci --prefix scripts/chain --silent --no-audit --no-fund
  touch scripts/chain/node_modules
fi
# The local Solana cluster: Surfpool's offline Surfnet, @solana/web3.js and spl-token (mints).
if [ ! -d scripts/solana/node_modules ] || [ scripts/solana/package-lock.json -nt scripts/solana/node_modules ]; then
  echo "setup: installing the local Solana cluster (npm ci in scripts/solana)"
  npm ci --prefix scripts/solana --silent --no-audit --no-fund
  touch scripts/solana/node_modules
fi
# The player check: hls.js and dash.js in Debian's Chromium, driven by playwright-core.
if [ ! -d scripts/players/node_modules ] || [ scripts/players/package-lock.json -nt scripts/players/node_modules ]; then
  echo "setup: installing the player check (npm ci in scripts/players)"
  npm ci --prefix scripts/players --silent --no-audit --no-fund
  touch scripts/players/node_modules
fi
# The creators' client libraries the tests drive: tus-js-client, standardwebhooks.
if [ ! -d scripts/clients/node_modules ] || [ scripts/clients/package-lock.json -nt scripts/clients/node_modules ]; then
  echo "setup: installing the client libraries (npm ci in scripts/clients)"
  npm ci --prefix scripts/clients --silent --no-audit --no-fund
  touch scripts/clients/node_modules
fi
# The web app (origin serves web/dist): viem, hls.js, bundled by esbuild with hashed names.
# Rebuilt when its sources or lockfile are newer than the build.
if [ ! -d web/node_modules ] || [ web/package-lock.json -nt web/node_modules ]; then
  echo "setup: installing the web app's packages (npm ci in web)"
  npm ci --prefix web --silent --no-audit --no-fund
  touch web/node_modules
fi
if [ ! -f web/dist/index.html ] || [ -n "$(find web/src web/build.mjs web/package-lock.json -newer web/dist/index.html 2>/dev/null | head -1)" ]; then
  (cd web && node build.mjs)
fi
echo "setup: ok"
