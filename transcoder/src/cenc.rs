//! Common Encryption (ISO/IEC 23001-7, scheme `cenc`: AES-128-CTR) of the CMAF package, done
//! here rather than by FFmpeg: FFmpeg 5.1's mp4 muxer, in the fragmented mode the `dash` muxer
//! uses, leaves the per-sample IVs out of the fragments (empty `senc` in the `moov`, nothing in
//! each `traf`), which Chromium refuses ("Sample encryption info is not available").
//!
//! ```text
//! init.mp4:  moov ─ trak ─ … ─ stsd ─ avc1 → encv [+ sinf(frma avc1, schm cenc, schi(tenc KID))]
//!                                     mp4a → enca [+ sinf(…)]
//!            moov + pssh (v1, W3C common system id, the KID)   ← Chromium's ClearKey reads it
//! seg.m4s:   [styp][sidx*][moof[mfhd][traf[tfhd][tfdt][trun]+saiz+saio+senc]][mdat: samples encrypted]
//!                     └ referenced_size grows with the moof      └ trun data_offset grows too
//! ```
//!
//! Audio samples are encrypted whole. Video samples are encrypted per NAL unit (subsample
//! encryption, §10.2): the length prefix, the NAL header and non-VCL units (SPS, PPS, SEI,
//! AUD) stay clear, and each slice's protected part is the 16-byte-aligned tail of its payload,
//! so every protected range is whole AES blocks. Each sample has its own 8-byte IV (random per
//! segment, then counting), the CTR counter block being `IV ‖ 0⁶⁴`. The sample sizes do not
//! change, so the manifests' byte counts and durations stay true; only each `moof` grows.

use streamgate_auth::SampleCipher;

use crate::{
    Error,
    bmff::{be32, boxes, make_box, make_full_box},
};

/// The W3C "common" PSSH system id: Chromium's ClearKey takes key ids from a v1 `pssh` of
/// this system (and from no other) to start a license request.
pub(crate) const COMMON_SYSTEM_ID: [u8; 16] = [
    0x10, 0x77, 0xef, 0xec, 0xc0, 0xb2, 0x4d, 0x02, 0xac, 0xe3, 0x3c, 0x1e, 0x52, 0xe2, 0xfb, 0x4b,
];

/// Per-sample IV size written in `tenc` and `senc`.
const IV_SIZE: usize = 8;

fn err(msg: impl Into<String>) -> Error {
    Error::Encryption(msg.into())
}

/// What a track's samples look like to the encryptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TrackKind {
    /// NAL-structured video: samples are length-prefixed NAL units.
    Video { nal_length: usize, hevc: bool },
    /// Audio: samples are encrypted whole.
    Audio,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Track {
    id: u32,
    kind: TrackKind,
    /// `trex` default sample size, for `trun`s without sizes.
    default_size: Option<u32>,
}

/// The tracks of a protected init segment, needed to encrypt its media segments.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tracks(Vec<Track>);

/// A box of the init segment, parsed as deep as the sample entries.
struct Node {
    kind: [u8; 4],
    /// Bytes between the header and the children (a sample entry's fixed fields).
    fixed: Vec<u8>,
    children: Vec<Node>,
    /// The body of a box not descended into.
    leaf: Option<Vec<u8>>,
}

impl Node {
    fn leaf(kind: [u8; 4], body: Vec<u8>) -> Self {
        Self {
            kind,
            fixed: Vec::new(),
            children: Vec::new(),
            leaf: Some(body),
        }
    }

    fn child(&self, kind: &[u8; 4]) -> Option<&Node> {
        self.children.iter().find(|n| &n.kind == kind)
    }

    fn path_mut(&mut self, path: &[&[u8; 4]]) -> Option<&mut Node> {
        let mut n = self;
        for k in path {
            n = n.children.iter_mut().find(|c| &&c.kind == k)?;
        }
        Some(n)
    }
}

/// Length of the fixed part of the boxes descended into, `None` for leaves.
fn container_fixed(kind: &[u8; 4]) -> Option<usize> {
    match kind {
        b"moov" | b"trak" | b"mdia" | b"minf" | b"stbl" | b"mvex" => Some(0),
        b"stsd" => Some(8),
        b"avc1" | b"avc3" | b"hvc1" | b"hev1" => Some(78),
        b"mp4a" => Some(28),
        _ => None,
    }
}

