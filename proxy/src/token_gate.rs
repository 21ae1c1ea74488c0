//! The token gate: parsing `/p/{token}/{content_id}/{path}` and checking the playback token.
//!
//! Both run on every player request, so they allocate nothing: parsing borrows from the request
//! path and errors are small `Copy` enums ([`PathError`], `TokenError`) whose codes are the
//! `reason` of the JSON body and the label of the metric.

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use streamgate_auth::{KeySet, TokenError, Verified};
use streamgate_config::contract::{is_valid_content_id, is_valid_media_path};

pub(crate) use streamgate_config::contract::paths::GATED_PREFIX;

/// Longest request path accepted on the gated route: a maximal token (128), content id (64) and
/// media path (256) plus separators fit with room to spare.
pub(crate) const MAX_GATED_PATH: usize = 512;

/// Why a gated path was refused before the token was looked at (answered with 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PathError {
    /// The whole path is longer than [`MAX_GATED_PATH`].
    TooLong,
    /// The path carries a percent-encoding; no valid object path needs one.
    Encoded,
    /// The content id is empty or not `A-Z a-z 0-9 _ -` (1-64).
    BadContentId,
    /// Nothing after the content id.
    MissingPath,
    /// A `//` or a trailing `/`.
    EmptySegment,
    /// A `.` or `..` segment.
    DotSegment,
    /// Any other violation of the media path rules (characters, depth, length).
    BadPath,
}

impl PathError {
    /// Every variant, for pre-registering metric labels.
    pub(crate) const ALL: [PathError; 7] = [
        PathError::TooLong,
        PathError::Encoded,
        PathError::BadContentId,
        PathError::MissingPath,
        PathError::EmptySegment,
        PathError::DotSegment,
        PathError::BadPath,
    ];

    /// Stable snake_case code for JSON bodies and metric labels.
    pub(crate) fn code(self) -> &'static str {
        match self {
            PathError::TooLong => "path_too_long",
            PathError::Encoded => "encoded_path",
            PathError::BadContentId => "bad_content_id",
            PathError::MissingPath => "missing_path",
            PathError::EmptySegment => "empty_segment",
            PathError::DotSegment => "dot_segment",
            PathError::BadPath => "bad_path",
        }
    }

    /// Human-readable message for the JSON body.
    pub(crate) fn message(self) -> &'static str {
        match self {
            PathError::TooLong => "request path is too long",
            PathError::Encoded => "percent-encoded characters are not allowed in object paths",
            PathError::BadContentId => "content id must be 1-64 of A-Z a-z 0-9 _ -",
            PathError::MissingPath => "no object path after the content id",
            PathError::EmptySegment => "empty path segment",
            PathError::DotSegment => "'.' and '..' segments are not allowed",
            PathError::BadPath => {
                "object path must be at most 8 segments of A-Z a-z 0-9 . _ - (256 bytes)"
            }
        }
    }
}

/// A parsed gated request path, borrowing from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GatedPath<'a> {
    /// The playback token as written (possibly empty: verification refuses it).
    pub(crate) token: &'a str,
    /// The content id.
    pub(crate) content_id: &'a str,
    /// The object path inside the package, validated by the contract's rules.
    pub(crate) path: &'a str,
}

impl<'a> GatedPath<'a> {
    /// Parses `/p/{token}/{content_id}/{path}`.
    ///
    /// # Returns
    /// `None` when `raw` is not under [`GATED_PREFIX`] at all (another route), else the parsed
    /// path or the first rule it breaks.
    pub(crate) fn parse(raw: &'a str) -> Option<Result<Self, PathError>> {
        let rest = raw.strip_prefix(GATED_PREFIX)?;
        Some(Self::parse_rest(raw.len(), rest))
    }

    /// Parses a cookie-mode `/c/{content_id}/{path}` by the same rules; `token` is empty (it
    /// rides in the `sgp_{id}` cookie).
    pub(crate) fn parse_cookie(raw: &'a str) -> Option<Result<Self, PathError>> {
        let rest = raw.strip_prefix(streamgate_config::contract::paths::COOKIE_PREFIX)?;
        Some(Self::parse_object(raw.len(), "", rest))
    }

    /// Parses a child edge's `/v/{content_id}/{path}` (no token: the request carries an edge
    /// key instead) by the same rules; `token` is empty.
    pub(crate) fn parse_media(raw: &'a str) -> Option<Result<Self, PathError>> {
        let rest = raw.strip_prefix(streamgate_config::contract::MEDIA_PREFIX)?;
        Some(Self::parse_object(raw.len(), "", rest))
    }

    fn parse_rest(total_len: usize, rest: &'a str) -> Result<Self, PathError> {
        if total_len > MAX_GATED_PATH {
            return Err(PathError::TooLong);
        }
        let (token, rest) = rest.split_once('/').ok_or(PathError::BadContentId)?;
        Self::parse_object(total_len, token, rest)
    }

