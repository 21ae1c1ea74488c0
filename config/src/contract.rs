//! The v1 wire contract between services, defined once: storage layout in the bucket, every
//! Redis key, stream, group and channel, the URL shapes players, edges and origin share, the
//! headers edges send, and the job and event messages. Nothing outside this module spells a
//! `sg:` key or a route prefix. Keep it stable: extend, never rename (docs/architecture.md,
//! "Wire contract").
//!
//! | name | kind | written by | read by |
//! |---|---|---|---|
//! | `sg:jobs` ([`JOBS_STREAM`]), group `transcoders` | stream | origin | transcoders |
//! | `sg:jobs:dead` ([`JOBS_DEAD_LETTER`]) | stream | transcoders | operators |
//! | `sg:jobs:error:{entry}` ([`keys::job_error`]) | string | transcoders | transcoders (retry count) |
//! | `sg:events` ([`EVENTS_STREAM`]), group `origin` | stream | transcoders | origin |
//! | `sg:invalidate` ([`INVALIDATE_CHANNEL`]) | pub/sub | origin, edges (purge) | edges |
//! | `sg:{invalidate}:state`, `sg:{invalidate}:log` ([`invalidation_log`]) | hash, stream | origin, edges (purge) | edges (resync) |
//! | `sg:nonce:{nonce}` ([`keys::nonce`]) | string, TTL | origin | origin |
//! | `sg:rl:{limit}:{client}:{minute}` ([`keys::rate_limit`]) | counter | origin | origin |
//! | `sg:revoked:{jti}` ([`keys::revoked_session`]) | string, TTL | origin | origin, edges |
//! | `sg:upload:{id}`, `sg:upload:{id}:lock` ([`keys::upload_state`], [`keys::upload_lock`]) | string, lease | origin | origin |
//! | `sg:lock:content:{id}` ([`keys::content_lock`]) | lease | origin | origin |
//! | `sg:uploads:expiring` ([`keys::UPLOADS_EXPIRING`]) | sorted set | origin | origin (sweeper) |
//! | `sg:idx:{owner}:{all\|status}`, `sg:idx:pos:{id}` ([`keys::content_index`], [`keys::content_position`]) | sorted set, hash | origin | origin (listing) |
//! | `sg:subj:{hash}` ([`keys::viewer`]) | string, TTL | edges | edges |
//! | `sg:ent:{digest}` ([`keys::verdict`]) | string, TTL | edges | edges |
//! | `sg:obj:{{id}}:{hash}`, `sg:objs:{{id}}` ([`keys::edge_object`], [`keys::edge_objects`]) | string, set | edges | edges; origin deletes |
//! | `uploads/{id}/source`, `media/{id}/…`, `catalog/{id}.json` ([`layout`]) | S3 objects | origin, transcoders | origin |
//! | `/p/{token}/{id}/{path}`, `/c/{id}/{path}`, `/v1/playback/{id}` ([`paths`]) | URLs | edge | players |
//! | `/v/{id}/{path}` ([`MEDIA_PREFIX`]) | URL | origin (internal), parent edges | edges |
//! | `sg1:{id}/{path}` ([`edge_cache_key`]) | cache key | edges | edges |
//! | `x-streamgate-edge-key`, `x-streamgate-client-ip` | headers | edges | origin, parents |

use serde::{Deserialize, Serialize};

/// Redis stream of transcode jobs.
pub const JOBS_STREAM: &str = "sg:jobs";
/// Consumer group of transcoders on [`JOBS_STREAM`].
pub const JOBS_GROUP: &str = "transcoders";
/// Where jobs go after too many failed attempts.
pub const JOBS_DEAD_LETTER: &str = "sg:jobs:dead";
/// Redis stream of job progress and results.
pub const EVENTS_STREAM: &str = "sg:events";
/// Consumer group of origins on [`EVENTS_STREAM`].
pub const EVENTS_GROUP: &str = "origin";
/// Pub/sub channel of cache invalidations.
pub const INVALIDATE_CHANNEL: &str = "sg:invalidate";
/// The field of a stream entry that holds the JSON message.
pub const STREAM_FIELD: &str = "data";

/// Request header carrying an edge's key (`upstream.edge-key`) to origin's internal listener
/// and to parent edges; checked against their `server.edge-keys`.
pub const EDGE_KEY_HEADER: &str = "x-streamgate-edge-key";
/// Request header in which a child edge tells its parent the viewer's address; believed only
/// on requests that carry a valid edge key.
pub const CLIENT_IP_HEADER: &str = "x-streamgate-client-ip";
/// Path prefix of packaged files on origin's internal listener and on parent edges:
/// `/v/{content_id}/{path}`.
pub const MEDIA_PREFIX: &str = "/v/";

