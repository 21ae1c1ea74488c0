//! The v1 wire contract between services: storage layout in the bucket, Redis stream and
//! channel names, and the job and event messages carried on them.
//!
//! Origin writes jobs and reads events; transcoders read jobs and write events; edges read the
//! storage layout only through origin. Keep this stable: extend, never rename (DESIGN.md,
//! Interfaces).

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
/// probe and in the transcoder): video containers only. Playlists and lists (`hls`, `dash`,
/// `concat`), image sequences and text formats are refused: they make FFmpeg open further
/// files or URLs the uploader chose (internal services, cloud metadata, local files).
pub const FFMPEG_FORMATS: &str = "mov,matroska,avi,flv,mpegts,mpeg,asf,ogg,mxf";

/// The reason an upload in another format fails with (`{demuxer}` is what FFmpeg detected).
pub fn unaccepted_format(demuxer: &str) -> String {
    format!(
        "not a video file: {demuxer} input is not accepted (playlists, lists, images and text \
         are refused; upload a video container: MP4/MOV, Matroska/WebM, AVI, FLV, MPEG-TS/PS, \
         ASF/WMV, Ogg or MXF)"
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
    /// The catalog record.
    pub fn catalog_key(id: &str) -> String {
        format!("catalog/{id}.json")
    }
    /// HLS master playlist, relative to the package root.
    pub const HLS_MASTER: &str = "master.m3u8";
    /// DASH manifest, relative to the package root.
    pub const DASH_MANIFEST: &str = "manifest.mpd";
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

/// A transcode job on [`JOBS_STREAM`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    /// The content to package.
    pub content_id: String,
    /// Object key of the source file.
    pub source_key: String,
    /// When origin enqueued it (Unix milliseconds).
    pub enqueued_at_ms: u64,
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
    /// An operator purged cached objects at one edge (admin API): every edge drops them from
    /// its L1 (the purging edge already deleted the L2 keys).
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

/// Redis key marking a revoked session `jti` (set until the token's expiry).
pub fn revoked_session_key(jti: &str) -> String {
    format!("sg:revoked:{jti}")
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