fn parse(buf: &[u8], from: usize, to: usize) -> Result<Vec<Node>, Error> {
    let mut out = Vec::new();
    let mut end = from;
    for (kind, at, header, size) in boxes(buf, from, to) {
        let body = &buf[at + header..at + size];
        let node = match container_fixed(&kind) {
            Some(f) if body.len() >= f => Node {
                kind,
                fixed: body[..f].to_vec(),
                children: parse(buf, at + header + f, at + size)?,
                leaf: None,
            },
            _ => Node::leaf(kind, body.to_vec()),
        };
        out.push(node);
        end = at + size;
    }
    if end != to {
        return Err(err("init segment: a box overruns its parent"));
    }
    Ok(out)
}

fn write(nodes: &[Node], out: &mut Vec<u8>) {
    for n in nodes {
        let mut body = n.fixed.clone();
        match &n.leaf {
            Some(l) => body.extend_from_slice(l),
            None => write(&n.children, &mut body),
        }
        out.extend_from_slice(&make_box(&n.kind, &body));
    }
}

/// The `sinf` announcing `cenc` with `kid` for a sample entry of format `original`.
fn sinf(original: [u8; 4], kid: [u8; 16]) -> Node {
    let frma = make_box(b"frma", &original);
    let mut schm = b"cenc".to_vec();
    schm.extend_from_slice(&0x0001_0000u32.to_be_bytes());
    let schm = make_full_box(b"schm", 0, 0, &schm);
    // tenc v0: reserved, reserved, default_isProtected, default_Per_Sample_IV_Size, default_KID.
    let mut tenc = vec![0, 0, 1, IV_SIZE as u8];
    tenc.extend_from_slice(&kid);
    let schi = make_box(b"schi", &make_full_box(b"tenc", 0, 0, &tenc));
    Node::leaf(*b"sinf", [frma, schm, schi].concat())
}

/// A v1 `pssh` of the common system naming `kid`.
pub(crate) fn pssh(kid: [u8; 16]) -> Vec<u8> {
    let mut body = COMMON_SYSTEM_ID.to_vec();
    body.extend_from_slice(&1u32.to_be_bytes());
    body.extend_from_slice(&kid);
    body.extend_from_slice(&0u32.to_be_bytes());
    make_full_box(b"pssh", 1, 0, &body)
}

