#!/usr/bin/env bash
# bench/grants.sh: playback grants per second at the edge with a warm entitlement cache, against
# the same viewer's master playlist as the baseline, alternating in the same run.
#
# A private release stack (bench/private-stack.sh); a short clip packaged, gated by an allowlist
# naming the viewer (not the owner, so every grant asks the entitlement cache). wrk -t2
# -cBENCH_CONNECTIONS (32) -dBENCH_DURATION (10s): `GET /v1/playback/{id}` with the viewer's
# session (verify the session JWT — cached after the first —, the content's policy — cached —,
# the verdict — L1 —, mint a token, answer JSON) vs `GET /p/{token}/{id}/master.m3u8` (token
# check, the same entitlement re-check, an L1 hit, the rewriter). 2 rounds each.
# Writes bench/results/grants-<UTC>.json and grants-latest.json.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
BENCH_CLIP_SECONDS=${BENCH_CLIP_SECONDS:-4}
command -v wrk >/dev/null || {
  echo "bench: installing wrk (apt)" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends wrk >/dev/null
}
. bench/private-stack.sh

read -r id _ < <(package none)
grant_url="$EDGE_URL/v1/playback/$id"
grant=$(curl -fsS "$grant_url" -H "Authorization: Bearer $viewer")
hls=$(printf %s "$grant" | python3 -c 'import json,sys; print(json.load(sys.stdin)["hls"])')
curl -fsS "$EDGE_URL$hls" >/dev/null

grant_runs=(); pl_runs=()
for r in 1 2; do
  read -r rps p99 < <(wrk_rps "grant-$r" "$grant_url" -H "Authorization: Bearer $viewer")
  log "grants round $r: $rps req/s, p99 ${p99} ms"
  grant_runs+=("{\"rps\":$rps,\"p99_ms\":$p99}")
  read -r rps p99 < <(wrk_rps "playlist-$r" "$EDGE_URL$hls")
  log "playlist round $r: $rps req/s, p99 ${p99} ms"
  pl_runs+=("{\"rps\":$rps,\"p99_ms\":$p99}")
done

mkdir -p bench/results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=bench/results/grants-$stamp.json
python3 - "$(nproc)" "$DURATION" "$CONNECTIONS" \
  "[$(IFS=,; echo "${grant_runs[*]}")]" "[$(IFS=,; echo "${pl_runs[*]}")]" >"$out" <<'PY'
import json, sys
cores, duration, conns = sys.argv[1:4]
grants, pl = json.loads(sys.argv[4]), json.loads(sys.argv[5])
mean = lambda xs: sum(x["rps"] for x in xs) / len(xs)
print(json.dumps({
    "cores": int(cores), "release_build": True,
    "wrk": {"duration": duration, "connections": int(conns), "threads": 2},
    "grant_runs": grants, "playlist_runs": pl,
    "grant_rps_mean": round(mean(grants)), "playlist_rps_mean": round(mean(pl)),
    "grant_vs_playlist": round(mean(grants) / mean(pl), 3),
    "note": "viewer on the allowlist (not the owner), warm session, policy and verdict caches; wrk shares the 2 cores with the stack",
}, indent=2))
PY
cp "$out" bench/results/grants-latest.json
cat "$out"
