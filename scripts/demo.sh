#!/usr/bin/env bash
# `make demo`: with the stack up (make up), generates a sample video, uploads it through tus,
# waits until it is packaged, mints a playback token and prints the tokenized edge URLs.
set -euo pipefail
cd "$(dirname "$0")/.."
STACK_DIR=${STACK_DIR:-$PWD/.stack}
set -a; . "$STACK_DIR/env"; set +a

sample=$STACK_DIR/demo-sample.mp4
if [ ! -s "$sample" ]; then
  echo "demo: generating a 20 s 1280x720 sample (testsrc2 + sine)"
  ffmpeg -v error -y -f lavfi -i testsrc2=size=1280x720:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
    -t 20 -c:v libx264 -preset veryfast -pix_fmt yuv420p -c:a aac -shortest "$sample"
fi
size=$(stat -c %s "$sample")

# The demo creator's wallet: a key generated once per stack, signing in with SIWE via viem.
wallet=$STACK_DIR/secrets/demo-wallet
[ -s "$wallet" ] || { od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$wallet"; chmod 600 "$wallet"; }
session=$(node scripts/vectors/signin.mjs "$ORIGIN_URL" "$(cat "$wallet")")
auth="Authorization: Bearer $session"

# The viewer's wallet gets an NFT of a freshly deployed ERC-721 on the local chain, and the
# video is gated by that collection.
viewer_key=$STACK_DIR/secrets/demo-viewer
[ -s "$viewer_key" ] || { od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$viewer_key"; chmod 600 "$viewer_key"; }
viewer=$(cd scripts/vectors && node --input-type=module -e \
  "import { privateKeyToAccount } from 'viem/accounts'; console.log(privateKeyToAccount('0x$(cat "$viewer_key")').address)")
nft=$(node scripts/chain/deploy-tokens.mjs "$EVM_RPC_URL" | python3 -c 'import json,sys; print(json.load(sys.stdin)["erc721"])')
node scripts/chain/tokens.mjs mint "$EVM_RPC_URL" erc721 "$nft" "$viewer" 1
echo "demo: minted ERC-721 $nft #1 to the viewer $viewer"
policy="{\"erc721\":{\"chain\":\"eip155:31337\",\"contract\":\"$nft\"}}"

id=$(curl -fsS -X POST "$ORIGIN_URL/v1/contents" -H "$auth" -H 'content-type: application/json' \
  -d "{\"title\":\"StreamGate demo\",\"policy\":$policy}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
echo "demo: content $id, gated by $policy"

meta="content_id $(printf %s "$id" | base64 -w0),filename $(printf demo.mp4 | base64 -w0)"
location=$(curl -fsS -D - -o /dev/null -X POST "$ORIGIN_URL/v1/uploads" -H "$auth" \
  -H 'Tus-Resumable: 1.0.0' -H "Upload-Length: $size" -H "Upload-Metadata: $meta" \
  | tr -d '\r' | awk 'tolower($1)=="location:"{print $2}')
echo "demo: uploading $size bytes to $location"
curl -fsS -X PATCH "$location" -H "$auth" -H 'Tus-Resumable: 1.0.0' -H 'Upload-Offset: 0' \
  -H 'Content-Type: application/offset+octet-stream' --data-binary "@$sample" -o /dev/null

echo -n "demo: transcoding"
for _ in $(seq 1 300); do
  rec=$(curl -fsS "$ORIGIN_URL/v1/contents/$id")
  status=$(printf %s "$rec" | python3 -c 'import json,sys; print(json.load(sys.stdin)["status"])')
  case "$status" in
    ready) echo " ready"; break ;;
    failed) echo; echo "demo: failed: $rec" >&2; exit 1 ;;
    *) echo -n "."; sleep 1 ;;
  esac
done
[ "$status" = ready ] || { echo; echo "demo: not ready after 300 s" >&2; exit 1; }

# The viewer signs in (SIWE via viem) and asks the edge for a playback grant.
viewer_session=$(node scripts/vectors/signin.mjs "$ORIGIN_URL" "$(cat "$viewer_key")")
grant=$(curl -fsS "$EDGE_URL/v1/playback/$id" -H "Authorization: Bearer $viewer_session")
hls="$EDGE_URL$(printf %s "$grant" | python3 -c 'import json,sys; print(json.load(sys.stdin)["hls"])')"
dash="$EDGE_URL$(printf %s "$grant" | python3 -c 'import json,sys; print(json.load(sys.stdin)["dash"])')"
stranger=$(node scripts/vectors/signin.mjs "$ORIGIN_URL" "$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')" 2>/dev/null)
refused=$(curl -s -o /dev/null -w '%{http_code}' "$EDGE_URL/v1/playback/$id" -H "Authorization: Bearer $stranger")
cat <<TXT

StreamGate demo is up. The video is gated by ERC-721 $nft on the local chain;
the viewer $viewer holds #1 and was granted playback (a wallet without it gets $refused).
  HLS:  $hls
  DASH: $dash

Watch it in the web app (sign in with a wallet that holds the token; the viewer's key is
$viewer_key):
  App:  $ORIGIN_URL/watch/$id

Check it plays:
  ffprobe -v error -show_entries stream=codec_type,width,height "$hls"
  ffplay "$hls"            (or paste the HLS URL into any hls.js / Safari player)
Without the token the edge refuses: curl -i $EDGE_URL/p/x/$id/master.m3u8
Stop the stack with: make down
TXT
