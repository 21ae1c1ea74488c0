//! HLS I-frame playlists (`#EXT-X-I-FRAMES-ONLY`) for trick play and scrubbing, built from the
//! CMAF segments FFmpeg wrote — no second encode. Each segment is one fragment starting with a
//! key frame (the encoder forces one per segment), so its I-frame is the byte range from the
//! `moof` through the first sample of its `mdat`: found by reading the `trun` (first sample
//! size, data offset from the `moof`, ISO/IEC 14496-12 §8.8.8) and `tfhd` defaults.
//!
//! ```text
//!  seg-00001.m4s: [styp][moof[mfhd][traf[tfhd][tfdt][trun]]][mdat[key frame][…]]
//!                        └────────── #EXT-X-BYTERANGE:len@offset ──────────┘
//! ```

use std::path::Path;

use crate::{
    Error,
    bmff::{be32, boxes},
};

/// File name of a rung's I-frame playlist (beside its `index.m3u8`).
pub(crate) const IFRAME_PLAYLIST: &str = "iframes.m3u8";

/// The byte range `(offset, length)` of the first fragment's key frame in a CMAF segment: from
/// its `moof` to the end of the first sample. `None` when the segment is not a fragment this
/// understands.
pub(crate) fn key_frame_range(seg: &[u8]) -> Option<(u64, u64)> {
    let (_, moof_at, moof_header, moof_size) =
        boxes(seg, 0, seg.len()).find(|b| &b.0 == b"moof")?;
    let (_, traf_at, traf_header, traf_size) =
        boxes(seg, moof_at + moof_header, moof_at + moof_size).find(|b| &b.0 == b"traf")?;
    let inner = || boxes(seg, traf_at + traf_header, traf_at + traf_size);
    // tfhd: version/flags, track id, then optional fields in flag order.
    let (_, tfhd_at, tfhd_header, _) = inner().find(|b| &b.0 == b"tfhd")?;
    let tf_flags = be32(seg, tfhd_at + tfhd_header)? & 0x00ff_ffff;
    let mut p = tfhd_at + tfhd_header + 8;
    if tf_flags & 0x01 != 0 {
        return None; // base-data-offset: then data offsets are not from the moof
    }
    for bit in [0x02, 0x08] {
        if tf_flags & bit != 0 {
            p += 4;
        }
    }
    let default_size = (tf_flags & 0x10 != 0).then(|| be32(seg, p)).flatten();
    // trun: flags, sample count, [data offset], [first sample flags], then per sample.
    let (_, trun_at, trun_header, _) = inner().find(|b| &b.0 == b"trun")?;
    let flags = be32(seg, trun_at + trun_header)? & 0x00ff_ffff;
    let mut p = trun_at + trun_header + 8;
    let data_offset = if flags & 0x01 != 0 {
        let d = be32(seg, p)? as i32;
        p += 4;
        u64::try_from(d).ok()?
    } else {
        return None;
    };
    if flags & 0x04 != 0 {
        p += 4;
    }
    if flags & 0x100 != 0 {
        p += 4; // first sample's duration
    }
    let first_size = if flags & 0x200 != 0 {
        be32(seg, p)?
    } else {
        default_size?
    };
    let end = data_offset + u64::from(first_size);
    if moof_at as u64 + end > seg.len() as u64 || end <= moof_size as u64 {
        return None;
    }
    Some((moof_at as u64, end))
}

