//! Reading and writing ISO base media file format boxes (ISO/IEC 14496-12 §4.2): the little
//! the I-frame playlists and the Common Encryption packager need, on byte slices.

/// A box header: (type, offset of the box, header length, total size). Iterates the boxes
/// laid end to end in `buf[from..to]`; stops at the first that does not fit.
pub(crate) fn boxes(
    buf: &[u8],
    from: usize,
    to: usize,
) -> impl Iterator<Item = ([u8; 4], usize, usize, usize)> + '_ {
    let mut at = from;
    std::iter::from_fn(move || {
        if at + 8 > to {
            return None;
        }
        let size32 = u32::from_be_bytes(buf[at..at + 4].try_into().ok()?) as usize;
        let kind: [u8; 4] = buf[at + 4..at + 8].try_into().ok()?;
        let (header, size) = match size32 {
            1 => {
                let big = u64::from_be_bytes(buf.get(at + 8..at + 16)?.try_into().ok()?);
                (16, usize::try_from(big).ok()?)
            }
            0 => (8, to - at),
            n => (8, n),
        };
        if size < header || at + size > to {
            return None;
        }
        let item = (kind, at, header, size);
        at += size;
        Some(item)
    })
}

/// The big-endian `u32` at `at`, if the buffer holds it.
pub(crate) fn be32(buf: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(buf.get(at..at + 4)?.try_into().ok()?))
}

/// A box of `kind` around `body` (32-bit size).
pub(crate) fn make_box(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 8);
    v.extend_from_slice(
        &u32::try_from(body.len() + 8)
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    v.extend_from_slice(kind);
    v.extend_from_slice(body);
    v
}

/// A full box (version and 24-bit flags) of `kind` around `body`.
pub(crate) fn make_full_box(kind: &[u8; 4], version: u8, flags: u32, body: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(body.len() + 4);
    b.extend_from_slice(&((u32::from(version) << 24) | (flags & 0x00ff_ffff)).to_be_bytes());
    b.extend_from_slice(body);
    make_box(kind, &b)
}