/// The demuxers FFmpeg and ffprobe may use on an uploaded file (`-format_whitelist`, at origin's
/// probe and in the transcoder): video containers and the common audio files (MP3, WAV, FLAC,
/// ADTS AAC; M4A is `mov`, Ogg Vorbis/Opus is `ogg`). Playlists and lists (`hls`, `dash`,
/// `concat`), image sequences and text formats are refused: they make FFmpeg open further
/// files or URLs the uploader chose (internal services, cloud metadata, local files).
pub const FFMPEG_FORMATS: &str = "mov,matroska,avi,flv,mpegts,mpeg,asf,ogg,mxf,mp3,wav,flac,aac";

/// The reason an upload in another format fails with (`{demuxer}` is what FFmpeg detected).
pub fn unaccepted_format(demuxer: &str) -> String {
    format!(
        "not a media file: {demuxer} input is not accepted (playlists, lists, images and text \
         are refused; upload a video container: MP4/MOV, Matroska/WebM, AVI, FLV, MPEG-TS/PS, \
         ASF/WMV, Ogg or MXF, or audio: M4A, MP3, WAV, FLAC, AAC)"
    )
}

/// The demuxer FFmpeg named in a "Format not on whitelist" error (`[hls @ 0x…] Format not on
/// whitelist '…'`), if `stderr` holds one.
pub fn refused_format(stderr: &str) -> Option<&str> {
    stderr
        .lines()
        .find(|l| l.contains("Format not on whitelist"))
        .and_then(|l| l.strip_prefix('['))
        .and_then(|l| l.split_once(" @"))
        .map(|(name, _)| name)
        .filter(|n| !n.is_empty() && n.len() < 32 && !n.contains(char::is_whitespace))
}

/// Object keys in the bucket.
pub mod layout {
    /// The uploaded source file.
    pub fn source_key(id: &str) -> String {
        format!("uploads/{id}/source")
    }
    /// Prefix of every packaged file of a content.
    pub fn media_prefix(id: &str) -> String {
        format!("media/{id}/")
    }
    /// One packaged file (`path` relative to the package root, already validated).
    pub fn media_key(id: &str, path: &str) -> String {
        format!("media/{id}/{path}")
    }
    /// A content's key, wrapped (`auth::content_key::WrappedKey` JSON); only encrypted
    /// contents have one, and deleting the content deletes it.
    pub fn key_key(id: &str) -> String {
        format!("keys/{id}.json")
    }
    /// The catalog record.
    pub fn catalog_key(id: &str) -> String {
        format!("catalog/{id}.json")
    }
    /// HLS master playlist, relative to the package root.
    pub const HLS_MASTER: &str = "master.m3u8";
    /// DASH manifest, relative to the package root.
    pub const DASH_MANIFEST: &str = "manifest.mpd";
    /// The ClearKey license endpoint, relative to a content's prefix at the edge
    /// (`/p/{token}/{id}/license`, `/c/{id}/license`). Never an object in the bucket.
    pub const LICENSE: &str = "license";
}

/// Whether `id` is a well-formed content id: 1 to 64 of `A-Z a-z 0-9 _ -`.
pub fn is_valid_content_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Whether `path` is an acceptable relative path inside a package: non-empty segments of
/// `A-Z a-z 0-9 . _ -`, no segment `.` or `..`, at most 8 segments and 256 bytes.
pub fn is_valid_media_path(path: &str) -> bool {
    if path.is_empty() || path.len() > 256 {
        return false;
    }
    let mut n = 0;
    for seg in path.split('/') {
        n += 1;
        if n > 8 || seg.is_empty() || seg == "." || seg == ".." {
            return false;
        }
        if !seg
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        {
            return false;
        }
    }
    true
}

/// How a content's package is encrypted (`"encryption"` in `POST /v1/contents`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Encryption {
    /// Clear segments (the default).
    #[default]
    None,
    /// ISO/IEC 23001-7 `cenc` (AES-128-CTR), keys through the edge's ClearKey license.
    Cenc,
}

impl Encryption {
    /// Whether segments are encrypted.
    pub fn is_encrypted(self) -> bool {
        self != Encryption::None
    }
}