/// The I-frame playlist of a rung from its media playlist (`index.m3u8`, whose `EXTINF`s and
/// segment names it follows) and each segment's key-frame range, plus the peak I-frame
/// bandwidth (bits/s) the master announces.
pub(crate) fn playlist(media: &str, ranges: &[(u64, u64)]) -> Result<(String, u64), Error> {
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n");
    let mut body = String::new();
    let mut peak = 0u64;
    let mut target = 1u64;
    let mut duration = None;
    let mut i = 0usize;
    for line in media.lines().map(str::trim) {
        if let Some(d) = line.strip_prefix("#EXTINF:") {
            duration = d.split(',').next().and_then(|d| d.parse::<f64>().ok());
        } else if let Some(map) = line.strip_prefix("#EXT-X-MAP:") {
            body.push_str(&format!("#EXT-X-MAP:{map}\n"));
        } else if !line.is_empty() && !line.starts_with('#') {
            let d = duration
                .take()
                .ok_or_else(|| Error::Package(format!("{line}: no EXTINF before it")))?;
            let (offset, len) = *ranges
                .get(i)
                .ok_or_else(|| Error::Package(format!("{line}: no key frame range")))?;
            i += 1;
            target = target.max(d.ceil() as u64);
            peak = peak.max((len as f64 * 8.0 / d.max(0.001)).ceil() as u64);
            body.push_str(&format!(
                "#EXTINF:{d:.3},\n#EXT-X-BYTERANGE:{len}@{offset}\n{line}\n"
            ));
        }
    }
    if i != ranges.len() || i == 0 {
        return Err(Error::Package(format!(
            "{} segments in the playlist, {} key frame ranges",
            i,
            ranges.len()
        )));
    }
    out.push_str(&format!(
        "#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-I-FRAMES-ONLY\n"
    ));
    out.push_str(&body);
    out.push_str("#EXT-X-ENDLIST\n");
    Ok((out, peak))
}

/// Writes `{rung}/iframes.m3u8` for one rung folder; returns its peak bandwidth.
pub(crate) async fn write_for(dir: &Path, media_playlist: &str) -> Result<u64, Error> {
    let read = |p: std::path::PathBuf| async move {
        tokio::fs::read(&p).await.map_err(Error::io("reading", p))
    };
    let media = String::from_utf8_lossy(&read(dir.join(media_playlist)).await?).into_owned();
    let mut ranges = Vec::new();
    for seg in media
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let bytes = read(dir.join(seg)).await?;
        ranges.push(
            key_frame_range(&bytes)
                .ok_or_else(|| Error::Package(format!("{seg}: no key frame found")))?,
        );
    }
    let (text, peak) = playlist(&media, &ranges)?;
    let path = dir.join(IFRAME_PLAYLIST);
    tokio::fs::write(&path, text)
        .await
        .map_err(Error::io("writing", path))?;
    Ok(peak)
}

/// One rung's I-frame stream, as the master announces it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IframeStream {
    /// The rung's media playlist in the master (`360p/index.m3u8`): its `CODECS` are reused.
    pub(crate) media_uri: String,
    /// The I-frame playlist (`360p/iframes.m3u8`).
    pub(crate) uri: String,
    pub(crate) bandwidth: u64,
    pub(crate) width: u32,
    pub(crate) height: u32,
}

/// The video codec of the variant whose media playlist is `media_uri` (the `CODECS` entry
/// that is not audio).
fn video_codec(master: &str, media_uri: &str) -> Option<String> {
    let lines: Vec<&str> = master.lines().map(str::trim).collect();
    lines.windows(2).find_map(|w| {
        let attrs = w[0].strip_prefix("#EXT-X-STREAM-INF:")?;
        if w[1] != media_uri {
            return None;
        }
        let codecs = attrs.split("CODECS=\"").nth(1)?.split('"').next()?;
        codecs
            .split(',')
            .map(str::trim)
            .find(|c| !c.starts_with("mp4a") && !c.starts_with("ac-3") && !c.starts_with("opus"))
            .map(str::to_owned)
    })
}

