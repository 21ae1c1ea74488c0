#!/usr/bin/env bash
# bench/encryption.sh: what encryption costs, measured against its clear baseline in the same run.
#
#   1. Packaging: the same clip (BENCH_CLIP_SECONDS of 1280x720 testsrc2 + a tone) uploaded
#      alternately clear and with "encryption": "cenc", BENCH_ROUNDS times each; per job, the
#      transcoder's own job time and FFmpeg time (deltas of the job-duration and
#      FFmpeg histograms, one job at a time), so the figure is the worker's, not a poll interval.
#      Reports encrypted/clear job-time ratio and the packaging time outside FFmpeg for both.
#   2. License requests/s at the edge with a warm entitlement cache: a viewer on the content's
#      allowlist (not its owner, so every request goes through the entitlement cache) POSTs the
#      W3C ClearKey request to /p/{token}/{id}/license with wrk; the baseline, alternating in the
#      same run, is the same viewer's GET of the content's master playlist (token check +
#      entitlement re-check + L1 hit). Reports license/playlist.
#
# Runs a private RELEASE stack (its own STACK_DIR under a temp dir, ports from BENCH_PORT_BASE,
# default 28000; license limit lifted, entitlement TTLs 10 min) and stops it on exit.
# Environment: BENCH_ROUNDS (2), BENCH_CLIP_SECONDS (20), BENCH_DURATION (wrk -d, 10s),
# BENCH_CONNECTIONS (32), BENCH_PORT_BASE, BENCH_NO_BUILD=1, BENCH_KEEP=1 (keep the temp dir).
# Writes bench/results/encryption-<UTC>.json and encryption-latest.json.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${BENCH_ROUNDS:-2}
DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
command -v wrk >/dev/null || {
  echo "bench: installing wrk (apt)" >&2
  sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends wrk >/dev/null
}
. bench/private-stack.sh

rounds=()
for r in $(seq 1 "$ROUNDS"); do
  for e in none cenc; do
    read -r id job ff _ _ < <(package "$e")
    log "round $r, $e: job ${job}s, ffmpeg ${ff}s ($id)"
    rounds+=("{\"round\":$r,\"encryption\":\"$e\",\"job_s\":$job,\"ffmpeg_s\":$ff}")
    [ "$e" = cenc ] && enc_id=$id
  done
done

# License vs playlist, warm: one grant, then both URLs answered once before measuring.
grant=$(curl -fsS "$EDGE_URL/v1/playback/$enc_id" -H "Authorization: Bearer $viewer")
read -r hls license < <(printf %s "$grant" | python3 -c 'import json,sys; g=json.load(sys.stdin); print(g["hls"], g["license"])')
kid=$(curl -fsS "$EDGE_URL$hls" >/dev/null; curl -fsS "$EDGE_URL${hls%master.m3u8}$(curl -fsS "$EDGE_URL$hls" | grep -v '^#' | grep m3u8 | head -1)" \
  | sed -n 's/.*KEYID=0x\([0-9A-Fa-f]\{32\}\).*/\1/p' | head -1)
[ -n "$kid" ] || die "no KEYID in the media playlist"
kid_b64=$(python3 -c "import base64; print(base64.urlsafe_b64encode(bytes.fromhex('$kid')).decode().rstrip('='))")
body="{\"kids\":[\"$kid_b64\"],\"type\":\"temporary\"}"
code=$(curl -s -o "$WORK/license.json" -w '%{http_code}' -X POST -H 'content-type: application/json' \
  --data "$body" "$EDGE_URL$license")
[ "$code" = 200 ] || die "license answered $code: $(cat "$WORK/license.json")"
cat >"$WORK/license.lua" <<LUA
wrk.method = "POST"
wrk.body = '$body'
wrk.headers["Content-Type"] = "application/json"
LUA

lic_runs=(); pl_runs=()
for r in 1 2; do
  read -r rps p99 < <(wrk_rps "license-$r" "$EDGE_URL$license" -s "$WORK/license.lua")
  log "license round $r: $rps req/s, p99 ${p99} ms"
  lic_runs+=("{\"rps\":$rps,\"p99_ms\":$p99}")
  read -r rps p99 < <(wrk_rps "playlist-$r" "$EDGE_URL$hls")
  log "playlist round $r: $rps req/s, p99 ${p99} ms"
  pl_runs+=("{\"rps\":$rps,\"p99_ms\":$p99}")
done
granted=$(curl -fsS "$EDGE_METRICS_URL/metrics" | awk '$1=="streamgate_edge_license_requests_total{outcome=\"granted\"}" {print $2}')

mkdir -p bench/results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=bench/results/encryption-$stamp.json
python3 - "$CLIP_SECONDS" "$(nproc)" "$DURATION" "$CONNECTIONS" "$granted" \
  "[$(IFS=,; echo "${rounds[*]}")]" "[$(IFS=,; echo "${lic_runs[*]}")]" "[$(IFS=,; echo "${pl_runs[*]}")]" \
  >"$out" <<'PY'
import json, sys
clip_s, cores, duration, conns, granted = sys.argv[1:6]
rounds, lic, pl = (json.loads(a) for a in sys.argv[6:9])
mean = lambda xs: sum(xs) / len(xs)
job = {e: mean([r["job_s"] for r in rounds if r["encryption"] == e]) for e in ("none", "cenc")}
outside = {e: mean([r["job_s"] - r["ffmpeg_s"] for r in rounds if r["encryption"] == e])
           for e in ("none", "cenc")}
lic_rps, pl_rps = mean([r["rps"] for r in lic]), mean([r["rps"] for r in pl])
print(json.dumps({
    "clip": f"{clip_s}s 1280x720 30 fps + AAC, the transcoder's default ladder",
    "cores": int(cores), "release_build": True,
    "packaging": {
        "rounds": rounds,
        "job_s_mean": {k: round(v, 3) for k, v in job.items()},
        "outside_ffmpeg_s_mean": {k: round(v, 3) for k, v in outside.items()},
        "encrypted_vs_clear_job_time": round(job["cenc"] / job["none"], 3),
    },
    "license": {
        "wrk": {"duration": duration, "connections": int(conns), "threads": 2},
        "license_runs": lic, "playlist_runs": pl,
        "license_rps_mean": round(lic_rps), "playlist_rps_mean": round(pl_rps),
        "license_vs_playlist": round(lic_rps / pl_rps, 3),
        "granted_total": float(granted or 0),
    },
    "note": "same machine, same run, alternating; wrk shares the 2 cores with the whole stack",
}, indent=2))
PY
cp "$out" bench/results/encryption-latest.json
cat "$out"