/// A transcode job on [`JOBS_STREAM`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The content to package.
    pub content_id: String,
    /// Object key of the source file.
    pub source_key: String,
    /// When origin enqueued it (Unix milliseconds).
    pub enqueued_at_ms: u64,
    /// Encrypt the package (absent: clear, as jobs from before encryption existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
}

/// One rung of the packaged ABR ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rendition {
    /// Name (`720p`), also its folder under `media/{id}/`.
    pub name: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Peak bandwidth announced in manifests, bits per second.
    pub bandwidth: u64,
}

/// One packaged audio rendition: an alternate language of a video (HLS `EXT-X-MEDIA`
/// `TYPE=AUDIO`, a DASH audio adaptation set with `@lang`), or a rung of an audio-only
/// ladder (then it is also an HLS variant stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioRendition {
    /// Its folder under `media/{id}/` (`audio`, `audio-fr`, `aac-128k`).
    pub name: String,
    /// BCP 47 language tag from the source stream's metadata, when it has one.
    pub language: Option<String>,
    /// The name players show (`Français`, `Audio 2`).
    pub label: String,
    /// Channels encoded.
    pub channels: u32,
    /// Bit rate the encoder was given, bits per second.
    pub bitrate: u64,
}

/// What a package has besides its renditions, from the same FFmpeg run: paths are relative to
/// the content (`media/{id}/…`), served gated through the edge like segments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Artwork {
    /// The poster JPEG (`poster.jpg`), when the source had a frame to make it from.
    pub poster: Option<String>,
    /// The WebVTT storyboard (`thumbs/storyboard.vtt`): cues covering the duration, each
    /// naming a tile of a thumbnail sheet (`sprite-001.jpg#xywh=x,y,w,h`).
    pub storyboard: String,
    /// Size of one thumbnail tile.
    pub thumbnail_width: u32,
    /// Size of one thumbnail tile.
    pub thumbnail_height: u32,
    /// Seconds between two thumbnails.
    pub interval_s: u32,
    /// The rungs' HLS I-frame playlists (`360p/iframes.m3u8`), listed in the master by
    /// `#EXT-X-I-FRAME-STREAM-INF`.
    pub iframe_playlists: Vec<String>,
}

/// A message on [`EVENTS_STREAM`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A worker took the job.
    Started {
        /// Content id.
        content_id: String,
        /// Consumer name of the worker.
        worker: String,
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// Transcoding progress.
    Progress {
        /// Content id.
        content_id: String,
        /// 0 to 100.
        percent: f32,
    },
    /// The package is complete in the bucket; manifests were written last.
    Ready {
        /// Content id.
        content_id: String,
        /// The ladder as packaged.
        renditions: Vec<Rendition>,
        /// Duration of the presentation, seconds.
        duration_s: f64,
        /// Whether an audio track was packaged.
        has_audio: bool,
        /// Poster, storyboard and I-frame playlists (absent from older transcoders).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        artwork: Option<Artwork>,
        /// The audio renditions (absent from older transcoders): one per source audio stream
        /// of a video, or the ladder of an audio-only source (whose `renditions` is empty).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        audio: Vec<AudioRendition>,
    },
    /// The job cannot succeed (bad input) or ran out of attempts.
    Failed {
        /// Content id.
        content_id: String,
        /// Why, for the creator.
        error: String,
    },
}

impl Event {
    /// The content this event is about.
    pub fn content_id(&self) -> &str {
        match self {
            Event::Started { content_id, .. }
            | Event::Progress { content_id, .. }
            | Event::Ready { content_id, .. }
            | Event::Failed { content_id, .. } => content_id,
        }
    }
}

/// A message on [`INVALIDATE_CHANNEL`]: what edges must forget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Invalidation {
    /// A content was deleted: drop its objects, policy and grants.
    ContentDeleted {
        /// Content id.
        content_id: String,
    },
    /// A content's policy changed: drop cached entitlement decisions for it.
    PolicyChanged {
        /// Content id.
        content_id: String,
    },
    /// A content was packaged again: drop its cached objects.
    Repackaged {
        /// Content id.
        content_id: String,
    },
    /// Cached objects to forget: an operator purged them at one edge (admin API), or origin
    /// rewrote them (a manifest after a caption change). Every edge drops them from its L1;
    /// one object (`path` set) also from L2 (each edge deletes that key; a whole content's L2
    /// keys are deleted by whoever purged it).
    Purged {
        /// Content id.
        content_id: String,
        /// One object's path inside the package; absent: every object of the content.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
    },
    /// A session was revoked (logout) until `exp`: drop it from verification caches.
    SessionRevoked {
        /// The token's `jti`.
        jti: String,
        /// The token's expiry, Unix seconds.
        exp: i64,
    },
}