/// Rewrites an init segment to announce `cenc` under `kid`, and says how its tracks' samples
/// are laid out.
///
/// # Errors
/// [`Error::Encryption`] for an init segment this does not understand or a codec Common
/// Encryption is not applied to here.
pub(crate) fn protect_init(init: &[u8], kid: [u8; 16]) -> Result<(Vec<u8>, Tracks), Error> {
    let mut top = parse(init, 0, init.len())?;
    let moov = top
        .iter_mut()
        .find(|n| &n.kind == b"moov")
        .ok_or_else(|| err("init segment has no moov"))?;
    let trex: Vec<(u32, u32)> = moov
        .child(b"mvex")
        .map(|m| {
            m.children
                .iter()
                .filter(|c| &c.kind == b"trex")
                .filter_map(|c| {
                    let b = c.leaf.as_deref()?;
                    Some((be32(b, 4)?, be32(b, 16)?))
                })
                .collect()
        })
        .unwrap_or_default();
    let mut tracks = Vec::new();
    for trak in moov.children.iter_mut().filter(|n| &n.kind == b"trak") {
        let tkhd = trak
            .child(b"tkhd")
            .and_then(|n| n.leaf.as_deref())
            .ok_or_else(|| err("trak without tkhd"))?;
        let id = be32(tkhd, if tkhd.first() == Some(&1) { 20 } else { 12 })
            .ok_or_else(|| err("short tkhd"))?;
        let stsd = trak
            .path_mut(&[b"mdia", b"minf", b"stbl", b"stsd"])
            .ok_or_else(|| err("trak without stsd"))?;
        let [entry] = stsd.children.as_mut_slice() else {
            return Err(err("stsd must hold exactly one sample entry"));
        };
        let original = entry.kind;
        let config = |k: &[u8; 4]| entry.child(k).and_then(|n| n.leaf.as_deref());
        let (kind, renamed) = match &original {
            b"avc1" | b"avc3" | b"hvc1" | b"hev1" => {
                // lengthSizeMinusOne: byte 4 of avcC, byte 21 of hvcC (low two bits).
                let hevc = original[0] == b'h';
                let (cfg, at) = if hevc { (b"hvcC", 21) } else { (b"avcC", 4) };
                let len = config(cfg)
                    .and_then(|c| c.get(at))
                    .ok_or_else(|| err("video sample entry without a usable avcC/hvcC"))?;
                let nal_length = usize::from(len & 3) + 1;
                (TrackKind::Video { nal_length, hevc }, *b"encv")
            }
            b"mp4a" => (TrackKind::Audio, *b"enca"),
            other => {
                return Err(err(format!(
                    "cannot encrypt sample entry {:?}",
                    String::from_utf8_lossy(other)
                )));
            }
        };
        if matches!(kind, TrackKind::Video { nal_length: 3, .. }) {
            return Err(err("3-byte NAL lengths are not supported"));
        }
        entry.kind = renamed;
        entry.children.push(sinf(original, kid));
        tracks.push(Track {
            id,
            kind,
            default_size: trex.iter().find(|t| t.0 == id).map(|t| t.1),
        });
    }
    if tracks.is_empty() {
        return Err(err("init segment has no track"));
    }
    moov.children
        .push(Node::leaf(*b"pssh", pssh(kid)[8..].to_vec()));
    let mut out = Vec::with_capacity(init.len() + 128);
    write(&top, &mut out);
    Ok((out, Tracks(tracks)))
}

/// The subsamples of one video sample: `(clear, protected)` byte counts covering it exactly.
fn subsamples(sample: &[u8], nal_length: usize, hevc: bool) -> Result<Vec<(u16, u32)>, Error> {
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut clear_run = 0usize;
    let mut i = 0usize;
    while i < sample.len() {
        let prefix = sample
            .get(i..i + nal_length)
            .ok_or_else(|| err("a NAL length overruns its sample"))?;
        let n = prefix
            .iter()
            .fold(0usize, |a, &b| (a << 8) | usize::from(b));
        let start = i + nal_length;
        if start + n > sample.len() || n == 0 {
            return Err(err("a NAL unit overruns its sample"));
        }
        let (header, vcl) = if hevc {
            (2, (sample[start] >> 1) & 0x3f < 32)
        } else {
            (1, (1..=5).contains(&(sample[start] & 0x1f)))
        };
        let protected = if vcl && n > header {
            (n - header) / 16 * 16
        } else {
            0
        };
        clear_run += nal_length + n - protected;
        if protected > 0 {
            spans.push((clear_run, protected));
            clear_run = 0;
        }
        i = start + n;
    }
    if clear_run > 0 {
        spans.push((clear_run, 0));
    }
    // A clear count is 16 bits: a longer clear run becomes several entries.
    let mut out = Vec::with_capacity(spans.len());
    for (mut clear, protected) in spans {
        while clear > usize::from(u16::MAX) {
            out.push((u16::MAX, 0));
            clear -= usize::from(u16::MAX);
        }
        let protected = u32::try_from(protected).map_err(|_| err("sample too large"))?;
        out.push((clear as u16, protected));
    }
    Ok(out)
}

