//! The edge's parsers of untrusted request bytes, as the fuzz harnesses in `fuzz/` drive them
//! (`bench/fuzz.sh`). Each function runs one parser the way a request does and asserts what
//! must hold of its answer: a violated invariant panics, which the fuzzer reports as a crash.
//! Not an API: hidden from the docs, kept small.

use http::{HeaderValue, StatusCode};
use pingora::http::{RequestHeader, ResponseHeader};
use streamgate_config::contract::{is_valid_content_id, is_valid_media_path};

use crate::token_gate::{GatedPath, MAX_GATED_PATH};

/// `/p/{token}/{id}/{path}` and a child edge's `/v/{id}/{path}`: an accepted path names a
/// valid content id and media path (so the upstream path and cache key are safe).
pub fn gated_path(path: &str) {
    for g in [GatedPath::parse(path), GatedPath::parse_media(path)]
        .into_iter()
        .flatten()
        .flatten()
    {
        assert!(path.len() <= MAX_GATED_PATH, "{path:?}");
        assert!(is_valid_content_id(g.content_id), "{path:?}");
        assert!(is_valid_media_path(g.path), "{path:?}");
        assert!(
            !g.path.split('/').any(|s| s == ".." || s == "."),
            "{path:?}"
        );
        assert!(!g.token.contains('/') && !g.token.contains('%'), "{path:?}");
    }
}

/// The session and playback cookies and the `Authorization` header: whatever is found is a
/// piece of what the client sent, never more.
pub fn cookies(cookie: &[u8], authorization: &[u8]) {
    let Ok(mut req) = RequestHeader::build("GET", b"/v1/playback/c1", None) else {
        return;
    };
    if let Ok(v) = HeaderValue::from_bytes(cookie) {
        let _ = req.append_header(http::header::COOKIE, v);
    }
    if let Ok(v) = HeaderValue::from_bytes(authorization) {
        let _ = req.append_header(http::header::AUTHORIZATION, v);
    }
    let within = |found: &str, sent: &[u8]| {
        sent.windows(found.len().max(1))
            .any(|w| found.is_empty() || w == found.as_bytes())
    };
    if let Some(t) = crate::grant::session_token(&req, "sg_session") {
        assert!(within(t, cookie) || within(t, authorization), "{t:?}");
    }
    if let Some(t) = crate::grant::play_cookie_value(&req, "c1") {
        assert!(within(t, cookie), "{t:?}");
        assert!(!t.contains(';'), "{t:?}");
    }
}

/// A `Range` header against an object of `len` bytes, as the edge answers from its cache:
/// every range served is non-empty and lies inside the object.
pub fn range(header: &[u8], len: u32) {
    let (Ok(mut req), Ok(mut resp)) = (
        RequestHeader::build("GET", b"/p/t/c1/seg.m4s", None),
        ResponseHeader::build(StatusCode::OK, None),
    ) else {
        return;
    };
    let Ok(v) = HeaderValue::from_bytes(header) else {
        return;
    };
    let _ = req.insert_header(http::header::RANGE, v);
    let _ = resp.insert_header(http::header::CONTENT_LENGTH, len.to_string());
    let len = len as usize;
    match crate::ranges::serve(&req, &mut resp) {
        pingora::proxy::RangeType::Single(r) => {
            assert!(r.start < r.end && r.end <= len, "{r:?} of {len}");
        }
        pingora::proxy::RangeType::Multi(m) => {
            assert!(!m.ranges.is_empty() && m.ranges.len() <= 200);
            for r in &m.ranges {
                assert!(r.start < r.end && r.end <= len, "{r:?} of {len}");
            }
        }
        pingora::proxy::RangeType::None | pingora::proxy::RangeType::Invalid => {}
    }
}

/// A PROXY protocol v1/v2 header (what a load balancer, or an attacker reaching a PROXY
/// listener, sends first): a parsed header never claims more bytes than it was given, and any
/// prefix of a valid header is `Incomplete`, never an error or a different header.
pub fn proxy_header(data: &[u8]) {
    use crate::proxy_protocol::{Parse, parse};
    if let Ok(Parse::Done(header, used)) = parse(data) {
        assert!(used > 0 && used <= data.len(), "{data:?}");
        assert_eq!(
            parse(&data[..used]),
            Ok(Parse::Done(header, used)),
            "{data:?}"
        );
        for cut in 0..used {
            assert!(
                matches!(parse(&data[..cut]), Ok(Parse::Incomplete)),
                "prefix {cut} of {data:?}"
            );
        }
    }
}