/// The invalidation log: every message on [`INVALIDATE_CHANNEL`] is also numbered and kept, so
/// an edge that lost its subscription can tell on its return whether it missed anything, and
/// replay what it missed instead of emptying its L1.
///
/// ```text
///  publish (PUBLISH_SCRIPT, atomic)          sg:{invalidate}:state  {epoch, seq}
///   ├─ epoch ← TIME if absent (a Redis that lost its data starts a new epoch)
///   ├─ seq   ← seq + 1
///   ├─ XADD sg:{invalidate}:log MAXLEN ~ LOG_LEN  {seq, data: message}
///   └─ PUBLISH sg:invalidate {"epoch","seq","id", …message}
///  edge (re)subscribes, then RESYNC_SCRIPT → epoch, seq, last id, entries after its last id
///   ├─ same epoch, entries seq+1 … seq contiguous ─► replay them, keep L1
///   └─ otherwise (new epoch, seq went back, log trimmed) ─► forget everything (fail closed)
/// ```
///
/// Both keys carry the hash tag `{invalidate}` (one Redis Cluster slot, as the scripts need).
/// Messages published without the script (no envelope) are applied but cannot be replayed.
pub mod invalidation_log {
    use serde::Deserialize;

    use super::Invalidation;

    /// Hash `{epoch, seq}`: the log's identity and its last sequence number.
    pub const STATE_KEY: &str = "sg:{invalidate}:state";
    /// Stream of numbered messages (`seq`, `data`), trimmed to about [`LOG_LEN`] entries.
    pub const LOG_KEY: &str = "sg:{invalidate}:log";
    /// Entries kept in the log: an edge away for longer than this many messages resyncs fully.
    pub const LOG_LEN: u32 = 10_000;
    /// The field of a log entry holding its sequence number.
    pub const SEQ_FIELD: &str = "seq";

    /// Numbers, logs and publishes one message atomically. `KEYS`: [`STATE_KEY`], [`LOG_KEY`];
    /// `ARGV`: the message JSON (an object), [`LOG_LEN`], [`super::INVALIDATE_CHANNEL`].
    /// Returns the number of subscribers that received it (as `PUBLISH`).
    pub const PUBLISH_SCRIPT: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'epoch') == 0 then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'epoch', t[1] .. '.' .. t[2])
end
local epoch = redis.call('HGET', KEYS[1], 'epoch')
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'seq', seq, 'data', ARGV[1])
local env = '{"epoch":"' .. epoch .. '","seq":' .. seq .. ',"id":"' .. id .. '",' .. string.sub(ARGV[1], 2)
return redis.call('PUBLISH', ARGV[3], env)
"#;

    /// Reads the log's position and what follows an edge's last entry. `KEYS`: [`STATE_KEY`],
    /// [`LOG_KEY`]; `ARGV`: the edge's last entry id (`""`: none), the most entries to return.
    /// Returns `[epoch, seq, last id or "", [[id, [field, value, …]], …]]`; an absent epoch is
    /// created, so two edges meeting an empty Redis agree on one.
    pub const RESYNC_SCRIPT: &str = r#"
if redis.call('HEXISTS', KEYS[1], 'epoch') == 0 then
  local t = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'epoch', t[1] .. '.' .. t[2])
end
local st = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
local last = redis.call('XREVRANGE', KEYS[2], '+', '-', 'COUNT', 1)
local last_id = ''
if #last > 0 then last_id = last[1][1] end
local entries = {}
if ARGV[1] ~= '' then
  entries = redis.call('XRANGE', KEYS[2], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])
end
return {st[1], st[2] or '0', last_id, entries}
"#;

    /// A message as published by [`PUBLISH_SCRIPT`]: the log position, then the message.
    #[derive(Debug, Clone, PartialEq, Deserialize)]
    pub struct Envelope {
        /// The log's epoch (absent: published without the script).
        #[serde(default)]
        pub epoch: Option<String>,
        /// The message's sequence number in the epoch.
        #[serde(default)]
        pub seq: Option<u64>,
        /// The log entry's id.
        #[serde(default)]
        pub id: Option<String>,
        /// The message.
        #[serde(flatten)]
        pub message: Invalidation,
    }
}