    /// `{content_id}/{path}` after the token.
    fn parse_object(total_len: usize, token: &'a str, rest: &'a str) -> Result<Self, PathError> {
        if total_len > MAX_GATED_PATH {
            return Err(PathError::TooLong);
        }
        if rest.as_bytes().contains(&b'%') || token.as_bytes().contains(&b'%') {
            return Err(PathError::Encoded);
        }
        let (content_id, path) = match rest.split_once('/') {
            Some(parts) => parts,
            None if is_valid_content_id(rest) => return Err(PathError::MissingPath),
            None => return Err(PathError::BadContentId),
        };
        if !is_valid_content_id(content_id) {
            return Err(PathError::BadContentId);
        }
        if path.is_empty() {
            return Err(PathError::MissingPath);
        }
        for seg in path.split('/') {
            match seg {
                "" => return Err(PathError::EmptySegment),
                "." | ".." => return Err(PathError::DotSegment),
                _ => {}
            }
        }
        // The contract is the authority on what origin will accept; the loop above only gives
        // the common failures a precise reason.
        if !is_valid_media_path(path) {
            return Err(PathError::BadPath);
        }
        Ok(Self {
            token,
            content_id,
            path,
        })
    }

    /// What kind of object this is, for metrics (and, later, manifest handling).
    pub(crate) fn kind(&self) -> ObjectKind {
        ObjectKind::from_path(self.path)
    }
}

/// Kind of a packaged object, by file extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ObjectKind {
    /// HLS playlist or DASH MPD.
    Manifest,
    /// Media segment or init segment.
    Segment,
    /// Anything else (including non-object routes).
    Other,
}

impl ObjectKind {
    /// Classifies by the extension of the last segment.
    pub(crate) fn from_path(path: &str) -> Self {
        let name = path.rsplit('/').next().unwrap_or(path);
        let Some((_, ext)) = name.rsplit_once('.') else {
            return ObjectKind::Other;
        };
        let ext = ext.as_bytes();
        let is = |e: &str| ext.eq_ignore_ascii_case(e.as_bytes());
        if is("m3u8") || is("mpd") {
            ObjectKind::Manifest
        } else if [
            "m4s", "ts", "mp4", "m4a", "m4v", "aac", "cmfv", "cmfa", "vtt", "webm",
        ]
        .iter()
        .any(|e| is(e))
        {
            ObjectKind::Segment
        } else {
            ObjectKind::Other
        }
    }

    /// Metric label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ObjectKind::Manifest => "manifest",
            ObjectKind::Segment => "segment",
            ObjectKind::Other => "other",
        }
    }
}

/// Checks `token` for `content_id` from `client_ip` now.
///
/// IPv4-mapped IPv6 client addresses (a dual-stack listener) are compared as IPv4, the form
/// tokens are minted with.
///
/// # Errors
/// The first failed check, as a [`TokenError`].
pub(crate) fn check_token(
    keys: &KeySet,
    token: &str,
    content_id: &str,
    client_ip: Option<IpAddr>,
) -> Result<Verified, TokenError> {
    keys.verify(
        token,
        content_id,
        client_ip.map(|ip| ip.to_canonical()),
        crate::clock::unix_secs(),
    )
}

