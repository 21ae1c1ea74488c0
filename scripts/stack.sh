#!/usr/bin/env bash
# The local StreamGate stack: Redis, the S3 server (s3s-fs), a local EVM chain (anvil, chain id
# 31337), origin, transcoder and edge, on loopback. `up` starts what is not running (and restarts StreamGate's own services so they run
# the freshly built binaries), waits until each answers, and writes $STACK_DIR/env; `down`
# stops everything it started, by PID.
#
#   scripts/stack.sh up|down|status
#   scripts/stack.sh prepare          (secrets, CA, configs only: scripts/compose.sh runs them)
#   scripts/stack.sh env              (write $STACK_DIR/env for the configured ports)
#   scripts/stack.sh upgrade edge     (graceful: listening sockets handed to a new process)
#   scripts/stack.sh upgrade origin   (stop with drain, start again)
#
# Environment: STACK_DIR (default .stack), CARGO_TARGET_DIR (binaries in $CARGO_TARGET_DIR/debug),
# ports EDGE_PORT EDGE_TLS_PORT ORIGIN_PORT ORIGIN_INTERNAL_PORT EDGE_METRICS_PORT TRANSCODER_METRICS_PORT
# REDIS_PORT S3_PORT ANVIL_PORT PLAYER_PAGE_PORT (the origin browser player pages are served
# from: the edge's CORS list names it).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export PATH="$HOME/.cargo/bin:$PATH"
STACK_DIR=${STACK_DIR:-$ROOT/.stack}
CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/streamgate/target}
BIN_DIR=${STREAMGATE_BIN_DIR:-$CARGO_TARGET_DIR/debug}
EDGE_PORT=${EDGE_PORT:-8080}
EDGE_TLS_PORT=${EDGE_TLS_PORT:-8443}
ORIGIN_PORT=${ORIGIN_PORT:-8081}
ORIGIN_INTERNAL_PORT=${ORIGIN_INTERNAL_PORT:-8082}
PLAYER_PAGE_PORT=${PLAYER_PAGE_PORT:-18090}
EDGE_METRICS_PORT=${EDGE_METRICS_PORT:-9180}
TRANSCODER_METRICS_PORT=${TRANSCODER_METRICS_PORT:-9181}
REDIS_PORT=${REDIS_PORT:-16379}
S3_PORT=${S3_PORT:-19000}
ANVIL_PORT=${ANVIL_PORT:-18545}
ANVIL_BIN=$ROOT/scripts/chain/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
EVM_CHAIN_ID=31337
BUCKET=streamgate
RUN=$STACK_DIR/run
CONF=$STACK_DIR/config
SECRETS=$STACK_DIR/secrets
TLS=$STACK_DIR/tls
LOGS=$STACK_DIR/logs

log() { echo "stack: $*" >&2; }

alive() { [ -f "$RUN/$1.pid" ] && kill -0 "$(cat "$RUN/$1.pid")" 2>/dev/null; }