/// Redis key marking a revoked session `jti` (set until the token's expiry).
pub fn revoked_session_key(jti: &str) -> String {
    keys::revoked_session(jti)
}

/// Every Redis key outside the streams and the channel. Content ids in keys of the edges' object
/// cache carry a hash tag (`{id}`) so a content's keys share one Redis Cluster slot.
pub mod keys {
    /// A sign-in nonce (single use, TTL).
    pub fn nonce(nonce: &str) -> String {
        format!("sg:nonce:{nonce}")
    }
    /// A per-client fixed-window counter of limit `name` in `minute` (Unix minutes).
    pub fn rate_limit(name: &str, client: &str, minute: u64) -> String {
        format!("sg:rl:{name}:{client}:{minute}")
    }
    /// Prefix of revoked-session keys (`SCAN … MATCH sg:revoked:*` at edges).
    pub const REVOKED_SESSION_PREFIX: &str = "sg:revoked:";
    /// A revoked session `jti` (set until the token's expiry).
    pub fn revoked_session(jti: &str) -> String {
        format!("{REVOKED_SESSION_PREFIX}{jti}")
    }
    /// The `jti` of a revoked-session key.
    pub fn revoked_jti(key: &str) -> Option<&str> {
        key.strip_prefix(REVOKED_SESSION_PREFIX)
    }
    /// A tus upload's state.
    pub fn upload_state(upload_id: &str) -> String {
        format!("sg:upload:{upload_id}")
    }
    /// A tus upload's writer lease.
    pub fn upload_lock(upload_id: &str) -> String {
        format!("sg:upload:{upload_id}:lock")
    }
    /// Unfinished uploads by expiry time: a sorted set of upload ids.
    pub const UPLOADS_EXPIRING: &str = "sg:uploads:expiring";
    /// Webhook events as origin emits them (a stream; consumer group `webhooks` fans them out
    /// to the owner's endpoints).
    pub const WEBHOOK_EVENTS: &str = "sg:wh:events";
    /// Deliveries waiting or being tried: a sorted set of `{endpoint}/{message}` by due time
    /// (Unix ms).
    pub const WEBHOOK_DUE: &str = "sg:wh:due";
    /// Tries made per delivery (`{endpoint}/{message}` → count).
    pub const WEBHOOK_TRIES: &str = "sg:wh:tries";
    /// Deliveries given up after `webhooks.max-attempts` (a stream).
    pub const WEBHOOK_DEAD: &str = "sg:wh:dead";
    /// One webhook endpoint (JSON, with its signing secret).
    pub fn webhook_endpoint(id: &str) -> String {
        format!("sg:wh:ep:{id}")
    }
    /// A creator's endpoints (a set of ids).
    pub fn webhook_owner(owner: &str) -> String {
        format!("sg:wh:owner:{owner}")
    }
    /// One event's payload, kept while deliveries of it may still be tried.
    pub fn webhook_message(msg_id: &str) -> String {
        format!("sg:wh:msg:{msg_id}")
    }
    /// An endpoint's delivery log (a list, newest first, trimmed).
    pub fn webhook_log(id: &str) -> String {
        format!("sg:wh:log:{id}")
    }
    /// Prefix of the creators' content index (origin's `index` module builds the rest).
    pub const CONTENT_INDEX_PREFIX: &str = "sg:idx:";
    /// An owner's index set: `all` or a status name.
    pub fn content_index(owner: &str, set: &str) -> String {
        format!("{CONTENT_INDEX_PREFIX}{owner}:{set}")
    }
    /// Where a content stands in the index.
    pub fn content_position(content_id: &str) -> String {
        format!("{CONTENT_INDEX_PREFIX}pos:{content_id}")
    }
    /// A catalog record's writer lease.
    pub fn content_lock(content_id: &str) -> String {
        format!("sg:lock:content:{content_id}")
    }
    /// The attempts recorded for a job entry of `sg:jobs`.
    pub fn job_error(entry_id: &str) -> String {
        format!("sg:jobs:error:{entry_id}")
    }
    /// The viewer behind a playback token's subject hash (hex).
    pub fn viewer(subject_hash_hex: &str) -> String {
        format!("sg:subj:{subject_hash_hex}")
    }
    /// An entitlement verdict, by the hex digest of (subject, policy hash).
    pub fn verdict(digest_hex: &str) -> String {
        format!("sg:ent:{digest_hex}")
    }
    /// An object in the edges' shared cache tier (L2): content id and the object's key hash.
    pub fn edge_object(content_id: &str, hash_hex: &str) -> String {
        format!("sg:obj:{{{content_id}}}:{hash_hex}")
    }
    /// The set of a content's L2 object keys (what a purge deletes).
    pub fn edge_objects(content_id: &str) -> String {
        format!("sg:objs:{{{content_id}}}")
    }
    /// Whether `key` is an L2 object key (and not something else a set could name).
    pub fn is_edge_object(key: &str) -> bool {
        key.starts_with("sg:obj:")
    }
}