/// The master playlist with an `#EXT-X-I-FRAME-STREAM-INF` per rung appended.
pub(crate) fn master_with_iframes(master: &str, streams: &[IframeStream]) -> String {
    let mut out = master.trim_end().to_owned();
    out.push('\n');
    for s in streams {
        let codecs = video_codec(master, &s.media_uri)
            .map(|c| format!(",CODECS=\"{c}\""))
            .unwrap_or_default();
        out.push_str(&format!(
            "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={},RESOLUTION={}x{}{codecs},URI=\"{}\"\n",
            s.bandwidth, s.width, s.height, s.uri
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::bmff::make_box as bx;

    /// A fragment: styp, moof (tfhd without defaults, trun with data offset and sizes), mdat.
    fn fragment(sizes: &[u32]) -> Vec<u8> {
        let tfhd = bx(b"tfhd", &[0, 0x02, 0, 0, 0, 0, 0, 1]); // default-base-is-moof, track 1
        let build = |data_offset: i32| {
            let mut trun = vec![0, 0, 0x02, 0x01]; // data offset + sample sizes
            trun.extend_from_slice(&(sizes.len() as u32).to_be_bytes());
            trun.extend_from_slice(&data_offset.to_be_bytes());
            for s in sizes {
                trun.extend_from_slice(&s.to_be_bytes());
            }
            let traf = bx(b"traf", &[tfhd.clone(), bx(b"trun", &trun)].concat());
            bx(b"moof", &[bx(b"mfhd", &[0; 8]), traf].concat())
        };
        let moof_len = build(0).len() as i32;
        let moof = build(moof_len + 8);
        let payload: Vec<u8> = sizes.iter().flat_map(|s| vec![0xab; *s as usize]).collect();
        [bx(b"styp", b"msdh\0\0\0\0"), moof, bx(b"mdat", &payload)].concat()
    }

    #[test]
    fn the_key_frame_is_moof_through_the_first_sample() {
        let seg = fragment(&[1000, 200, 300]);
        let (offset, len) = key_frame_range(&seg).unwrap();
        assert_eq!(offset, 16); // after styp
        let moof_len = u32::from_be_bytes(seg[16..20].try_into().unwrap()) as u64;
        assert_eq!(len, moof_len + 8 + 1000);
        assert!(
            seg[(offset + len - 1000) as usize..(offset + len) as usize]
                .iter()
                .all(|b| *b == 0xab)
        );
    }

    #[test]
    fn garbage_and_truncated_segments_have_no_key_frame() {
        assert_eq!(key_frame_range(b""), None);
        assert_eq!(key_frame_range(&[0xff; 64]), None);
        let seg = fragment(&[1000]);
        assert_eq!(key_frame_range(&seg[..seg.len() - 10]), None);
    }

    #[test]
    fn the_playlist_follows_the_media_playlist() {
        let media = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init.mp4\"\n\
                     #EXTINF:4.000,\nseg-00001.m4s\n#EXTINF:2.500,\nseg-00002.m4s\n#EXT-X-ENDLIST\n";
        let (text, peak) = playlist(media, &[(0, 5000), (16, 2500)]).unwrap();
        assert!(text.contains("#EXT-X-I-FRAMES-ONLY\n"), "{text}");
        assert!(text.contains("#EXT-X-MAP:URI=\"init.mp4\"\n"));
        assert!(text.contains("#EXTINF:4.000,\n#EXT-X-BYTERANGE:5000@0\nseg-00001.m4s\n"));
        assert!(text.contains("#EXTINF:2.500,\n#EXT-X-BYTERANGE:2500@16\nseg-00002.m4s\n"));
        assert!(text.ends_with("#EXT-X-ENDLIST\n"));
        assert_eq!(peak, 10_000);
        assert!(
            playlist(media, &[(0, 5000)]).is_err(),
            "a range per segment"
        );
    }

    #[test]
    fn the_master_announces_each_iframe_stream_with_the_video_codec() {
        let master = "#EXTM3U\n#EXT-X-VERSION:7\n\
                      #EXT-X-STREAM-INF:BANDWIDTH=900000,RESOLUTION=640x360,CODECS=\"avc1.4d401e,mp4a.40.2\",AUDIO=\"a\"\n\
                      360p/index.m3u8\n";
        let out = master_with_iframes(
            master,
            &[IframeStream {
                media_uri: "360p/index.m3u8".into(),
                uri: "360p/iframes.m3u8".into(),
                bandwidth: 123_000,
                width: 640,
                height: 360,
            }],
        );
        assert!(out.starts_with(master));
        assert!(out.ends_with(
            "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=123000,RESOLUTION=640x360,CODECS=\"avc1.4d401e\",URI=\"360p/iframes.m3u8\"\n"
        ), "{out}");
    }
}
