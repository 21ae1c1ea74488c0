//! The edge's streaming manifest rewriter (HLS and DASH) on arbitrary bodies split at arbitrary
//! points: the output never depends on where the chunks were cut.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use streamgate_proxy::{ManifestKind, ManifestRewriter, rewrite_all};

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let kind = if data[0] & 1 == 0 {
        ManifestKind::Hls
    } else {
        ManifestKind::Dash
    };
    let (cuts, body) = data[1..].split_at(usize::from(data[1] % 8).min(data.len() - 1));
    let (id, prefix) = ("c1", "/p/TOKEN/c1/");
    let whole = rewrite_all(kind, id, prefix, body);
    let mut rw = ManifestRewriter::new(kind, id, prefix);
    let mut out = BytesMut::new();
    let mut rest = body;
    for c in cuts {
        let at = usize::from(*c).min(rest.len());
        let (chunk, tail) = rest.split_at(at);
        rw.push(chunk, &mut out);
        rest = tail;
    }
    rw.push(rest, &mut out);
    rw.finish(&mut out);
    assert_eq!(&out[..], &whole[..], "chunking changed the rewrite");
});