/// A short, non-reversible fingerprint of a token for logs: the first 8 hex digits of its
/// SHA-256. Raw tokens are never logged.
pub(crate) fn token_fingerprint(token: &str) -> String {
    let d = Sha256::digest(token.as_bytes());
    format!("{:02x}{:02x}{:02x}{:02x}", d[0], d[1], d[2], d[3])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(p: &str) -> Result<GatedPath<'_>, PathError> {
        GatedPath::parse(p).expect("gated route")
    }

    #[test]
    fn good_paths() {
        let g = parse("/p/tok/abc-1/master.m3u8").unwrap();
        assert_eq!(
            (g.token, g.content_id, g.path),
            ("tok", "abc-1", "master.m3u8")
        );
        let g = parse("/p/tok/c_1/720p/seg-00001.m4s").unwrap();
        assert_eq!(g.path, "720p/seg-00001.m4s");
        // an empty token parses; verification refuses it with a 403
        assert_eq!(parse("/p//c1/x.ts").unwrap().token, "");
    }

    #[test]
    fn child_edge_media_paths_follow_the_same_rules() {
        let g = GatedPath::parse_media("/v/c1/720p/seg-1.m4s")
            .unwrap()
            .unwrap();
        assert_eq!(
            (g.token, g.content_id, g.path),
            ("", "c1", "720p/seg-1.m4s")
        );
        assert!(GatedPath::parse_media("/p/t/c1/x").is_none());
        for (p, e) in [
            ("/v/c1/../x", PathError::DotSegment),
            ("/v/c1/%2e%2e/x", PathError::Encoded),
            ("/v/c1", PathError::MissingPath),
            ("/v/c.1/x", PathError::BadContentId),
            ("/v/c1/a//b", PathError::EmptySegment),
        ] {
            assert_eq!(GatedPath::parse_media(p), Some(Err(e)), "{p}");
        }
    }

    #[test]
    fn other_routes_are_not_gated() {
        assert!(GatedPath::parse("/healthz").is_none());
        assert!(GatedPath::parse("/p").is_none());
        assert!(GatedPath::parse("/pp/x/y/z").is_none());
    }

    #[test]
    fn dot_segments() {
        assert_eq!(parse("/p/t/c1/../secret"), Err(PathError::DotSegment));
        assert_eq!(parse("/p/t/c1/a/../../b"), Err(PathError::DotSegment));
        assert_eq!(parse("/p/t/c1/./a"), Err(PathError::DotSegment));
        assert_eq!(parse("/p/t/../x"), Err(PathError::BadContentId));
    }

    #[test]
    fn encoded_dots_and_slashes() {
        for p in [
            "/p/t/c1/%2e%2e/x",
            "/p/t/c1/%2E%2E/x",
            "/p/t/c1/a%2fb",
            "/p/t/c1/.%2e/x",
            "/p/t/c%31/x",
            "/p/%74/c1/x",
        ] {
            assert_eq!(parse(p), Err(PathError::Encoded), "{p}");
        }
    }

    #[test]
    fn empty_segments_and_missing_path() {
        assert_eq!(parse("/p/t/c1/a//b"), Err(PathError::EmptySegment));
        assert_eq!(parse("/p/t/c1/a/"), Err(PathError::EmptySegment));
        assert_eq!(parse("/p/t/c1/"), Err(PathError::MissingPath));
        assert_eq!(parse("/p/t/c1"), Err(PathError::MissingPath));
        assert_eq!(parse("/p/t//x"), Err(PathError::BadContentId));
        assert_eq!(parse("/p/t"), Err(PathError::BadContentId));
        assert_eq!(parse("/p/"), Err(PathError::BadContentId));
    }

    #[test]
    fn bad_ids_and_characters() {
        assert_eq!(parse("/p/t/c.1/x"), Err(PathError::BadContentId));
        assert_eq!(parse("/p/t/c~1/x"), Err(PathError::BadContentId));
        let long_id = format!("/p/t/{}/x", "a".repeat(65));
        assert_eq!(parse(&long_id), Err(PathError::BadContentId));
        assert_eq!(parse("/p/t/c1/a b"), Err(PathError::BadPath));
        assert_eq!(parse("/p/t/c1/a\\b"), Err(PathError::BadPath));
        assert_eq!(parse("/p/t/c1/1/2/3/4/5/6/7/8/9"), Err(PathError::BadPath));
    }

    #[test]
    fn overlong() {
        let p = format!("/p/t/c1/{}", "a".repeat(MAX_GATED_PATH));
        assert_eq!(parse(&p), Err(PathError::TooLong));
        // a long but legal media path segment still fits under the cap
        let p = format!("/p/{}/c1/{}", "t".repeat(128), "a".repeat(250));
        assert!(parse(&p).is_ok());
        let p = format!("/p/t/c1/{}", "a".repeat(257));
        assert_eq!(parse(&p), Err(PathError::BadPath));
    }

    #[test]
    fn kinds() {
        assert_eq!(ObjectKind::from_path("master.m3u8"), ObjectKind::Manifest);
        assert_eq!(ObjectKind::from_path("manifest.MPD"), ObjectKind::Manifest);
        assert_eq!(ObjectKind::from_path("720p/seg-1.m4s"), ObjectKind::Segment);
        assert_eq!(ObjectKind::from_path("720p/init.mp4"), ObjectKind::Segment);
        assert_eq!(ObjectKind::from_path("v0/s.ts"), ObjectKind::Segment);
        assert_eq!(ObjectKind::from_path("thumbs.json"), ObjectKind::Other);
        assert_eq!(ObjectKind::from_path("m3u8"), ObjectKind::Other);
        assert_eq!(ObjectKind::from_path("a.m3u8/x"), ObjectKind::Other);
    }

    #[test]
    fn error_codes_are_distinct() {
        let mut codes: Vec<_> = PathError::ALL.iter().map(|e| e.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), PathError::ALL.len());
    }

    #[test]
    fn fingerprint_is_short_and_stable() {
        let f = token_fingerprint("abc");
        assert_eq!(f, "ba7816bf");
        assert_ne!(token_fingerprint("abd"), f);
    }

    #[test]
    fn mapped_v4_client_matches_v4_binding() {
        use streamgate_auth::{Grant, IpBinding};
        let keys = KeySet::new(vec![("k1".into(), vec![9u8; 32])], "k1").unwrap();
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        let token = keys.mint(&Grant {
            content_id: "c1",
            subject: "s",
            expires_at: crate::clock::unix_secs() + 60,
            client_ip: Some(IpBinding::new(ip, 24)),
            entitlement_bound: false,
        });
        let mapped: IpAddr = "::ffff:203.0.113.99".parse().unwrap();
        assert!(check_token(&keys, &token, "c1", Some(mapped)).is_ok());
        let other: IpAddr = "198.51.100.1".parse().unwrap();
        assert_eq!(
            check_token(&keys, &token, "c1", Some(other)),
            Err(TokenError::IpMismatch)
        );
    }
}
