#!/usr/bin/env bash
# `make test`: formatting and lints, then every unit and integration test against the real
# local stack (Redis, s3s-fs, FFmpeg, origin, transcoder, edge) started by scripts/stack.sh.
# A stack this script started is stopped at the end; one that was already up is left running.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/streamgate/target}
STACK_DIR=${STACK_DIR:-$PWD/.stack}
export STACK_DIR

t0=$(date +%s)
cargo fmt --all -- --check
# The committed sign-in vectors must be exactly what the wallet libraries produce.
node scripts/vectors/gen.mjs --check
# The committed contract build (test wallets, the EIP-6492 validator origin embeds) must match the sources.
node scripts/chain/compile.mjs --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
cargo build --workspace --bins --quiet
cargo test --workspace --no-run --quiet
# deploy/: kustomize builds validated for Kubernetes 1.30, the ConfigMaps' configs, systemd
# units, Prometheus rules and the Grafana dashboard.
scripts/deploy-check.sh

started=0
[ -f "$STACK_DIR/env" ] || started=1
scripts/stack.sh up
cleanup() {
  if [ "$started" = 1 ]; then scripts/stack.sh down; fi
}
trap cleanup EXIT

cargo test --workspace
# The images (deploy/images, test build, tag `test`) and the whole stack from them
# (deploy/compose): the demo flow through the containers, then down.
IMAGE_PROFILE=debug IMAGE_TAG=test scripts/images.sh
IMAGE_TAG=test scripts/compose.sh test
echo "test: done in $(( $(date +%s) - t0 )) s"
