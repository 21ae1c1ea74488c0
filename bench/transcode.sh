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
# BENCH_ROUNDS (4) rounds of 1 and 2, their order alternating. Writes bench/results/transcode-<UTC>.json and
# transcode-latest.json. Environment as bench/private-stack.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${BENCH_ROUNDS:-4}
. bench/private-stack.sh

# The default ladder on a 1280x720, 30 fps source (transcoder/src/ffmpeg.rs, ladder.rs).
RUNGS=("360p 640 360 800 main" "540p 960 540 1800 high" "720p 1280 720 3000 high")

# The job's artwork plan for this clip (transcoder/src/artwork.rs, Plan::new): a thumbnail every
# ceil(seconds / 100) s (1..10), the poster a tenth in (at most 5 s) at 30 fps.
THUMB_INTERVAL=$(python3 -c "import math; print(min(10, max(1, math.ceil($CLIP_SECONDS / 100))))")
POSTER_FRAME=$(python3 -c "print(int(min($CLIP_SECONDS * 0.1, 5.0) * 30))")

# The bare command for the given rungs (indices into RUNGS) and the audio, into directory $1.
# With $2 = 1 it also makes the job's artwork in the same run, as the job does (two more
# branches of the split: 160x90 thumbnails every THUMB_INTERVAL s and the poster, frame
# POSTER_FRAME at 720p, both mjpeg), to tell that cost from the rest.
bare() {
  local out=$1 art=$2; shift 2
  local splits=$# graph maps=() codec=() extra=() i=0 r name w h k profile
  [ "$art" = 1 ] && splits=$(($# + 2))
  graph="[0:v:0]split=$splits"
  for i in $(seq 0 $((splits - 1))); do graph+="[s$i]"; done
  i=0
  for r in "$@"; do
    read -r name w h k profile <<<"${RUNGS[$r]}"
    graph+=";[s$i]scale=w=$w:h=$h,setsar=1[v$i]"
    maps+=(-map "[v$i]")
    codec+=("-profile:v:$i" "$profile" "-b:v:$i" "${k}k" "-maxrate:v:$i" "$((k * 11 / 10))k" "-bufsize:v:$i" "$((k * 2))k")
    i=$((i + 1))
  done
  rm -rf "$out"; mkdir -p "$out"
  if [ "$art" = 1 ]; then
    graph+=";[s$i]fps=1/$THUMB_INTERVAL,scale=w=160:h=90,setsar=1,format=yuvj420p[thumbs]"
    graph+=";[s$((i + 1))]select=eq(n\\,$POSTER_FRAME),scale=w=1280:h=720,setsar=1,format=yuvj420p[poster]"
    mkdir -p "$out/art"
    extra=(-map "[thumbs]" -c:v mjpeg -q:v 5 -f image2 "$out/art/t-%05d.jpg"
      -map "[poster]" -c:v mjpeg -q:v 3 -frames:v 1 -update 1 -f image2 "$out/art/poster.jpg")
  fi
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
    "$out/manifest.mpd" "${extra[@]}"
}

timed() { # command...: wall seconds
  local t0 t1
  t0=$(date +%s.%N); "$@" || die "$1 failed"; t1=$(date +%s.%N)
  python3 -c "print(round($t1 - $t0, 3))"
}

rounds=()
# Odd rounds run the job first, even rounds the bare commands first: a machine that gets busier
# (or quieter) during the run does not favour one side.
job_round() {
  read -r id job ff phases stack < <(package none)
  log "round $r: job ${job}s (its FFmpeg run ${ff}s; by phase $phases; CPU-s of the stack meanwhile $stack) ($id)"
}
bare_round() {
  b=$(timed bare "$WORK/bare" 0 0 1 2)
  segs=$(find "$WORK/bare" -name 'seg-*.m4s' | wc -l)
  log "round $r: bare ffmpeg ${b}s ($segs segments)"
  ba=$(timed bare "$WORK/bare-art" 1 0 1 2)
  thumbs=$(find "$WORK/bare-art/art" -name 't-*.jpg' | wc -l)
  [ -s "$WORK/bare-art/art/poster.jpg" ] || die "the bare command with artwork wrote no poster"
  log "round $r: bare ffmpeg with the artwork branches ${ba}s ($thumbs thumbnails + poster)"
}
for r in $(seq 1 "$ROUNDS"); do
  if ((r % 2)); then job_round; bare_round; else bare_round; job_round; fi
  rounds+=("{\"round\":$r,\"job_s\":$job,\"job_ffmpeg_s\":$ff,\"bare_ffmpeg_s\":$b,\"bare_with_artwork_s\":$ba,\"job_phases_s\":$phases,\"stack_cpu_s\":$stack}")
done
rtf=()
for i in 0 1 2; do
  read -r name _ <<<"${RUNGS[$i]}"
  s=$(timed bare "$WORK/rung" 0 "$i")
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
art = mean("bare_with_artwork_s")
phases = {}
for r in rounds:
    for k, v in r.get("job_phases_s", {}).items():
        phases[k] = phases.get(k, 0) + v / len(rounds)
print(json.dumps({
    "clip": f"{clip_s}s 1280x720 30 fps + AAC; ladder 360p/540p/720p, 4 s segments",
    "cores": cores, "release_build": True, "rounds": rounds,
    "job_s_mean": round(job, 3), "job_ffmpeg_s_mean": round(ff, 3), "bare_ffmpeg_s_mean": round(bare, 3),
    "job_vs_bare_ffmpeg": round(job / bare, 3),
    "job_ffmpeg_run_vs_bare_ffmpeg": round(ff / bare, 3),
    "bare_with_artwork_s_mean": round(art, 3),
    "artwork_branches_vs_bare_ffmpeg": round(art / bare, 3),
    "job_vs_bare_with_artwork": round(job / art, 3),
    "job_phases_s_mean": {k: round(v, 3) for k, v in phases.items()},
    "stack_cpu_s_mean_per_job": {k: round(sum(r["stack_cpu_s"].get(k, 0) for r in rounds) / len(rounds), 3)
                                 for k in sorted({k for r in rounds for k in r.get("stack_cpu_s", {})})},
    "job_encode_vs_bare_with_artwork": round(phases["encode"] / art, 3) if "encode" in phases else None,
    "per_rung_alone": rtf,
    "note": "the job also makes poster, thumbnails, storyboard and I-frame playlists and uploads to S3; same machine, same run, alternating",
}, indent=2))
PY
cp "$out" bench/results/transcode-latest.json
cat "$out"