/// Encrypts one media segment (every fragment in it) in the layout `tracks` describes.
/// `iv_seed` starts the segment's IVs (draw it at random per segment).
///
/// # Errors
/// [`Error::Encryption`] for a segment this does not understand (then nothing is written).
pub(crate) fn protect_segment(
    seg: &[u8],
    tracks: &Tracks,
    cipher: &SampleCipher,
    iv_seed: u64,
) -> Result<Vec<u8>, Error> {
    let top: Vec<_> = boxes(seg, 0, seg.len()).collect();
    if top.last().map(|b| b.1 + b.3) != Some(seg.len()) {
        return Err(err("segment: a box overruns the file"));
    }
    let mut data = seg.to_vec();
    let mut iv = iv_seed;
    let mut moofs = Vec::new();
    for &(kind, at, header, size) in &top {
        if &kind == b"moof" {
            if header != 8 {
                return Err(err("64-bit moof sizes are not supported"));
            }
            moofs.push(protect_moof(
                seg, &mut data, at, size, tracks, cipher, &mut iv,
            )?);
        }
    }
    if moofs.is_empty() {
        return Err(err("segment has no moof"));
    }
    let deltas: Vec<usize> = moofs.iter().map(|(m, size)| m.len() - size).collect();
    let mut out = Vec::with_capacity(seg.len() + deltas.iter().sum::<usize>());
    let mut next_moof = moofs.into_iter();
    let mut seen_moof = false;
    for &(kind, at, header, size) in &top {
        match &kind {
            b"moof" => {
                seen_moof = true;
                out.extend_from_slice(&next_moof.next().unwrap_or_default().0);
            }
            b"sidx" if !seen_moof => {
                let mut b = data[at..at + size].to_vec();
                patch_sidx(&mut b, header, &deltas)?;
                out.extend_from_slice(&b);
            }
            b"senc" | b"pssh" => return Err(err("segment is already encrypted")),
            _ => out.extend_from_slice(&data[at..at + size]),
        }
    }
    Ok(out)
}

/// Grows a `sidx`'s referenced sizes by what each fragment grew.
fn patch_sidx(b: &mut [u8], header: usize, deltas: &[usize]) -> Result<(), Error> {
    let version = *b.get(header).ok_or_else(|| err("short sidx"))?;
    let mut p = header + 4 + 8 + if version == 0 { 8 } else { 16 } + 2;
    let count = b
        .get(p..p + 2)
        .map(|c| usize::from(u16::from_be_bytes([c[0], c[1]])))
        .ok_or_else(|| err("short sidx"))?;
    p += 2;
    let per_entry: Vec<usize> = if count == deltas.len() {
        deltas.to_vec()
    } else if count == 1 {
        vec![deltas.iter().sum()]
    } else {
        return Err(err("sidx references do not match the fragments"));
    };
    for (i, d) in per_entry.into_iter().enumerate() {
        let at = p + 12 * i;
        let v = be32(b, at).ok_or_else(|| err("short sidx"))?;
        let size = (v & 0x7fff_ffff) as usize + d;
        if size > 0x7fff_ffff {
            return Err(err("sidx size overflow"));
        }
        b[at..at + 4].copy_from_slice(&((v & 0x8000_0000) | size as u32).to_be_bytes());
    }
    Ok(())
}

