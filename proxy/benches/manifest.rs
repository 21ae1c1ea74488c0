//! Manifest rewriting: the per-response cost of keeping absolute manifest URIs tokenized.
//!
//! Run: `cargo bench -p streamgate-proxy --bench manifest`
//!
//! Each playlist is rewritten in one push (a small body arrives in one chunk), with a new
//! rewriter per iteration as the edge builds one per response, into a reused output buffer.
//! `relative/*` is the common case (nothing to rewrite), `absolute/*` has every URI rewritten.
//! `*/memcpy` copies the same bytes into the same kind of buffer: quote `rewrite` as a ratio
//! to it.

#![allow(missing_docs)]

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use streamgate_proxy::{ManifestKind, ManifestRewriter};

const CID: &str = "c0ffee42-4f1c-9a2e";
/// A playback token of the usual length (about 60 base64url characters).
const PREFIX: &str =
    "/p/AQJrMQAAAABn8x2QxVq2aW7D0cLhwN3uAAAAAPq0Yb3c9hC1_mX2qK8-Lw/c0ffee42-4f1c-9a2e/";
const ORIGIN: &str = "https://origin.internal:8443/v/c0ffee42-4f1c-9a2e/";

/// A master playlist of about 1 KB: audio renditions, variants and I-frame playlists, with
/// every URI under `base` ("" for relative URIs).
fn master(base: &str) -> String {
    let mut s = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (lang, name) in [("en", "English"), ("fr", "Français")] {
        s += &format!(
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",LANGUAGE=\"{lang}\",NAME=\"{name}\",\
             AUTOSELECT=YES,URI=\"{base}audio/{lang}/index.m3u8\"\n"
        );
    }
    for (bw, res, level) in [
        (6_000_000, "1920x1080", "640028"),
        (3_000_000, "1280x720", "64001f"),
        (1_500_000, "854x480", "64001e"),
    ] {
        let height = res.split('x').nth(1).unwrap();
        s += &format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={bw},RESOLUTION={res},CODECS=\"avc1.{level},mp4a.40.2\",\
             AUDIO=\"aac\"\n{base}video/{height}p/index.m3u8\n"
        );
        if s.len() < 900 {
            s += &format!(
                "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={},RESOLUTION={res},\
                 URI=\"{base}video/{height}p/iframes.m3u8\"\n",
                bw / 10
            );
        }
    }
    s
}

/// A VOD media playlist of about 5 KB: an init segment and 4-second segments under `base`.
fn media(base: &str) -> String {
    let mut s = format!(
        "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-PLAYLIST-TYPE:VOD\n\
         #EXT-X-MAP:URI=\"{base}video/720p/init.mp4\"\n"
    );
    let mut n = 0;
    while s.len() < 5000 {
        s += &format!("#EXTINF:4.000,\n{base}video/720p/seg_{n:05}.m4s\n");
        n += 1;
    }
    s + "#EXT-X-ENDLIST\n"
}

fn bench(c: &mut Criterion) {
    for (name, relative, absolute) in [
        ("manifest/master_1k", master(""), master(ORIGIN)),
        ("manifest/media_5k", media(""), media(ORIGIN)),
    ] {
        let mut group = c.benchmark_group(name);
        for (case, body) in [("relative", relative), ("absolute", absolute)] {
            let body = body.into_bytes();
            let mut out = BytesMut::with_capacity(body.len() * 2);
            group.throughput(Throughput::Bytes(body.len() as u64));
            group.bench_function(format!("{case}/rewrite"), |b| {
                b.iter(|| {
                    out.clear();
                    let mut rewriter = ManifestRewriter::new(ManifestKind::Hls, CID, PREFIX);
                    rewriter.push(black_box(&body), &mut out);
                    rewriter.finish(&mut out);
                    black_box(out.len())
                })
            });
            group.bench_function(format!("{case}/memcpy"), |b| {
                b.iter(|| {
                    out.clear();
                    out.extend_from_slice(black_box(&body));
                    black_box(out.len())
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
