//! Origin's parsers of untrusted request headers, as the fuzz harnesses in `fuzz/` drive them
//! (`bench/fuzz.sh`): tus headers and the media route's `Range`. Each asserts what must hold of
//! the answer; a violated invariant panics, which the fuzzer reports as a crash. Not an API.

use axum::http::{HeaderMap, HeaderValue, header};

/// `Upload-Metadata` and the decimal tus headers.
pub fn tus_headers(metadata: &str, number: &[u8]) {
    if let Ok(m) = crate::tus::parse_metadata(metadata) {
        for k in m.keys() {
            assert!(
                !k.is_empty() && !k.contains(',') && !k.contains(' '),
                "{k:?}"
            );
        }
    }
    let mut h = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(number) {
        h.insert("upload-offset", v);
        if let Ok(Some(n)) = crate::tus::u64_header(&h, "upload-offset") {
            let text = std::str::from_utf8(number).unwrap_or_default();
            assert_eq!(text.parse::<u64>().ok(), Some(n), "{text:?}");
        }
    }
}

/// The media route's `Range`: what is forwarded to S3 is a single well-formed `bytes=` range.
pub fn range(value: &[u8]) {
    let mut h = HeaderMap::new();
    let Ok(v) = HeaderValue::from_bytes(value) else {
        return;
    };
    h.insert(header::RANGE, v);
    if let Ok(Some(r)) = crate::media::single_range(&h) {
        let spec = r.strip_prefix("bytes=").expect("a bytes range");
        let (a, b) = spec.split_once('-').expect("a dash");
        assert!(!spec.contains(','), "{r:?}");
        assert!(
            a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()),
            "{r:?}"
        );
        assert!(!(a.is_empty() && b.is_empty()), "{r:?}");
        if let (Ok(x), Ok(y)) = (a.parse::<u64>(), b.parse::<u64>()) {
            assert!(x <= y, "{r:?}");
        }
    }
}