/// The cache key of a packaged object at the edges: content id and path, never the token
/// (every viewer shares one copy). Versioned, so a new layout cannot collide with old entries.
pub fn edge_cache_key(content_id: &str, path: &str) -> String {
    format!("sg1:{content_id}/{path}")
}

/// URL shapes players and edges share.
pub mod paths {
    /// Gated objects: `/p/{token}/{content_id}/{path}`.
    pub const GATED_PREFIX: &str = "/p/";
    /// Cookie-mode objects: `/c/{content_id}/{path}` (token in the `sgp_{id}` cookie).
    pub const COOKIE_PREFIX: &str = "/c/";
    /// Playback grants: `/v1/playback/{content_id}`.
    pub const GRANT_PREFIX: &str = "/v1/playback/";
    /// A gated object's URL path.
    pub fn gated(token: &str, content_id: &str, path: &str) -> String {
        format!("{GATED_PREFIX}{token}/{content_id}/{path}")
    }
    /// A cookie-mode object's URL path.
    pub fn cookie_mode(content_id: &str, path: &str) -> String {
        format!("{COOKIE_PREFIX}{content_id}/{path}")
    }
    /// The cookie carrying the playback token of `content_id` in cookie mode.
    pub fn play_cookie(content_id: &str) -> String {
        format!("sgp_{content_id}")
    }
    /// A packaged object's path on origin's internal listener and on parent edges.
    pub fn media(content_id: &str, path: &str) -> String {
        format!("{}{content_id}/{path}", super::MEDIA_PREFIX)
    }
    /// The license URL an encrypted package's manifests carry: `/v/{id}/license`, which the
    /// edge's manifest rewriter turns into the viewer's `/p/{token}/{id}/license`.
    pub fn origin_license(content_id: &str) -> String {
        media(content_id, super::layout::LICENSE)
    }
    /// The wrapped content key on origin's internal listener: `/v1/contents/{id}/key`.
    pub fn content_key(content_id: &str) -> String {
        format!("/v1/contents/{content_id}/key")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_paths() {
        for ok in ["master.m3u8", "v0/seg-00001.m4s", "720p/init.mp4"] {
            assert!(is_valid_media_path(ok), "{ok}");
        }
        for bad in [
            "", "../x", "a/../b", "/abs", "a//b", "a/./b", "a b", "a%2e", "a\\b", "a/",
        ] {
            assert!(!is_valid_media_path(bad), "{bad}");
        }
    }

    #[test]
    fn refused_formats_are_named() {
        let e = "[hls @ 0x5601465f92c0] Format not on whitelist 'mov,matroska'\npl.m3u8: Invalid argument\n";
        assert_eq!(refused_format(e), Some("hls"));
        assert_eq!(refused_format("x.mp4: Invalid data found"), None);
        assert!(unaccepted_format("concat").contains("concat input is not accepted"));
    }

    #[test]
    fn content_ids() {
        assert!(is_valid_content_id("abc-DEF_123"));
        assert!(!is_valid_content_id(""));
        assert!(!is_valid_content_id("a/b"));
        assert!(!is_valid_content_id(&"a".repeat(65)));
    }

    #[test]
    fn invalidation_json_is_tagged() {
        let m = Invalidation::SessionRevoked {
            jti: "j".into(),
            exp: 5,
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"type":"session_revoked","jti":"j","exp":5}"#
        );
    }

    #[test]
    fn event_json_is_tagged() {
        let e = Event::Failed {
            content_id: "c1".into(),
            error: "no video stream".into(),
        };
        let j = serde_json::to_string(&e).unwrap();
        assert_eq!(
            j,
            r#"{"type":"failed","content_id":"c1","error":"no video stream"}"#
        );
        assert_eq!(serde_json::from_str::<Event>(&j).unwrap(), e);
    }
}