stop() {
  local name=$1 pid
  alive "$name" || { rm -f "$RUN/$name.pid"; return 0; }
  pid=$(cat "$RUN/$name.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$RUN/$name.pid"
  log "stopped $name"
}

start() { # name, command...
  local name=$1; shift
  alive "$name" && return 0
  nohup "$@" >>"$LOGS/$name.log" 2>&1 &
  echo $! >"$RUN/$name.pid"
  log "started $name (pid $!)"
}

wait_for() { # name, command to poll (up to 30 s)
  local name=$1; shift
  for _ in $(seq 1 300); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    alive "$name" || { log "$name exited; last log lines:"; tail -n 30 "$LOGS/$name.log" >&2; exit 1; }
    sleep 0.1
  done
  log "$name did not become ready; last log lines:"; tail -n 30 "$LOGS/$name.log" >&2; exit 1
}

secret() { # file: 32 random bytes, hex
  [ -s "$SECRETS/$1" ] || { od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$SECRETS/$1"; chmod 600 "$SECRETS/$1"; }
}

# A local CA (kept across runs, so a browser or OS that trusts it once keeps trusting it) and
# an edge certificate for localhost, edge.streamgate.test and 127.0.0.1, renewed when it
# expires within a day. Keys stay in $STACK_DIR/tls (mode 700).
tls_material() {
  mkdir -p "$TLS"; chmod 700 "$TLS"
  if [ ! -s "$TLS/ca.pem" ] || [ ! -s "$TLS/ca-key.pem" ]; then
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
      -subj "/CN=StreamGate local CA" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$TLS/ca-key.pem" -out "$TLS/ca.pem" 2>/dev/null
    rm -f "$TLS/edge.pem"
    log "created a local CA: $TLS/ca.pem"
  fi
  if [ ! -s "$TLS/edge.pem" ] || ! openssl x509 -checkend 86400 -noout -in "$TLS/edge.pem" >/dev/null 2>&1; then
    printf '%s\n' "subjectAltName=DNS:localhost,DNS:edge.streamgate.test,IP:127.0.0.1" \
      "basicConstraints=CA:FALSE" "keyUsage=critical,digitalSignature" \
      "extendedKeyUsage=serverAuth" >"$TLS/edge.ext"
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
      -keyout "$TLS/edge-key.pem" -out "$TLS/edge.csr" 2>/dev/null
    openssl x509 -req -in "$TLS/edge.csr" -CA "$TLS/ca.pem" -CAkey "$TLS/ca-key.pem" \
      -set_serial "0x$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')" -days 397 \
      -extfile "$TLS/edge.ext" -out "$TLS/edge-leaf.pem" 2>/dev/null
    cat "$TLS/edge-leaf.pem" "$TLS/ca.pem" >"$TLS/edge.pem.new" && mv "$TLS/edge.pem.new" "$TLS/edge.pem"
    log "issued the edge certificate: $TLS/edge.pem"
  fi
}

write_configs() {
  local s3_section web_section=""
  # The web app (make setup builds web/dist; prepare copies it here, where the compose stack
  # mounts it too); it fetches grants and media from the edge.
  if [ -f "$STACK_DIR/web/index.html" ]; then
    web_section="[web]
dir = \"$STACK_DIR/web\"
edge-url = \"http://127.0.0.1:$EDGE_PORT\"
"
  fi
  s3_section="[s3]
endpoint = \"http://127.0.0.1:$S3_PORT\"
region = \"us-east-1\"
bucket = \"$BUCKET\"
force-path-style = true
access-key = { file = \"$SECRETS/s3-access-key\" }
secret-key = { file = \"$SECRETS/s3-secret-key\" }"
  cat >"$CONF/origin.toml" <<TOML
# generated by scripts/stack.sh
[server]
listen = "127.0.0.1:$ORIGIN_PORT"
# packaged media for edges only, to requests carrying the edge key
internal-listen = "127.0.0.1:$ORIGIN_INTERNAL_PORT"
edge-keys = [{ file = "$SECRETS/edge-key" }]
public-url = "http://127.0.0.1:$ORIGIN_PORT"

$s3_section
create-bucket = true

[redis]
url = "redis://127.0.0.1:$REDIS_PORT"

[uploads]
part-size = "5MiB"

# the local stack's receivers listen on loopback; quick retries so a test sees them
[webhooks]
allow-private-targets = true
backoff = "250ms"
max-backoff = "2s"

$web_section
[auth]
domain = "127.0.0.1:$ORIGIN_PORT"
allowed-uris = ["http://127.0.0.1:$ORIGIN_PORT", "http://127.0.0.1:$EDGE_PORT", "http://localhost:$EDGE_PORT"]
evm-chain-ids = [1, $EVM_CHAIN_ID]
solana-chains = ["mainnet", "devnet", "localnet"]
issuer = "http://127.0.0.1:$ORIGIN_PORT"
signing-key = "s1"
rpc-timeout = "3s"

# contract-wallet sign-in (EIP-1271/6492) on the local chain; chain 1 has no RPC here
[auth.evm-rpc]
"$EVM_CHAIN_ID" = ["http://127.0.0.1:$ANVIL_PORT"]

[[auth.keys]]
id = "s1"
secret = { file = "$SECRETS/session-s1" }

[auth.rate-limit]
nonces-per-minute = 600
sign-ins-per-minute = 600
TOML
  cat >"$CONF/transcoder.toml" <<TOML
# generated by scripts/stack.sh
[worker]
reclaim-idle = "20s"
heartbeat = "5s"
block = "2s"

[metrics]
listen = "127.0.0.1:$TRANSCODER_METRICS_PORT"

$s3_section

[redis]
url = "redis://127.0.0.1:$REDIS_PORT"

# Content keys of encrypted packages are stored wrapped (AES-256-GCM) under this KEK; the
# transcoder wraps, the edge unwraps per license request. Rotate: add a key, point
# wrapping-key at it, keep the old one listed until no stored key needs it.
[encryption]
wrapping-key = "kek1"

[[encryption.keys]]
id = "kek1"
secret = { file = "$SECRETS/kek-1" }
TOML
  cat >"$CONF/proxy.toml" <<TOML
# generated by scripts/stack.sh
[server]
listen = "127.0.0.1:$EDGE_PORT"
metrics-listen = "127.0.0.1:$EDGE_METRICS_PORT"
grace-period = "2s"

# HTTPS (HTTP/2 and HTTP/1.1) with the stack's local CA; certificates reload on change.
[server.tls]
listen = "127.0.0.1:$EDGE_TLS_PORT"
certificates = [{ cert = "$TLS/edge.pem", key = "$TLS/edge-key.pem" }]

[upstream]
origin = "127.0.0.1:$ORIGIN_INTERNAL_PORT"
edge-key = { file = "$SECRETS/edge-key" }

[cache]
memory = "256MiB"
redis-url = "redis://127.0.0.1:$REDIS_PORT"

# Browser players: the player check serves its page from PLAYER_PAGE_PORT, the web app comes
# from origin; cookie mode needs credentials, so the origins are listed (never "*").
[cors]
allowed-origins = ["http://127.0.0.1:$PLAYER_PAGE_PORT", "http://localhost:$PLAYER_PAGE_PORT", "http://player.example", "http://127.0.0.1:$ORIGIN_PORT"]
allow-credentials = true

[admin]
token = { file = "$SECRETS/edge-admin" }

[tokens]
signing-key = "k1"

[[tokens.keys]]
id = "k1"
secret = { file = "$SECRETS/token-k1" }

[session]
jwks-url = "http://127.0.0.1:$ORIGIN_PORT/.well-known/jwks.json"
issuer = "http://127.0.0.1:$ORIGIN_PORT"

# Short TTLs so tests see a sold NFT lose access within seconds.
[entitlements]
ttl-allow = "${ENT_TTL_ALLOW:-3s}"
ttl-deny = "${ENT_TTL_DENY:-2s}"
max-stale = "10m"
redis-url = "redis://127.0.0.1:$REDIS_PORT"
# Policies are dropped on sg:invalidate; the TTL only bounds a missed message.
policy-ttl = "10m"

[entitlements.evm-rpc]
"$EVM_CHAIN_ID" = ["http://127.0.0.1:$ANVIL_PORT"]

# Content keys of encrypted packages are stored wrapped (AES-256-GCM) under this KEK; the
# transcoder wraps, the edge unwraps per license request. Rotate: add a key, point
# wrapping-key at it, keep the old one listed until no stored key needs it.
[encryption]
wrapping-key = "kek1"

[[encryption.keys]]
id = "kek1"
secret = { file = "$SECRETS/kek-1" }

# ClearKey license requests per viewer and minute (429 past it).
[license]
requests-per-minute = ${LICENSE_PER_MINUTE:-120}
TOML
}

# Directories, secrets, the local CA and the configs: everything but the processes (the
# compose stack, scripts/compose.sh, runs the same configs in containers).
prepare() {
  mkdir -p "$RUN" "$CONF" "$SECRETS" "$LOGS" "$STACK_DIR/data/s3" "$STACK_DIR/data/redis"
  chmod 700 "$SECRETS"
  secret s3-access-key; secret s3-secret-key; secret token-k1; secret session-s1; secret edge-admin
  secret edge-key; secret kek-1
  tls_material
  if [ -f web/dist/index.html ]; then
    rm -rf "$STACK_DIR/web" && cp -r web/dist "$STACK_DIR/web"
  fi
  write_configs
}

up() {
  prepare
  [ -x "$ANVIL_BIN" ] || { log "missing $ANVIL_BIN: run scripts/setup.sh (make up does)"; exit 1; }
  for b in streamgate-origin streamgate-transcoder streamgate-proxy; do
    [ -x "$BIN_DIR/$b" ] || { log "missing $BIN_DIR/$b: run 'cargo build --workspace --bins' (make up does)"; exit 1; }
  done
  start redis redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$STACK_DIR/data/redis" \
    --appendonly yes --save "" --protected-mode yes
  start s3 s3s-fs --host 127.0.0.1 --port "$S3_PORT" --access-key "$(cat "$SECRETS/s3-access-key")" \
    --secret-key "$(cat "$SECRETS/s3-secret-key")" "$STACK_DIR/data/s3"
  start anvil "$ANVIL_BIN" --host 127.0.0.1 --port "$ANVIL_PORT" --chain-id "$EVM_CHAIN_ID" --silent
  wait_for redis redis-cli -p "$REDIS_PORT" ping
  wait_for anvil curl -fsS -H 'content-type: application/json' \
    --data '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' "http://127.0.0.1:$ANVIL_PORT"
  wait_for s3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$S3_PORT"
  # StreamGate's own services always restart, so they run the binaries just built.
  for s in edge transcoder origin; do stop "$s"; done
  for s in origin transcoder proxy; do
    "$BIN_DIR/streamgate-$s" --config "$CONF/$s.toml" --check-config >/dev/null
  done
  start origin "$BIN_DIR/streamgate-origin" --config "$CONF/origin.toml"
  wait_for origin curl -fsS "http://127.0.0.1:$ORIGIN_PORT/readyz"
  start transcoder "$BIN_DIR/streamgate-transcoder" --config "$CONF/transcoder.toml"
  start edge "$BIN_DIR/streamgate-proxy" --config "$CONF/proxy.toml"
  wait_for transcoder curl -fsS "http://127.0.0.1:$TRANSCODER_METRICS_PORT/healthz"
  wait_for edge curl -fsS "http://127.0.0.1:$EDGE_PORT/readyz"
  wait_for edge curl -fsS --cacert "$TLS/ca.pem" "https://localhost:$EDGE_TLS_PORT/readyz"
  write_env
  log "up; environment in $STACK_DIR/env"
}

# $STACK_DIR/env: what tests, the demo and users read (a contract: extend, never rename).
write_env() {
  cat >"$STACK_DIR/env" <<ENV
EDGE_URL=http://127.0.0.1:$EDGE_PORT
EDGE_TLS_URL=https://localhost:$EDGE_TLS_PORT
STACK_CA_FILE=$TLS/ca.pem
EDGE_METRICS_URL=http://127.0.0.1:$EDGE_METRICS_PORT
ORIGIN_URL=http://127.0.0.1:$ORIGIN_PORT
ORIGIN_INTERNAL_URL=http://127.0.0.1:$ORIGIN_INTERNAL_PORT
EDGE_KEY_FILE=$SECRETS/edge-key
PLAYER_PAGE_PORT=$PLAYER_PAGE_PORT
TRANSCODER_METRICS_URL=http://127.0.0.1:$TRANSCODER_METRICS_PORT
S3_ENDPOINT=http://127.0.0.1:$S3_PORT
S3_BUCKET=$BUCKET
REDIS_URL=redis://127.0.0.1:$REDIS_PORT
STREAMGATE_CONFIG_DIR=$CONF
STREAMGATE_BIN_DIR=$BIN_DIR
STACK_DIR=$STACK_DIR
EVM_RPC_URL=http://127.0.0.1:$ANVIL_PORT
EDGE_ADMIN_TOKEN_FILE=$SECRETS/edge-admin
ENV
}

# Zero-downtime edge upgrade (Pingora's socket hand-over): a new edge process started with
# --upgrade waits on server.upgrade-socket; the running one gets SIGQUIT, passes it the listening
# sockets, stops accepting after 5 s and drains in-flight requests for server.grace-period.
# No connection is refused meanwhile. The new process runs the binary in $BIN_DIR now.
upgrade_edge() {
  alive edge || { log "edge is not running: make up"; exit 1; }
  local old sock
  old=$(cat "$RUN/edge.pid")
  sock=${TMPDIR:-/tmp}/streamgate-edge-$EDGE_PORT.upgrade
  "$BIN_DIR/streamgate-proxy" --config "$CONF/proxy.toml" --check-config >/dev/null
  rm -f "$sock"
  nohup "$BIN_DIR/streamgate-proxy" --config "$CONF/proxy.toml" --upgrade >>"$LOGS/edge.log" 2>&1 &
  local new=$!
  for _ in $(seq 1 100); do [ -S "$sock" ] && break; kill -0 "$new" 2>/dev/null || break; sleep 0.05; done
  [ -S "$sock" ] || { log "the new edge did not open $sock; last log lines:"; tail -n 20 "$LOGS/edge.log" >&2; kill "$new" 2>/dev/null || true; exit 1; }
  kill -QUIT "$old"
  echo "$new" >"$RUN/edge.pid"
  wait_for edge curl -fsS "http://127.0.0.1:$EDGE_PORT/readyz"
  log "edge upgraded: pid $old -> $new (the old one drains, then exits)"
}

# Restart origin: stop (SIGTERM: drains in-flight requests) and start the current binary.
restart_origin() {
  stop origin
  start origin "$BIN_DIR/streamgate-origin" --config "$CONF/origin.toml"
  wait_for origin curl -fsS "http://127.0.0.1:$ORIGIN_PORT/readyz"
}

down() {
  for s in edge transcoder origin anvil s3 redis; do stop "$s"; done
  rm -f "$STACK_DIR/env"
}

status() {
  for s in redis s3 anvil origin transcoder edge; do
    if alive "$s"; then echo "$s: running (pid $(cat "$RUN/$s.pid"))"; else echo "$s: stopped"; fi
  done
}

case "${1:-}" in
  up) up ;;
  prepare) prepare ;;
  env) write_env ;;
  down) down ;;
  status) status ;;
  upgrade)
    case "${2:-}" in
      edge) upgrade_edge ;;
      origin) restart_origin ;;
      *) echo "usage: $0 upgrade edge|origin" >&2; exit 2 ;;
    esac ;;
  *) echo "usage: $0 up|down|status|upgrade edge|origin" >&2; exit 2 ;;
esac
