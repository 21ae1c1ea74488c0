#!/usr/bin/env bash
# bench/upload.sh: a large upload through origin's tus endpoint vs a plain S3 multipart upload of
# the same bytes, in the same run, on the same S3 server — and origin's memory meanwhile.
#
# Starts the local stack, then a RELEASE origin on its own ports over the stack's config (same
# Redis, bucket and session keys; `uploads.part-size` = BENCH_PART, origin's default 8MiB).
# Each round uploads BENCH_SIZE random bytes
#   1. through tus with the real tus-js-client (Node, `scripts/clients/tus.mjs`, PATCHes of
#      BENCH_CHUNK), sampling origin's RSS every 50 ms;
#   2. straight to S3 with boto3's multipart upload, parts of BENCH_PART, one part in flight
#      (the shape origin writes: sequential parts);
#   3. the same with boto3's default concurrency (10 parts in flight), as the AWS CLI does.
# Rounds alternate (BENCH_ROUNDS, default 2) so a noisy neighbour hits every variant alike.
#
#   bench/upload.sh                       # 1 GiB, 2 rounds
#   BENCH_SIZE=256M BENCH_ROUNDS=1 bench/upload.sh
#
# Writes bench/results/upload-<UTC>.json and upload-latest.json.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/streamgate/target}
SIZE=${BENCH_SIZE:-1G}
CHUNK=${BENCH_CHUNK:-67108864}
PART=${BENCH_PART:-8MiB}
ROUNDS=${BENCH_ROUNDS:-2}
PORT=${BENCH_ORIGIN_PORT:-18281}
INTERNAL_PORT=${BENCH_ORIGIN_INTERNAL_PORT:-18282}
VENV=$HOME/.cache/streamgate/venv
WORK=$(mktemp -d)
ORIGIN_PID=""
cleanup() { [ -n "$ORIGIN_PID" ] && kill "$ORIGIN_PID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
log() { echo "bench: $*" >&2; }

log "building the release origin (first time: several minutes)"
cargo build --release --quiet -p streamgate-origin
scripts/setup.sh >/dev/null
scripts/stack.sh up >/dev/null
STACK_DIR=${STACK_DIR:-$PWD/.stack}
set -a; . "$STACK_DIR/env"; set +a

log "release origin on :$PORT (part size $PART)"
STREAMGATE__SERVER__LISTEN="127.0.0.1:$PORT" \
STREAMGATE__SERVER__INTERNAL_LISTEN="127.0.0.1:$INTERNAL_PORT" \
STREAMGATE__SERVER__PUBLIC_URL="http://127.0.0.1:$PORT" \
STREAMGATE__UPLOADS__PART_SIZE="$PART" \
STREAMGATE__LOG__FILTER=warn \
  "$CARGO_TARGET_DIR/release/streamgate-origin" --config "$STACK_DIR/config/origin.toml" \
  >"$WORK/origin.log" 2>&1 &
ORIGIN_PID=$!
for _ in $(seq 1 200); do curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break; sleep 0.05; done
curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null || { cat "$WORK/origin.log" >&2; exit 1; }

log "generating $SIZE of random bytes"
head -c "$SIZE" /dev/urandom >"$WORK/data.bin"
bytes=$(stat -c %s "$WORK/data.bin")

wallet=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
session=$(node scripts/vectors/signin.mjs "$ORIGIN_URL" "$wallet")

part_bytes=$(python3 -c "
import re,sys; m=re.fullmatch(r'(\d+)(KiB|MiB|GiB)?', '$PART'); n=int(m[1]); print(n*{None:1,'KiB':1<<10,'MiB':1<<20,'GiB':1<<30}[m[2]])")

tus_round() {
  local id rss_file
  id=$(curl -fsS -X POST "$ORIGIN_URL/v1/contents" -H "Authorization: Bearer $session" \
    -H 'content-type: application/json' -d '{"title":"upload bench"}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  rss_file=$WORK/rss-$1
  ( while kill -0 "$ORIGIN_PID" 2>/dev/null; do
      awk '/VmRSS/{print $2}' "/proc/$ORIGIN_PID/status"; sleep 0.05
    done ) >"$rss_file" &
  local sampler=$!
  local t0 t1
  t0=$(date +%s.%N)
  node scripts/clients/tus.mjs "{\"endpoint\":\"http://127.0.0.1:$PORT/v1/uploads\",\"token\":\"$session\",\"contentId\":\"$id\",\"file\":\"$WORK/data.bin\",\"chunkSize\":$CHUNK}" \
    2>/dev/null >"$WORK/tus-$1.json"
  t1=$(date +%s.%N)
  # The bench's contents go away with their bytes (a GiB each).
  curl -fsS -X DELETE "$ORIGIN_URL/v1/contents/$id" -H "Authorization: Bearer $session" >/dev/null || true
  kill "$sampler" 2>/dev/null || true
  wait "$sampler" 2>/dev/null || true
  python3 -c "import json,sys; r=json.load(open('$WORK/tus-$1.json')); sys.exit(0 if r['ok'] else 1)" \
    || { log "tus upload failed: $(cat "$WORK/tus-$1.json")"; exit 1; }
  local peak
  peak=$(sort -n "$rss_file" | tail -1)
  echo "$(python3 -c "print($t1-$t0)") $peak"
}

s3_round() {
  "$VENV/bin/python" - "$WORK/data.bin" "$part_bytes" "$1" <<'PY'
import os, sys, time
import boto3
from boto3.s3.transfer import TransferConfig
path, part, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
env = os.environ
secrets = os.path.join(env["STACK_DIR"], "secrets")
s3 = boto3.client(
    "s3", endpoint_url=env["S3_ENDPOINT"], region_name="us-east-1",
    aws_access_key_id=open(os.path.join(secrets, "s3-access-key")).read().strip(),
    aws_secret_access_key=open(os.path.join(secrets, "s3-secret-key")).read().strip(),
)
cfg = TransferConfig(multipart_threshold=part, multipart_chunksize=part, max_concurrency=conc,
                     use_threads=conc > 1)
key = f"bench/upload-{time.time_ns()}"
t0 = time.perf_counter()
s3.upload_file(path, env["S3_BUCKET"], key, Config=cfg)
dt = time.perf_counter() - t0
assert s3.head_object(Bucket=env["S3_BUCKET"], Key=key)["ContentLength"] == os.path.getsize(path)
s3.delete_object(Bucket=env["S3_BUCKET"], Key=key)
print(dt)
PY
}

results=()
for r in $(seq 1 "$ROUNDS"); do
  read -r tus_s peak_kib < <(tus_round "$r")
  s3_seq=$(s3_round 1)
  s3_par=$(s3_round 10)
  log "round $r: tus ${tus_s}s (origin peak RSS ${peak_kib} KiB), boto3 sequential ${s3_seq}s, boto3 x10 ${s3_par}s"
  results+=("{\"tus_s\": $tus_s, \"origin_peak_rss_kib\": $peak_kib, \"boto3_sequential_s\": $s3_seq, \"boto3_concurrent_s\": $s3_par}")
done
hwm=$(awk '/VmHWM/{print $2}' "/proc/$ORIGIN_PID/status")

mkdir -p bench/results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=bench/results/upload-$stamp.json
python3 - "$bytes" "$part_bytes" "$CHUNK" "$hwm" "$(nproc)" "${results[@]}" >"$out" <<'PY'
import json, sys
bytes_, part, chunk, hwm, cores = map(int, sys.argv[1:6])
rounds = [json.loads(r) for r in sys.argv[6:]]
mib = bytes_ / (1 << 20)
best = lambda k: min(r[k] for r in rounds)
out = {
    "bytes": bytes_, "part_size": part, "tus_chunk": chunk, "cores": cores, "rounds": rounds,
    "tus_mib_s": round(mib / best("tus_s"), 1),
    "boto3_sequential_mib_s": round(mib / best("boto3_sequential_s"), 1),
    "boto3_concurrent_mib_s": round(mib / best("boto3_concurrent_s"), 1),
    "tus_vs_boto3_sequential": round(best("boto3_sequential_s") / best("tus_s"), 2),
    "tus_vs_boto3_concurrent": round(best("boto3_concurrent_s") / best("tus_s"), 2),
    "origin_peak_rss_mib": round(max(r["origin_peak_rss_kib"] for r in rounds) / 1024, 1),
    "origin_vmhwm_mib": round(hwm / 1024, 1),
    "note": "throughput ratios are best-of-rounds, >1 means tus through origin was faster",
}
print(json.dumps(out, indent=2))
PY
cp "$out" bench/results/upload-latest.json
cat "$out"
