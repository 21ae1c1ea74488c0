#!/usr/bin/env bash
# bench/transcode.sh: what the transcoder's ladder run costs over FFmpeg alone, same input, same
# run, alternating.
#
#   1. The job: the clip (BENCH_CLIP_SECONDS of 1280x720 testsrc2 at 30 fps + a tone) uploaded
#      and packaged by the release transcoder of a private stack (default ladder 360p/540p/720p
#      at 800/1800/3000 kbit/s, AAC 128k, 4 s CMAF segments, plus the poster, thumbnails,
#      storyboard and I-frame playlists it always makes, and the uploads to S3). Its time is the
#      transcoder's own `streamgate_transcoder_job_duration_seconds`.
#   2. The baseline: one bare `ffmpeg` command writing the same renditions and segments (same
#      split/scale graph, x264 settings, key frames on the 4 s grid, AAC, the dash muxer with
#      HLS playlists) to a local directory, on the same clip.
#   3. Real-time factor per rung: the bare command for each rung alone (clip seconds / wall).
#
# BENCH_ROUNDS (2) alternating rounds of 1 and 2. Writes bench/results/transcode-<UTC>.json and
# transcode-latest.json. Environment as bench/private-stack.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${BENCH_ROUNDS:-2}
. bench/private-stack.sh

# The default ladder on a 1280x720, 30 fps source (transcoder/src/ffmpeg.rs, ladder.rs).
RUNGS=("360p 640 360 800 main" "540p 960 540 1800 high" "720p 1280 720 3000 high")

# The bare command for the given rungs (indices into RUNGS) and the audio, into directory $1.
bare() {
  local out=$1; shift
  local graph="[0:v:0]split=$#" maps=() codec=() i=0 r name w h k profile
  for r in "$@"; do graph+="[s$i]"; i=$((i + 1)); done
  i=0
  for r in "$@"; do
    read -r name w h k profile <<<"${RUNGS[$r]}"
    graph+=";[s$i]scale=w=$w:h=$h,setsar=1[v$i]"
    maps+=(-map "[v$i]")
    codec+=("-profile:v:$i" "$profile" "-b:v:$i" "${k}k" "-maxrate:v:$i" "$((k * 11 / 10))k" "-bufsize:v:$i" "$((k * 2))k")
    i=$((i + 1))
  done
  rm -rf "$out"; mkdir -p "$out"
  # The dash muxer writes into one folder per representation and creates none.
  for i in $(seq 0 $#); do mkdir -p "$out/$i"; done
  ffmpeg -hide_banner -nostdin -y -loglevel error -i "$WORK/clip.mp4" \
    -filter_complex "$graph" "${maps[@]}" -map 0:a:0 -map_metadata -1 \
    -c:a aac -ac 2 -ar 48000 -b:a:0 128k \
    -c:v libx264 -pix_fmt yuv420p -preset veryfast -sc_threshold 0 -g 120 -keyint_min 120 \
    -force_key_frames 'expr:gte(t,n_forced*4)' "${codec[@]}" \
    -f dash -seg_duration 4 -use_template 1 -use_timeline 0 -hls_playlist 1 \
    -hls_master_name master.m3u8 -adaptation_sets "id=0,streams=v id=1,streams=$#" \
    -init_seg_name '$RepresentationID$/init.mp4' -media_seg_name '$RepresentationID$/seg-$Number%05d$.m4s' \
    "$out/manifest.mpd"
}

timed() { # command...: wall seconds
  local t0 t1
  t0=$(date +%s.%N); "$@" || die "$1 failed"; t1=$(date +%s.%N)
  python3 -c "print(round($t1 - $t0, 3))"
}

rounds=()
for r in $(seq 1 "$ROUNDS"); do
  read -r id job ff < <(package none)
  log "round $r: job ${job}s (its FFmpeg run ${ff}s) ($id)"
  b=$(timed bare "$WORK/bare" 0 1 2)
  segs=$(find "$WORK/bare" -name 'seg-*.m4s' | wc -l)
  log "round $r: bare ffmpeg ${b}s ($segs segments)"
  rounds+=("{\"round\":$r,\"job_s\":$job,\"job_ffmpeg_s\":$ff,\"bare_ffmpeg_s\":$b}")
done
rtf=()
for i in 0 1 2; do
  read -r name _ <<<"${RUNGS[$i]}"
  s=$(timed bare "$WORK/rung" "$i")
  log "rung $name alone: ${s}s for ${CLIP_SECONDS}s of video"
  rtf+=("{\"rung\":\"$name\",\"wall_s\":$s,\"realtime_factor\":$(python3 -c "print(round($CLIP_SECONDS / $s, 2))")}")
done

mkdir -p bench/results
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=bench/results/transcode-$stamp.json
python3 - "$CLIP_SECONDS" "$(nproc)" "[$(IFS=,; echo "${rounds[*]}")]" "[$(IFS=,; echo "${rtf[*]}")]" >"$out" <<'PY'
import json, sys
clip_s, cores = int(sys.argv[1]), int(sys.argv[2])
rounds, rtf = json.loads(sys.argv[3]), json.loads(sys.argv[4])
mean = lambda k: sum(r[k] for r in rounds) / len(rounds)
job, ff, bare = mean("job_s"), mean("job_ffmpeg_s"), mean("bare_ffmpeg_s")
print(json.dumps({
    "clip": f"{clip_s}s 1280x720 30 fps + AAC; ladder 360p/540p/720p, 4 s segments",
    "cores": cores, "release_build": True, "rounds": rounds,
    "job_s_mean": round(job, 3), "job_ffmpeg_s_mean": round(ff, 3), "bare_ffmpeg_s_mean": round(bare, 3),
    "job_vs_bare_ffmpeg": round(job / bare, 3),
    "job_ffmpeg_run_vs_bare_ffmpeg": round(ff / bare, 3),
    "per_rung_alone": rtf,
    "note": "the job also makes poster, thumbnails, storyboard and I-frame playlists and uploads to S3; same machine, same run, alternating",
}, indent=2))
PY
cp "$out" bench/results/transcode-latest.json
cat "$out"