/// Encrypts the samples of one `moof`'s fragment in `data` and returns the new `moof` (with
/// `saiz`, `saio`, `senc` per `traf` and the data offsets moved) and the old one's size.
fn protect_moof(
    seg: &[u8],
    data: &mut [u8],
    moof_at: usize,
    moof_size: usize,
    tracks: &Tracks,
    cipher: &SampleCipher,
    iv: &mut u64,
) -> Result<(Vec<u8>, usize), Error> {
    let mut body = Vec::new();
    // Positions inside the new moof: trun data_offset fields, and (saio field, senc first IV).
    let mut offset_fields = Vec::new();
    let mut saio_fields = Vec::new();
    for (kind, at, header, size) in boxes(seg, moof_at + 8, moof_at + moof_size) {
        if &kind != b"traf" {
            body.extend_from_slice(&seg[at..at + size]);
            continue;
        }
        let traf_at = 8 + body.len();
        let mut traf = Vec::new();
        let (mut track, mut base_is_moof, mut default_size) = (None, false, None);
        let mut samples: Vec<(usize, usize)> = Vec::new();
        for (ck, cat, ch, cs) in boxes(seg, at + header, at + size) {
            let pos_in_traf = traf.len();
            traf.extend_from_slice(&seg[cat..cat + cs]);
            match &ck {
                b"tfhd" => {
                    let flags = be32(seg, cat + ch).ok_or_else(|| err("short tfhd"))? & 0xff_ffff;
                    let id = be32(seg, cat + ch + 4).ok_or_else(|| err("short tfhd"))?;
                    if flags & 0x01 != 0 {
                        return Err(err("tfhd base-data-offset is not supported"));
                    }
                    base_is_moof = flags & 0x02_0000 != 0;
                    let mut p = cat + ch + 8;
                    for bit in [0x02, 0x08] {
                        if flags & bit != 0 {
                            p += 4;
                        }
                    }
                    if flags & 0x10 != 0 {
                        default_size = be32(seg, p);
                    }
                    let t = tracks
                        .0
                        .iter()
                        .find(|t| t.id == id)
                        .ok_or_else(|| err(format!("fragment of unknown track {id}")))?;
                    default_size = default_size.or(t.default_size);
                    track = Some(t);
                }
                b"trun" => {
                    let flags = be32(seg, cat + ch).ok_or_else(|| err("short trun"))? & 0xff_ffff;
                    let count = be32(seg, cat + ch + 4).ok_or_else(|| err("short trun"))?;
                    if flags & 0x01 == 0 {
                        return Err(err("trun without data offset"));
                    }
                    let data_offset = be32(seg, cat + ch + 8).ok_or_else(|| err("short trun"))?;
                    offset_fields.push(traf_at + 8 + pos_in_traf + ch + 8);
                    let mut p = cat + ch + 12 + if flags & 0x04 != 0 { 4 } else { 0 };
                    let mut pos = moof_at
                        .checked_add_signed(data_offset as i32 as isize)
                        .ok_or_else(|| err("bad data offset"))?;
                    for _ in 0..count {
                        if flags & 0x100 != 0 {
                            p += 4;
                        }
                        let size = if flags & 0x200 != 0 {
                            let s = be32(seg, p).ok_or_else(|| err("short trun"))?;
                            p += 4;
                            s
                        } else {
                            default_size.ok_or_else(|| err("no sample size"))?
                        } as usize;
                        p += if flags & 0x400 != 0 { 4 } else { 0 };
                        p += if flags & 0x800 != 0 { 4 } else { 0 };
                        if pos + size > seg.len() {
                            return Err(err("a sample lies past the end of the segment"));
                        }
                        samples.push((pos, size));
                        pos += size;
                    }
                }
                b"senc" | b"saiz" | b"saio" => {
                    return Err(err("segment is already encrypted"));
                }
                _ => {}
            }
        }
        let track = track.ok_or_else(|| err("traf without tfhd"))?;
        if !base_is_moof {
            return Err(err("tfhd without default-base-is-moof is not supported"));
        }
        let mut senc = (samples.len() as u32).to_be_bytes().to_vec();
        let mut info_sizes = Vec::with_capacity(samples.len());
        for &(pos, size) in &samples {
            let iv8 = iv.to_be_bytes();
            *iv = iv.wrapping_add(1);
            let mut block = [0u8; 16];
            block[..8].copy_from_slice(&iv8);
            senc.extend_from_slice(&iv8);
            let sample = &mut data[pos..pos + size];
            match track.kind {
                TrackKind::Audio => {
                    cipher
                        .apply(block, sample)
                        .map_err(|e| err(e.to_string()))?;
                    info_sizes.push(IV_SIZE);
                }
                TrackKind::Video { nal_length, hevc } => {
                    let subs = subsamples(sample, nal_length, hevc)?;
                    let mut protected = Vec::with_capacity(size);
                    let mut off = 0usize;
                    for &(c, p) in &subs {
                        off += usize::from(c);
                        protected.extend_from_slice(&sample[off..off + p as usize]);
                        off += p as usize;
                    }
                    cipher
                        .apply(block, &mut protected)
                        .map_err(|e| err(e.to_string()))?;
                    let (mut off, mut taken) = (0usize, 0usize);
                    for &(c, p) in &subs {
                        off += usize::from(c);
                        let p = p as usize;
                        sample[off..off + p].copy_from_slice(&protected[taken..taken + p]);
                        off += p;
                        taken += p;
                    }
                    let n = u16::try_from(subs.len()).map_err(|_| err("too many subsamples"))?;
                    senc.extend_from_slice(&n.to_be_bytes());
                    for (c, p) in subs {
                        senc.extend_from_slice(&c.to_be_bytes());
                        senc.extend_from_slice(&p.to_be_bytes());
                    }
                    info_sizes.push(IV_SIZE + 2 + 6 * usize::from(n));
                }
            }
        }
        let subsampled = matches!(track.kind, TrackKind::Video { .. });
        // saiz: one default size when every sample's info is as long, else one byte each.
        let mut saiz = Vec::new();
        if info_sizes.windows(2).all(|w| w[0] == w[1]) {
            saiz.push(u8::try_from(*info_sizes.first().unwrap_or(&0)).unwrap_or(0));
            saiz.extend_from_slice(&(info_sizes.len() as u32).to_be_bytes());
        } else {
            saiz.push(0);
            saiz.extend_from_slice(&(info_sizes.len() as u32).to_be_bytes());
            for s in &info_sizes {
                saiz.push(u8::try_from(*s).map_err(|_| err("too many subsamples in a sample"))?);
            }
        }
        let saiz = make_full_box(b"saiz", 0, 0, &saiz);
        let saio = make_full_box(b"saio", 0, 0, &[1u32.to_be_bytes(), [0; 4]].concat());
        let senc = make_full_box(b"senc", 0, if subsampled { 2 } else { 0 }, &senc);
        let traf_body_end = traf_at + 8 + traf.len();
        saio_fields.push((
            traf_body_end + saiz.len() + 12 + 4,
            traf_body_end + saiz.len() + saio.len() + 12 + 4,
        ));
        traf.extend_from_slice(&saiz);
        traf.extend_from_slice(&saio);
        traf.extend_from_slice(&senc);
        body.extend_from_slice(&make_box(b"traf", &traf));
    }
    let mut moof = make_box(b"moof", &body);
    let delta = moof.len() - moof_size;
    for at in offset_fields {
        let old = be32(&moof, at).ok_or_else(|| err("moof rebuild"))? as i32;
        let new = old
            .checked_add(i32::try_from(delta).map_err(|_| err("moof too large"))?)
            .ok_or_else(|| err("data offset overflow"))?;
        moof[at..at + 4].copy_from_slice(&new.to_be_bytes());
    }
    for (field, first_iv) in saio_fields {
        moof[field..field + 4].copy_from_slice(&(first_iv as u32).to_be_bytes());
    }
    Ok((moof, moof_size))
}

