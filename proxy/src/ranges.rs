//! Byte ranges served from the cache: Pingora's `Range` handling (single and multi-range, 416,
//! `If-Range`), with the empty ranges it would produce turned into what RFC 9110 §14.1.1 says
//! they are: unsatisfiable.
//!
//! Pingora reads a zero-length suffix (`bytes=-0`) as the empty range `len..len`, and any
//! suffix of an empty object as `0..0`, and answers 206 with `Content-Range: bytes
//! {len}-{len-1}/{len}` — a malformed response; it reads a first byte too large to parse
//! (`bytes=99…9-0`) as a suffix; and it takes any Unicode digit for a digit (all three found by
//! the `range` fuzz harness). Such specs are dropped from the set before Pingora sees it (a set
//! left with nothing satisfiable gets Pingora's own 416), and a non-ASCII `Range` is ignored.

use http::{HeaderValue, header};
use pingora::{
    http::{RequestHeader, ResponseHeader},
    proxy::{RangeType, range_header_filter},
};

/// Most parts of a multipart/byteranges answer.
const MAX_PARTS: usize = 200;

/// The range answer for `req` of the response `resp` (headers adjusted as Pingora does).
pub(crate) fn serve(req: &RequestHeader, resp: &mut ResponseHeader) -> RangeType {
    match screened(req, resp) {
        Some(fixed) => range_header_filter(&fixed, resp, Some(MAX_PARTS)),
        None => range_header_filter(req, resp, Some(MAX_PARTS)),
    }
}

/// A copy of `req` whose `Range` lacks the specs that can only be empty (a zero-length suffix;
/// any suffix of an empty object), or `None` when there is nothing to drop. A set left empty
/// becomes one spec past the end, which Pingora answers with 416.
fn screened(req: &RequestHeader, resp: &ResponseHeader) -> Option<RequestHeader> {
    let raw = req.headers.get(header::RANGE)?.as_bytes();
    if !raw.is_ascii() {
        // Pingora's parser takes any Unicode digit for a digit (`\d`), then fails to parse it
        // and reads the spec as a suffix. A Range header is ASCII or it is ignored (RFC 9110
        // lets a server ignore a Range it does not understand): the whole object is sent.
        let mut fixed = req.clone();
        fixed.remove_header(&header::RANGE);
        return Some(fixed);
    }
    let raw = std::str::from_utf8(raw).ok()?;
    let (unit, specs) = raw.trim_start().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let len = resp
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())?;
    // Specs Pingora would misread: a suffix that can only be empty, and a first byte too
    // large for a number (Pingora then reads the spec as a suffix: `bytes=99…9-100` served the
    // last 100 bytes). Anything else malformed is left to Pingora.
    let empty = |spec: &str| {
        let Some((first, last)) = spec.trim().split_once('-') else {
            return false;
        };
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if first.is_empty() {
            digits(last) && (last.bytes().all(|b| b == b'0') || len == 0)
        } else {
            digits(first) && first.parse::<usize>().is_err()
        }
    };
    if !specs.split(',').any(empty) {
        return None;
    }
    let kept: Vec<&str> = specs.split(',').filter(|s| !empty(s)).collect();
    let value = if kept.is_empty() {
        format!("bytes={len}-")
    } else {
        format!("bytes={}", kept.join(","))
    };
    let mut fixed = req.clone();
    fixed
        .insert_header(header::RANGE, HeaderValue::from_str(&value).ok()?)
        .ok()?;
    Some(fixed)
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::*;

    fn answer(range: &str, len: usize) -> (RangeType, ResponseHeader) {
        let mut req = RequestHeader::build("GET", b"/p/t/c1/seg.m4s", None).unwrap();
        req.insert_header(header::RANGE, range).unwrap();
        let mut resp = ResponseHeader::build(StatusCode::OK, None).unwrap();
        resp.insert_header(header::CONTENT_LENGTH, len.to_string())
            .unwrap();
        let r = serve(&req, &mut resp);
        (r, resp)
    }

    #[test]
    fn a_zero_length_suffix_is_unsatisfiable() {
        // The fuzz finding: `bytes=   -00` of a 1 MiB object was a 206 of nothing.
        for spec in ["bytes=-0", "bytes=   -00", "bytes=-000"] {
            let (r, resp) = answer(spec, 1 << 20);
            assert!(matches!(r, RangeType::Invalid), "{spec}: {r:?}");
            assert_eq!(resp.status, StatusCode::RANGE_NOT_SATISFIABLE);
            assert_eq!(resp.headers["content-range"], "bytes */1048576");
        }
        // …and is dropped from a set that has something else.
        let (r, resp) = answer("bytes=-0, 0-9", 100);
        assert!(
            matches!(r, RangeType::Single(ref x) if *x == (0..10)),
            "{r:?}"
        );
        assert_eq!(resp.headers["content-range"], "bytes 0-9/100");
    }

    #[test]
    fn a_first_byte_past_any_number_is_unsatisfiable() {
        // The second fuzz finding: an overflowing first byte was read as a suffix.
        let (r, _) = answer("bytes=00000006666666666666666666660-000", 1 << 20);
        assert!(matches!(r, RangeType::Invalid), "{r:?}");
        let (r, _) = answer("bytes=99999999999999999999999-100", 1000);
        assert!(matches!(r, RangeType::Invalid), "{r:?}");
        let (r, _) = answer("bytes=99999999999999999999999-100, 0-1", 1000);
        assert!(
            matches!(r, RangeType::Single(ref x) if *x == (0..2)),
            "{r:?}"
        );
    }

    #[test]
    fn non_ascii_ranges_are_ignored() {
        // The third fuzz finding: `۴` (an Arabic-Indic four) matched Pingora's `\d`.
        let mut req = RequestHeader::build("GET", b"/p/t/c1/seg.m4s", None).unwrap();
        req.insert_header(
            header::RANGE,
            HeaderValue::from_bytes(b"bytes=871058\xdb\xb45-00").unwrap(),
        )
        .unwrap();
        let mut resp = ResponseHeader::build(StatusCode::OK, None).unwrap();
        resp.insert_header(header::CONTENT_LENGTH, "1048576")
            .unwrap();
        assert!(matches!(serve(&req, &mut resp), RangeType::None));
        assert_eq!(resp.status, StatusCode::OK);
    }

    #[test]
    fn any_suffix_of_an_empty_object_is_unsatisfiable() {
        let (r, resp) = answer("bytes=-5", 0);
        assert!(matches!(r, RangeType::Invalid), "{r:?}");
        assert_eq!(resp.status, StatusCode::RANGE_NOT_SATISFIABLE);
    }

    #[test]
    fn ordinary_ranges_are_pingoras() {
        let (r, _) = answer("bytes=-10", 100);
        assert!(
            matches!(r, RangeType::Single(ref x) if *x == (90..100)),
            "{r:?}"
        );
        let (r, _) = answer("bytes=0-0,5-9", 100);
        assert!(matches!(r, RangeType::Multi(_)), "{r:?}");
        let (r, _) = answer("bytes=200-", 100);
        assert!(matches!(r, RangeType::Invalid), "{r:?}");
        let (r, _) = answer("items=-0", 100);
        assert!(matches!(r, RangeType::None), "{r:?}");
    }
}