#[cfg(test)]
mod tests {
    use streamgate_auth::ContentKey;

    use super::*;

    #[test]
    fn video_subsamples_keep_headers_and_parameter_sets_clear() {
        // SPS (type 7, 10 bytes), then an IDR slice (type 5, 1 + 40 bytes), 4-byte lengths.
        let mut s = Vec::new();
        s.extend_from_slice(&10u32.to_be_bytes());
        s.push(0x67);
        s.extend_from_slice(&[1; 9]);
        s.extend_from_slice(&41u32.to_be_bytes());
        s.push(0x65);
        s.extend_from_slice(&[2; 40]);
        let subs = subsamples(&s, 4, false).unwrap();
        // Clear: SPS whole (14) + slice length, header and 8 unaligned bytes (13); then 32.
        assert_eq!(subs, vec![(27, 32)]);
        let total: usize = subs
            .iter()
            .map(|(c, p)| usize::from(*c) + *p as usize)
            .sum();
        assert_eq!(total, s.len());
        // A NAL claiming more than the sample holds is refused, not read past.
        let mut bad = s.clone();
        bad[3] = 200;
        assert!(subsamples(&bad, 4, false).is_err());
    }

    #[test]
    fn a_long_clear_run_is_split_into_16_bit_entries() {
        let mut s = Vec::new();
        s.extend_from_slice(&70_000u32.to_be_bytes());
        s.push(0x06); // SEI: clear
        s.extend_from_slice(&vec![0; 69_999]);
        let subs = subsamples(&s, 4, false).unwrap();
        assert_eq!(subs, vec![(u16::MAX, 0), ((70_004 - 65_535) as u16, 0)]);
    }

    #[test]
    fn the_pssh_names_the_key_id_under_the_common_system() {
        let b = pssh([7; 16]);
        assert_eq!(&b[4..8], b"pssh");
        assert_eq!(b[8], 1, "version 1 carries key ids");
        assert_eq!(&b[12..28], &COMMON_SYSTEM_ID);
        assert_eq!(be32(&b, 28), Some(1));
        assert_eq!(&b[32..48], &[7; 16]);
        assert_eq!(b.len(), 52);
    }

    /// A fragmented MP4 from FFmpeg, split into its init segment (up to `moov`) and its first
    /// fragment (`moof` + `mdat`).
    fn fragmented(dir: &std::path::Path, input: &[&str], codec: &[&str]) -> (Vec<u8>, Vec<u8>) {
        let file = dir.join("frag.mp4");
        let out = std::process::Command::new("ffmpeg")
            .args(["-v", "error", "-y"])
            .args(input)
            .args(codec)
            .args(["-movflags", "+frag_keyframe+empty_moov+default_base_moof"])
            .arg(&file)
            .output()
            .expect("ffmpeg runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = std::fs::read(&file).unwrap();
        let top: Vec<_> = boxes(&bytes, 0, bytes.len()).collect();
        let moov = top.iter().find(|b| &b.0 == b"moov").unwrap();
        let moof = top.iter().position(|b| &b.0 == b"moof").unwrap();
        let mdat = top[moof + 1];
        assert_eq!(&mdat.0, b"mdat");
        (
            bytes[..moov.1 + moov.3].to_vec(),
            bytes[top[moof].1..mdat.1 + mdat.3].to_vec(),
        )
    }

    /// The packager against FFmpeg's own `cenc` decryption, on one encode (so bit-exact): the
    /// protected init + fragment decode with the key to exactly the frames of the clear ones,
    /// and without it do not.
    #[test]
    fn ffmpeg_decrypts_what_it_encrypts_to_the_same_frames() {
        let dir = tempfile::tempdir().unwrap();
        let key = ContentKey::from_parts([0x11; 16], [0x5a; 16]);
        let cipher = key.ctr().unwrap();
        let video = fragmented(
            dir.path(),
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x180:rate=30:duration=1",
            ],
            &[
                "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
            ],
        );
        let audio = fragmented(
            dir.path(),
            &["-f", "lavfi", "-i", "sine=frequency=440:duration=1"],
            &["-c:a", "aac", "-b:a", "96k"],
        );
        for (name, (init, seg)) in [("video", video), ("audio", audio)] {
            let (pinit, tracks) = protect_init(&init, key.kid()).unwrap();
            let pseg = protect_segment(&seg, &tracks, &cipher, 0x0102_0304_0506_0708).unwrap();
            assert_ne!(pseg, seg);
            let (clear, errors) = streamgate_testkit::decode_frames(&init, &seg, None);
            assert!(
                errors.is_empty() && clear.lines().count() > 10,
                "{name}: {errors}"
            );
            let (decrypted, errors) =
                streamgate_testkit::decode_frames(&pinit, &pseg, Some(&key.key_hex()));
            assert!(errors.is_empty(), "{name}: {errors}");
            assert_eq!(decrypted, clear, "{name}: decrypted frames differ");
            let (without, errors) = streamgate_testkit::decode_frames(&pinit, &pseg, None);
            assert!(
                without != clear || !errors.is_empty(),
                "{name} plays without the key"
            );
        }
    }

    #[test]
    fn garbage_is_refused_not_passed_through() {
        let key = ContentKey::from_parts([1; 16], [2; 16]);
        let c = key.ctr().unwrap();
        assert!(protect_init(b"not an mp4 file", [0; 16]).is_err());
        let tracks = Tracks(vec![Track {
            id: 1,
            kind: TrackKind::Audio,
            default_size: None,
        }]);
        assert!(protect_segment(b"", &tracks, &c, 0).is_err());
        assert!(protect_segment(&make_box(b"mdat", &[0; 9]), &tracks, &c, 0).is_err());
    }
}
