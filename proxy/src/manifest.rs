//! Manifest rewriting: HLS (`.m3u8`) and DASH (`.mpd`) bodies are rewritten per response, on
//! their way to the player, so that absolute URIs carry the playback token while the cached copy
//! of the manifest stays token-free.
//!
//! Players fetch `/p/{token}/{content_id}/{path}`. A relative URI in a manifest resolves against
//! that URL and so inherits the token; an absolute one (a full URL or a path starting with `/`)
//! does not, and must be rewritten to point back under the player's own prefix.
//!
//! # Rewrite rule
//!
//! `prefix` is `/p/{token}/{content_id}/` (always ends with `/`), `cid` the content being served.
//!
//! ```text
//!  URI as written by origin                               URI sent to the player
//!  -----------------------------------------------------  ------------------------------------
//!  seg_00001.m4s, audio/en.m3u8, ../x.ts   (relative)  -> unchanged (inherits the token)
//!  [http(s)://host[:port]]/v/{cid}/{rest}              -> {prefix}{rest}
//!  [http(s)://host[:port]]/p/{any token}/{cid}/{rest}  -> {prefix}{rest}   (re-tokenized)
//!  [http(s)://host[:port]]/{cid}/{rest}                -> {prefix}{rest}
//!  anything else: another cid, a foreign path, data:,  -> unchanged
//!    skd://, any scheme other than http and https
//! ```
//!
//! `{rest}` keeps its `?query` and `#fragment` and may be empty (`https://o/v/{cid}/` becomes
//! `{prefix}`). The scheme is matched case-insensitively; a network-path reference
//! (`//host[:port]/…`) is treated like an `http(s)` URL. The host is not checked: the rewrite is
//! decided by the path alone. An empty content id, or one holding `/`, `?` or `#`, makes the
//! rewriter a pass-through.
//!
//! # Where URIs are looked for
//!
//! - HLS: every URI line (a non-empty line not starting with `#`; surrounding spaces and tabs
//!   are kept, the URI between them is rewritten) and the quoted `URI="…"` attribute of
//!   `EXT-X-MEDIA`, `EXT-X-MAP`, `EXT-X-KEY`, `EXT-X-SESSION-KEY`, `EXT-X-I-FRAME-STREAM-INF`,
//!   `EXT-X-PART`, `EXT-X-PRELOAD-HINT`, `EXT-X-RENDITION-REPORT` and `EXT-X-SESSION-DATA`.
//!   Line endings (LF or CRLF) are kept exactly.
//! - DASH: the `media`, `initialization` and `sourceURL` attributes (single or double quotes)
//!   of any element, and the text of `<BaseURL>` and of the ClearKey license URL
//!   `<dashif:Laurl>` (surrounding whitespace kept, any namespace prefix). Values are matched
//!   as written: XML entities and template identifiers such as `$Number%05d$` pass through
//!   untouched. Comments, CDATA sections, processing instructions and declarations are never
//!   rewritten. The prefix is XML-escaped once, when the rewriter is built.
//!
//! Everything else, including bytes that are not UTF-8, is copied unchanged.
//!
//! # Streaming
//!
//! [`ManifestRewriter::push`] takes the body in chunks split anywhere (inside a UTF-8 character,
//! a line, a tag, an attribute). It works on *units* and holds back the last one until it is
//! complete: an HLS line up to its `\n`, a DASH tag from `<` to its closing `>` (quotes
//! respected), a comment or CDATA section, and a whole `<BaseURL …>text</BaseURL>` element. DASH
//! text between units is emitted at once.
//!
//! ```text
//!  #EXTM3U\n#EXTINF:4.000,\nhttps://origin/v/c1/seg_0001.m4s\n#EXTINF:4.000,\n...
//!  |----------------- chunk 1 ------------------|----------- chunk 2 ------------
//!  push 1: emits "#EXTM3U\n#EXTINF:4.000,\n", holds back "https://origin/v/c1/"
//!  push 2: ends that line: emits "/p/{token}/c1/seg_0001.m4s\n#EXTINF:4.000,\n", ...
//! ```
//!
//! The output is the same however the body is split. A unit that has not ended within its first
//! 64 KiB is not a manifest line or tag worth rewriting: those 64 KiB are flushed unmodified and
//! the rest of the unit, up to the next `\n` (HLS) or `>` (DASH), is passed through as well, so
//! the held-back buffer never exceeds 64 KiB.
//!
//! # Cost
//!
//! Byte scanning only (no regex). Unchanged runs are copied to the output in one go, so a
//! manifest with nothing to rewrite costs one scan plus one copy. Past [`ManifestRewriter::new`]
//! (which copies the content id and prefix), the only allocations are the output's growth and,
//! across chunk boundaries, the held-back unit. On one core of the build host a 5 KB media
//! playlist takes about 1.6 µs, rewritten or not (`cargo bench -p streamgate-proxy --bench
//! manifest`).

use std::fmt;

use bytes::{Bytes, BytesMut};

/// Longest unit (HLS line, DASH tag or `BaseURL` element) held back waiting for its end.
const MAX_UNIT: usize = 64 * 1024;

/// The kind of manifest a body holds, which decides how it is scanned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ManifestKind {
    /// An HLS playlist (`.m3u8`), master or media: scanned line by line.
    Hls,
    /// A DASH media presentation description (`.mpd`): scanned as XML.
    Dash,
}

impl ManifestKind {
    /// The manifest kind of an object path, by its extension (ASCII case-insensitive): `.m3u8`
    /// is [`Hls`](Self::Hls), `.mpd` is [`Dash`](Self::Dash), anything else is `None`. A
    /// `?query` or `#fragment` on the path is ignored.
    pub fn from_path(path: &str) -> Option<Self> {
        let end = path.find(['?', '#']).unwrap_or(path.len());
        let path = &path.as_bytes()[..end];
        if ends_with_ignore_case(path, b".m3u8") {
            Some(Self::Hls)
        } else if ends_with_ignore_case(path, b".mpd") {
            Some(Self::Dash)
        } else {
            None
        }
    }

    /// The scan state a new unit starts in.
    fn fresh_scan(self) -> Scan {
        match self {
            Self::Hls => Scan::Line,
            Self::Dash => Scan::Open,
        }
    }

    /// The byte that ends every unit (and ends pass-through after an oversized unit).
    fn terminator(self) -> u8 {
        match self {
            Self::Hls => b'\n',
            Self::Dash => b'>',
        }
    }
}

/// A streaming rewriter of one manifest body: absolute URIs of the content being served get
/// the player's tokenized prefix, everything else is copied byte for byte.
///
/// A URI (HLS URI lines and the `URI="…"` attribute of the tags that carry one; DASH `media`,
/// `initialization` and `sourceURL` attributes and `<BaseURL>` text) is rewritten when it is
/// `[http(s)://host[:port]]/v/{content_id}/{rest}`, `…/p/{any token}/{content_id}/{rest}` or
/// `…/{content_id}/{rest}`: it becomes `{prefix}{rest}`, query and fragment kept. Relative
/// URIs, other content ids, foreign paths and other schemes (`data:`, `skd://`) are left alone.
/// A line, tag or `BaseURL` element not ended within 64 KiB is passed through unmodified.
///
/// Build one per response with [`new`](Self::new), feed the body with [`push`](Self::push) as
/// it arrives and end with [`finish`](Self::finish); [`rewrite_all`] does all three for a body
/// held whole. Its `Debug` output leaves out the prefix, which carries the token.
pub struct ManifestRewriter {
    kind: ManifestKind,
    rules: Rules,
    /// The start of an incomplete unit, held back until its end arrives.
    held: Vec<u8>,
    /// Where the scan of `held` stands.
    scan: Scan,
    /// Passing bytes through up to the next terminator, after an oversized unit.
    skipping: bool,
}

impl fmt::Debug for ManifestRewriter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManifestRewriter")
            .field("kind", &self.kind)
            .field(
                "content_id",
                &String::from_utf8_lossy(&self.rules.content_id),
            )
            .field("held", &self.held.len())
            .field("skipping", &self.skipping)
            .finish_non_exhaustive()
    }
}

impl ManifestRewriter {
    /// A rewriter for a `kind` manifest of `content_id`, replacing the origin part of matching
    /// absolute URIs with `prefix`: the player-facing path `/p/{token}/{content_id}/` (always
    /// ending with `/`; used as given, XML-escaped for DASH).
    pub fn new(kind: ManifestKind, content_id: &str, prefix: &str) -> Self {
        let enabled = !content_id.is_empty() && !content_id.contains(['/', '?', '#']);
        let prefix = match kind {
            ManifestKind::Hls => prefix.as_bytes().into(),
            ManifestKind::Dash => xml_escape(prefix.as_bytes()),
        };
        Self {
            kind,
            rules: Rules {
                content_id: content_id.as_bytes().into(),
                prefix,
                enabled,
            },
            held: Vec::new(),
            scan: kind.fresh_scan(),
            skipping: false,
        }
    }

    /// Feeds the next chunk of the body, which may be split anywhere (even inside a UTF-8
    /// character, a line, a tag or an attribute), and appends to `out` the rewritten output that
    /// is complete so far. An incomplete last unit is held back until a later chunk ends it.
    pub fn push(&mut self, chunk: &[u8], out: &mut BytesMut) {
        out.reserve(chunk.len());
        let term = self.kind.terminator();
        let mut chunk = chunk;
        loop {
            if self.skipping {
                match find_byte(chunk, term) {
                    Some(p) => {
                        out.extend_from_slice(&chunk[..=p]);
                        chunk = &chunk[p + 1..];
                        self.skipping = false;
                    }
                    None => {
                        out.extend_from_slice(chunk);
                        return;
                    }
                }
            }
            if self.held.is_empty() {
                break;
            }
            if chunk.is_empty() {
                return;
            }
            // Continue the held unit up to the next byte that can end it (or the size bound);
            // a unit always ends on a terminator, so the rest of the chunk is never copied here.
            let window = &chunk[..chunk.len().min(MAX_UNIT - self.held.len())];
            let take = find_byte(window, term).map_or(window.len(), |p| p + 1);
            let from = self.held.len();
            self.held.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if let Some(end) = scan_unit(&self.held, from, &mut self.scan) {
                let mut out = Splice::new(&self.held, out);
                rewrite_unit(&self.rules, self.kind, &mut out, 0, end, self.scan);
                out.finish(self.held.len());
                self.held.clear();
                self.scan = self.kind.fresh_scan();
            } else if self.held.len() >= MAX_UNIT {
                out.extend_from_slice(&self.held);
                self.held.clear();
                self.scan = self.kind.fresh_scan();
                self.skipping = true;
            }
        }
        self.push_direct(chunk, out);
    }

    /// Ends the body: appends what is held back to `out` (a last HLS line without a line ending
    /// is rewritten; an unterminated DASH tag is copied as is). The rewriter is then reset.
    pub fn finish(&mut self, out: &mut BytesMut) {
        if !self.held.is_empty() {
            let mut out = Splice::new(&self.held, out);
            if self.kind == ManifestKind::Hls {
                rewrite_unit(
                    &self.rules,
                    self.kind,
                    &mut out,
                    0,
                    self.held.len(),
                    Scan::Line,
                );
            }
            out.finish(self.held.len());
            self.held.clear();
        }
        self.scan = self.kind.fresh_scan();
        self.skipping = false;
    }

    /// Processes `buf` with nothing held back: complete units are rewritten in place of the
    /// unchanged runs around them, the incomplete tail (if any) is held back.
    fn push_direct(&mut self, buf: &[u8], out: &mut BytesMut) {
        match self.kind {
            ManifestKind::Hls => self.push_lines(buf, out),
            ManifestKind::Dash => self.push_xml(buf, out),
        }
    }

    /// HLS with nothing held back: the hot loop of the common case, line by line.
    fn push_lines(&mut self, buf: &[u8], out: &mut BytesMut) {
        let mut out = Splice::new(buf, out);
        let mut pos = 0;
        while let Some(p) = find_byte(&buf[pos..], b'\n') {
            let end = pos + p + 1;
            // A line longer than the bound passes through unmodified, as a held one would.
            if end - pos <= MAX_UNIT {
                rewrite_hls_line(&self.rules, &mut out, pos, end);
            }
            pos = end;
        }
        if buf.len() - pos >= MAX_UNIT {
            self.skipping = true;
        } else if pos < buf.len() {
            out.finish(pos);
            self.held.extend_from_slice(&buf[pos..]);
            self.scan = Scan::Line;
            return;
        }
        out.finish(buf.len());
    }

    /// DASH with nothing held back: text is copied, units from each `<` are scanned.
    fn push_xml(&mut self, buf: &[u8], out: &mut BytesMut) {
        let mut out = Splice::new(buf, out);
        let mut pos = 0;
        while let Some(p) = find_byte(&buf[pos..], b'<') {
            let start = pos + p;
            let limit = buf.len().min(start + MAX_UNIT);
            let mut scan = Scan::Open;
            match scan_unit(&buf[start..limit], 0, &mut scan) {
                Some(len) => {
                    rewrite_unit(&self.rules, self.kind, &mut out, start, start + len, scan);
                    pos = start + len;
                }
                None if limit - start == MAX_UNIT => {
                    // Oversized: copied as is, up to and including the next '>'.
                    match find_byte(&buf[limit..], b'>') {
                        Some(p) => pos = limit + p + 1,
                        None => {
                            self.skipping = true;
                            break;
                        }
                    }
                }
                None => {
                    out.finish(start);
                    self.held.extend_from_slice(&buf[start..]);
                    self.scan = scan;
                    return;
                }
            }
        }
        out.finish(buf.len());
    }
}

/// Rewrites a whole `body` of the given kind in one go (see [`ManifestRewriter`]).
pub fn rewrite_all(kind: ManifestKind, content_id: &str, prefix: &str, body: &[u8]) -> Bytes {
    let mut rewriter = ManifestRewriter::new(kind, content_id, prefix);
    let mut out = BytesMut::with_capacity(body.len() + body.len() / 8);
    rewriter.push(body, &mut out);
    rewriter.finish(&mut out);
    out.freeze()
}

/// What a rewrite looks for and what it writes.
struct Rules {
    content_id: Box<[u8]>,
    /// The replacement, already escaped for the manifest's syntax.
    prefix: Box<[u8]>,
    /// False when the content id could never match safely: everything passes through.
    enabled: bool,
}

impl Rules {
    /// Where the `{rest}` of a rewritable URI starts: `u[..at]` is to be replaced with the
    /// prefix. `None` leaves `u` unchanged.
    fn rest_at(&self, u: &[u8]) -> Option<usize> {
        if !self.enabled {
            return None;
        }
        let path = match u.first()? {
            b'/' if u.get(1) == Some(&b'/') => authority_end(u, 2)?,
            b'/' => 0,
            b if b.is_ascii_alphabetic() => {
                let colon = u.iter().position(|&b| {
                    !(b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
                })?;
                let scheme = &u[..colon];
                if u[colon] != b':'
                    || !(scheme.eq_ignore_ascii_case(b"http")
                        || scheme.eq_ignore_ascii_case(b"https"))
                    || !u[colon + 1..].starts_with(b"//")
                {
                    return None;
                }
                authority_end(u, colon + 3)?
            }
            _ => return None,
        };
        self.rest_in_path(&u[path..]).map(|at| path + at)
    }

    /// Where `{rest}` starts in a path (starting with `/`) of one of the three shapes.
    fn rest_in_path(&self, path: &[u8]) -> Option<usize> {
        let after = &path[1..];
        if let Some(r) = after.strip_prefix(b"v/")
            && let Some(n) = self.content_segment(r)
        {
            return Some(3 + n);
        }
        if let Some(r) = after.strip_prefix(b"p/")
            && let Some(t) = r
                .iter()
                .position(|&b| matches!(b, b'/' | b'?' | b'#'))
                .filter(|&t| t > 0 && r[t] == b'/')
            && let Some(n) = self.content_segment(&r[t + 1..])
        {
            return Some(3 + t + 1 + n);
        }
        self.content_segment(after).map(|n| 1 + n)
    }

    /// The length of `{content_id}/` if `s` starts with it.
    fn content_segment(&self, s: &[u8]) -> Option<usize> {
        let n = self.content_id.len();
        (s.starts_with(&self.content_id) && s.get(n) == Some(&b'/')).then_some(n + 1)
    }
}

/// The index of the `/` that starts the path after the authority at `u[from..]`; `None` when the
/// authority is empty or not followed by a path.
fn authority_end(u: &[u8], from: usize) -> Option<usize> {
    let rest = u.get(from..)?;
    let end = rest.iter().position(|&b| matches!(b, b'/' | b'?' | b'#'))?;
    (end > 0 && rest[end] == b'/').then_some(from + end)
}

/// Copies a source buffer to the output, replacing byte ranges; unchanged runs are copied in
/// one go, when the next replacement (or the end) is reached.
struct Splice<'a> {
    src: &'a [u8],
    copied: usize,
    out: &'a mut BytesMut,
}

impl<'a> Splice<'a> {
    fn new(src: &'a [u8], out: &'a mut BytesMut) -> Self {
        Self {
            src,
            copied: 0,
            out,
        }
    }

    /// Replaces `src[start..end]` (after everything replaced so far) with `with`.
    fn replace(&mut self, start: usize, end: usize, with: &[u8]) {
        self.out.extend_from_slice(&self.src[self.copied..start]);
        self.out.extend_from_slice(with);
        self.copied = end;
    }

    /// Copies what is left up to `upto`.
    fn finish(&mut self, upto: usize) {
        self.out.extend_from_slice(&self.src[self.copied..upto]);
        self.copied = upto;
    }
}

/// Rewrites the URI at `start..end` of the splice's source if it matches the rules.
fn rewrite_uri(rules: &Rules, out: &mut Splice<'_>, start: usize, end: usize) {
    if let Some(at) = rules.rest_at(&out.src[start..end]) {
        out.replace(start, start + at, &rules.prefix);
    }
}

/// Rewrites one complete unit `start..end` of the splice's source; `scan` is its final state.
fn rewrite_unit(
    rules: &Rules,
    kind: ManifestKind,
    out: &mut Splice<'_>,
    start: usize,
    end: usize,
    scan: Scan,
) {
    match (kind, scan) {
        (ManifestKind::Hls, _) => rewrite_hls_line(rules, out, start, end),
        (ManifestKind::Dash, Scan::Tag { .. }) => rewrite_tag(rules, out, start, end),
        (
            ManifestKind::Dash,
            Scan::BaseClose {
                text_start,
                text_end,
            },
        ) => {
            rewrite_tag(rules, out, start, start + text_start);
            let src = out.src;
            if src.get(start + text_end + 1) == Some(&b'/') {
                let text = &src[start + text_start..start + text_end];
                let (a, b) = trim(text, |b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
                rewrite_uri(rules, out, start + text_start + a, start + text_start + b);
            }
        }
        (ManifestKind::Dash, _) => {}
    }
}

/// HLS tags whose `URI` attribute is rewritten (the name after `#EXT-X-`).
fn is_uri_tag(name: &[u8]) -> bool {
    matches!(
        name,
        b"MEDIA"
            | b"MAP"
            | b"KEY"
            | b"SESSION-KEY"
            | b"I-FRAME-STREAM-INF"
            | b"PART"
            | b"PRELOAD-HINT"
            | b"RENDITION-REPORT"
            | b"SESSION-DATA"
    )
}

/// One HLS line, with or without its line ending.
#[inline]
fn rewrite_hls_line(rules: &Rules, out: &mut Splice<'_>, start: usize, end: usize) {
    let src = out.src;
    let line = &src[start..end];
    // Cheapest checks first: most tag lines (#EXTINF, #EXT-X-BYTERANGE…) are done at the prefix.
    if line.first() == Some(&b'#') {
        let Some(body) = line.strip_prefix(b"#EXT-X-") else {
            return;
        };
        let Some(colon) = find_byte(body, b':') else {
            return;
        };
        if is_uri_tag(&body[..colon]) {
            let attrs = start + 7 + colon + 1;
            rewrite_hls_attributes(rules, out, attrs, start + without_eol(line).len());
        }
    } else {
        let (a, b) = trim(without_eol(line), |b| matches!(b, b' ' | b'\t'));
        if a < b {
            rewrite_uri(rules, out, start + a, start + b);
        }
    }
}

/// A line without its `\n` or `\r\n`.
fn without_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// The attribute list `start..end` of an HLS tag: `NAME=VALUE,NAME="quoted, value",…`.
fn rewrite_hls_attributes(rules: &Rules, out: &mut Splice<'_>, start: usize, end: usize) {
    let src = out.src;
    let mut i = start;
    while i < end {
        let name_start = i;
        while i < end && !matches!(src[i], b'=' | b',') {
            i += 1;
        }
        if i < end && src[i] == b'=' {
            let (a, b) = trim(&src[name_start..i], |b| matches!(b, b' ' | b'\t'));
            let is_uri = &src[name_start + a..name_start + b] == b"URI";
            i += 1;
            if i < end && src[i] == b'"' {
                let value = i + 1;
                let Some(len) = find_byte(&src[value..end], b'"') else {
                    return;
                };
                if is_uri {
                    rewrite_uri(rules, out, value, value + len);
                }
                i = value + len + 1;
            }
            while i < end && src[i] != b',' {
                i += 1;
            }
        }
        i += 1;
    }
}

/// One complete DASH tag `start..end` (`<` to `>`): its `media`, `initialization` and
/// `sourceURL` attributes. End tags, comments, declarations and instructions are left alone.
fn rewrite_tag(rules: &Rules, out: &mut Splice<'_>, start: usize, end: usize) {
    let src = out.src;
    let tag = &src[start..end];
    if tag.len() < 3 || matches!(tag[1], b'/' | b'!' | b'?') {
        return;
    }
    // Fast path: every rewritable value holds a '/'; most tags have none besides a final "/>".
    let inner = &tag[1..tag.len() - 1];
    if !inner.strip_suffix(b"/").unwrap_or(inner).contains(&b'/') {
        return;
    }
    let close = end - 1;
    let mut i = start + 1;
    while i < close && !is_xml_space(src[i]) && src[i] != b'/' {
        i += 1;
    }
    loop {
        while i < close && (is_xml_space(src[i]) || src[i] == b'/') {
            i += 1;
        }
        if i >= close {
            return;
        }
        let name_start = i;
        while i < close && !is_xml_space(src[i]) && !matches!(src[i], b'=' | b'/') {
            i += 1;
        }
        let name_end = i;
        while i < close && is_xml_space(src[i]) {
            i += 1;
        }
        if i >= close || src[i] != b'=' {
            continue;
        }
        i += 1;
        while i < close && is_xml_space(src[i]) {
            i += 1;
        }
        if i < close && matches!(src[i], b'"' | b'\'') {
            let quote = src[i];
            let value = i + 1;
            let Some(len) = find_byte(&src[value..close], quote) else {
                return;
            };
            let name = &src[name_start..name_end];
            if matches!(name, b"media" | b"initialization" | b"sourceURL") {
                rewrite_uri(rules, out, value, value + len);
            }
            i = value + len + 1;
        } else {
            // Not XML (an unquoted value): skip it.
            while i < close && !is_xml_space(src[i]) {
                i += 1;
            }
        }
    }
}

/// Where the scan of a unit stands; positions are relative to the unit's first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// HLS: looking for the `\n`.
    Line,
    /// DASH: a `<` seen, not yet known to be a tag, a comment or a CDATA section.
    Open,
    /// In a tag, declaration or instruction; `quote` is the open quote of a value, or 0.
    Tag { quote: u8 },
    /// In `<!-- … -->`.
    Comment,
    /// In `<![CDATA[ … ]]>`.
    Cdata,
    /// In the text of a `<BaseURL>` element, which starts at `text_start`.
    BaseText { text_start: usize },
    /// In the tag after the text of a `<BaseURL>` element (`</BaseURL>` when well-formed).
    BaseClose { text_start: usize, text_end: usize },
}

/// Continues the scan of the unit `buf` (which starts at the unit's first byte; `buf[..from]`
/// has been scanned into `st` already) and returns the unit's length once its end is in `buf`.
fn scan_unit(buf: &[u8], from: usize, st: &mut Scan) -> Option<usize> {
    let mut i = from;
    loop {
        match *st {
            Scan::Line => return find_byte(&buf[i..], b'\n').map(|p| i + p + 1),
            Scan::Open => {
                let after = &buf[1..];
                if after.starts_with(b"!--") {
                    *st = Scan::Comment;
                    i = 4;
                } else if after.starts_with(b"![CDATA[") {
                    *st = Scan::Cdata;
                    i = 9;
                } else if b"!--".starts_with(after) || b"![CDATA[".starts_with(after) {
                    return None;
                } else {
                    *st = Scan::Tag { quote: 0 };
                    i = 1;
                }
            }
            Scan::Tag { quote } => {
                let mut quote = quote;
                match tag_end(buf, i, &mut quote) {
                    None => {
                        *st = Scan::Tag { quote };
                        return None;
                    }
                    Some(end) if opens_base_url(&buf[..end]) => {
                        *st = Scan::BaseText { text_start: end };
                        i = end;
                    }
                    Some(end) => return Some(end),
                }
            }
            Scan::Comment => return find_close(buf, i, 4, b"--"),
            Scan::Cdata => return find_close(buf, i, 9, b"]]"),
            Scan::BaseText { text_start } => {
                let p = find_byte(&buf[i..], b'<')?;
                *st = Scan::BaseClose {
                    text_start,
                    text_end: i + p,
                };
                i += p + 1;
            }
            Scan::BaseClose { .. } => return find_byte(&buf[i..], b'>').map(|p| i + p + 1),
        }
    }
}

/// The end (past the `>`) of a tag whose scan stands at `from` with `quote` open (0: none).
fn tag_end(buf: &[u8], from: usize, quote: &mut u8) -> Option<usize> {
    for (k, &b) in buf.iter().enumerate().skip(from) {
        if *quote != 0 {
            if b == *quote {
                *quote = 0;
            }
        } else if b == b'"' || b == b'\'' {
            *quote = b;
        } else if b == b'>' {
            return Some(k + 1);
        }
    }
    None
}

/// The end of a comment or CDATA section whose body starts at `body`: the first `>` at or after
/// `from`, preceded by `tail` inside the body.
fn find_close(buf: &[u8], from: usize, body: usize, tail: &[u8; 2]) -> Option<usize> {
    let mut j = from.max(body + 2);
    loop {
        let k = j + find_byte(buf.get(j..)?, b'>')?;
        if &buf[k - 2..k] == tail {
            return Some(k + 1);
        }
        j = k + 1;
    }
}

/// Whether a complete tag starts an element whose text is a URI: `BaseURL` or the license URL
/// `Laurl` (DASH-IF IOP, any namespace prefix; `laurl` as some packagers write it), not
/// self-closing.
fn opens_base_url(tag: &[u8]) -> bool {
    let n = tag.len();
    if n < 3 || tag[n - 2] == b'/' {
        return false;
    }
    let inner = &tag[1..n - 1];
    let name_end = inner
        .iter()
        .position(|&b| is_xml_space(b) || b == b'/')
        .unwrap_or(inner.len());
    let name = &inner[..name_end];
    let local = match name.iter().rposition(|&b| b == b':') {
        Some(c) => &name[c + 1..],
        None => name,
    };
    matches!(local, b"BaseURL" | b"Laurl" | b"laurl")
}

fn is_xml_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The bounds of `s` without the leading and trailing bytes matching `space`.
fn trim(s: &[u8], space: impl Fn(u8) -> bool) -> (usize, usize) {
    let a = s.iter().position(|&b| !space(b)).unwrap_or(s.len());
    let b = s.iter().rposition(|&b| !space(b)).map_or(a, |p| p + 1);
    (a, b)
}

fn ends_with_ignore_case(s: &[u8], suffix: &[u8]) -> bool {
    s.len() >= suffix.len() && s[s.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
}

/// `s` with `& < > " '` escaped, for use in XML text and attribute values.
fn xml_escape(s: &[u8]) -> Box<[u8]> {
    let mut out = Vec::with_capacity(s.len());
    for &b in s {
        match b {
            b'&' => out.extend_from_slice(b"&amp;"),
            b'<' => out.extend_from_slice(b"&lt;"),
            b'>' => out.extend_from_slice(b"&gt;"),
            b'"' => out.extend_from_slice(b"&quot;"),
            b'\'' => out.extend_from_slice(b"&apos;"),
            _ => out.push(b),
        }
    }
    out.into()
}

/// The index of the first `needle` in `hay`, eight bytes at a time.
#[inline]
fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO * u64::from(needle);
    let mut words = hay.chunks_exact(8);
    let mut base = 0;
    for word in &mut words {
        let x = u64::from_le_bytes(word.try_into().unwrap()) ^ pattern;
        // A zero byte of `x` is a match; the lowest flagged byte is always a true one.
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| b == needle)
        .map(|p| base + p)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: &str = "c0ffee42";
    const PREFIX: &str = "/p/TOKEN123/c0ffee42/";

    const MASTER: &str = "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-SESSION-DATA:DATA-ID=\"com.example.title\",VALUE=\"Café, naïve – 東京\"
#EXT-X-SESSION-DATA:DATA-ID=\"com.example.chapters\",URI=\"https://origin.internal/v/c0ffee42/chapters.json\"
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://key.example.com/c0ffee42\",KEYFORMAT=\"com.apple.streamingkeydelivery\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=YES,AUTOSELECT=YES,URI=\"audio/en/index.m3u8\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",LANGUAGE=\"fr\",NAME=\"Français, stéréo\",AUTOSELECT=YES,URI=\"https://origin.internal:8443/v/c0ffee42/audio/fr/index.m3u8\"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"English\",URI=\"/c0ffee42/subs/en.m3u8?lang=en\"
#EXT-X-STREAM-INF:BANDWIDTH=6000000,AVERAGE-BANDWIDTH=5000000,RESOLUTION=1920x1080,CODECS=\"avc1.640028,mp4a.40.2\",AUDIO=\"aac\",SUBTITLES=\"subs\"
video/1080p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"aac\",SUBTITLES=\"subs\"
https://cdn.example.com/v/c0ffee42/video/720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1500000,RESOLUTION=854x480,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"aac\"
/p/OLDTOKEN.abc_-/c0ffee42/video/480p/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=800000,RESOLUTION=1280x720,CODECS=\"avc1.64001f\",URI=\"/v/c0ffee42/video/720p/iframes.m3u8\"
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=400000,URI=\"video/480p/iframes.m3u8\"
";

    const MASTER_OUT: &str = "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-SESSION-DATA:DATA-ID=\"com.example.title\",VALUE=\"Café, naïve – 東京\"
#EXT-X-SESSION-DATA:DATA-ID=\"com.example.chapters\",URI=\"/p/TOKEN123/c0ffee42/chapters.json\"
#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES,URI=\"skd://key.example.com/c0ffee42\",KEYFORMAT=\"com.apple.streamingkeydelivery\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",LANGUAGE=\"en\",NAME=\"English\",DEFAULT=YES,AUTOSELECT=YES,URI=\"audio/en/index.m3u8\"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"aac\",LANGUAGE=\"fr\",NAME=\"Français, stéréo\",AUTOSELECT=YES,URI=\"/p/TOKEN123/c0ffee42/audio/fr/index.m3u8\"
#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"English\",URI=\"/p/TOKEN123/c0ffee42/subs/en.m3u8?lang=en\"
#EXT-X-STREAM-INF:BANDWIDTH=6000000,AVERAGE-BANDWIDTH=5000000,RESOLUTION=1920x1080,CODECS=\"avc1.640028,mp4a.40.2\",AUDIO=\"aac\",SUBTITLES=\"subs\"
video/1080p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=3000000,RESOLUTION=1280x720,CODECS=\"avc1.64001f,mp4a.40.2\",AUDIO=\"aac\",SUBTITLES=\"subs\"
/p/TOKEN123/c0ffee42/video/720p/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=1500000,RESOLUTION=854x480,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"aac\"
/p/TOKEN123/c0ffee42/video/480p/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=800000,RESOLUTION=1280x720,CODECS=\"avc1.64001f\",URI=\"/p/TOKEN123/c0ffee42/video/720p/iframes.m3u8\"
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=400000,URI=\"video/480p/iframes.m3u8\"
";

    const MEDIA: &str = "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example.net/v1/key?cid=c0ffee42\",IV=0x00000000000000000000000000000001
#EXT-X-MAP:URI=\"https://origin.internal/v/c0ffee42/video/720p/init.mp4\",BYTERANGE=\"1024@0\"
#EXTINF:4.000,
seg_00000.m4s
#EXTINF:4.000,
https://origin.internal/v/c0ffee42/video/720p/seg_00001.m4s
#EXTINF:4.000,
/v/c0ffee42/video/720p/seg_00002.m4s?t=2#frag
#EXTINF:4.000,
HTTP://ORIGIN.INTERNAL:80/c0ffee42/video/720p/seg_00003.m4s
#EXT-X-DISCONTINUITY
#EXTINF:15.000,
https://ads.example.org/creatives/spot-30s/seg1.ts
#EXTINF:4.000,
https://origin.internal/v/other-content/video/720p/seg_00004.m4s
#EXTINF:4.000,
  ../720p/seg_00005.m4s\t
#EXTINF:4.000,
\t//edge.example.com/p/x/c0ffee42/video/720p/seg_00006.m4s  
#EXT-X-ENDLIST
";

    const MEDIA_OUT: &str = "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-PLAYLIST-TYPE:VOD
#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example.net/v1/key?cid=c0ffee42\",IV=0x00000000000000000000000000000001
#EXT-X-MAP:URI=\"/p/TOKEN123/c0ffee42/video/720p/init.mp4\",BYTERANGE=\"1024@0\"
#EXTINF:4.000,
seg_00000.m4s
#EXTINF:4.000,
/p/TOKEN123/c0ffee42/video/720p/seg_00001.m4s
#EXTINF:4.000,
/p/TOKEN123/c0ffee42/video/720p/seg_00002.m4s?t=2#frag
#EXTINF:4.000,
/p/TOKEN123/c0ffee42/video/720p/seg_00003.m4s
#EXT-X-DISCONTINUITY
#EXTINF:15.000,
https://ads.example.org/creatives/spot-30s/seg1.ts
#EXTINF:4.000,
https://origin.internal/v/other-content/video/720p/seg_00004.m4s
#EXTINF:4.000,
  ../720p/seg_00005.m4s\t
#EXTINF:4.000,
\t/p/TOKEN123/c0ffee42/video/720p/seg_00006.m4s  
#EXT-X-ENDLIST
";

    /// Low-latency tags, a tag outside the list and a last line without a line ending.
    const LL: &str = "#EXTM3U
#EXT-X-TARGETDURATION:4
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0
#EXT-X-PART-INF:PART-TARGET=0.333
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-PART:DURATION=0.333,URI=\"https://o.example/v/c0ffee42/ll/p1.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.333,URI=\"ll/p2.m4s\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"/v/c0ffee42/ll/p3.m4s\"
#EXT-X-RENDITION-REPORT:URI=\"https://o.example/c0ffee42/audio/ll.m3u8\",LAST-MSN=10
#EXT-X-DATERANGE:ID=\"ad\",X-ASSET-URI=\"https://o.example/v/c0ffee42/ad.m3u8\"
#EXT-X-MEDIA-SEQUENCE:10
https://o.example/v/c0ffee42/ll/seg10.m4s";

    const LL_OUT: &str = "#EXTM3U
#EXT-X-TARGETDURATION:4
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.0
#EXT-X-PART-INF:PART-TARGET=0.333
#EXT-X-MAP:URI=\"init.mp4\"
#EXT-X-PART:DURATION=0.333,URI=\"/p/TOKEN123/c0ffee42/ll/p1.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=0.333,URI=\"ll/p2.m4s\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"/p/TOKEN123/c0ffee42/ll/p3.m4s\"
#EXT-X-RENDITION-REPORT:URI=\"/p/TOKEN123/c0ffee42/audio/ll.m3u8\",LAST-MSN=10
#EXT-X-DATERANGE:ID=\"ad\",X-ASSET-URI=\"https://o.example/v/c0ffee42/ad.m3u8\"
#EXT-X-MEDIA-SEQUENCE:10
/p/TOKEN123/c0ffee42/ll/seg10.m4s";

    const MPD: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT634.566S" minBufferTime="PT2S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <!-- packaged by origin: <SegmentURL media="https://origin.internal/v/c0ffee42/x.m4s"/> -->
  <BaseURL serviceLocation="origin">
    https://origin.internal/v/c0ffee42/dash/
  </BaseURL>
  <Period id="p0" start="PT0S">
    <AdaptationSet mimeType="video/mp4" segmentAlignment="true" startWithSAP="1">
      <SegmentTemplate timescale="90000" duration="360000" startNumber="1" initialization="https://origin.internal/v/c0ffee42/dash/$RepresentationID$/init.mp4" media="seg-$Number%05d$.m4s"/>
      <Representation id="v720" bandwidth="3000000" width="1280" height="720" codecs="avc1.64001f">
        <BaseURL>video/720p/</BaseURL>
      </Representation>
      <Representation id="v1080" bandwidth="6000000" width="1920" height="1080" codecs="avc1.640028">
        <BaseURL>/p/OLDTOKEN/c0ffee42/video/1080p/</BaseURL>
        <SegmentTemplate media='https://origin.internal/v/c0ffee42/video/1080p/$RepresentationID$-$Time$.m4s' initialization="$RepresentationID$/init.mp4">
          <SegmentTimeline><S t="0" d="360000" r="10"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
    <AdaptationSet mimeType="audio/mp4" lang="fr">
      <Label>Français &amp; « stéréo »</Label>
      <Representation id="a-fr" bandwidth="128000" codecs="mp4a.40.2">
        <dash:BaseURL xmlns:dash="urn:mpeg:dash:schema:mpd:2011">https://origin.internal/c0ffee42/audio/</dash:BaseURL>
        <SegmentList duration="4">
          <Initialization sourceURL = 'https://origin.internal/v/c0ffee42/audio/fr/init.mp4?a=1&amp;b=2'/>
          <SegmentURL media="https://origin.internal/v/c0ffee42/audio/fr/1.m4s" mediaRange="0-999"/>
          <SegmentURL media="/c0ffee42/audio/fr/2.m4s"/>
          <SegmentURL media="https://cdn.partner.example/v/other-id/audio/fr/3.m4s"/>
          <SegmentURL data-note="a > b" media="https://cdn.partner.example/audio/fr/4.m4s"/>
          <SegmentURL data-note='x > "y"' media="https://origin.internal/v/c0ffee42/audio/fr/5.m4s"/>
        </SegmentList>
      </Representation>
    </AdaptationSet>
  </Period>
  <![CDATA[ <SegmentURL media="/v/c0ffee42/cdata.m4s"/> ]]>
</MPD>
"#;

    const MPD_OUT: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" type="static" mediaPresentationDuration="PT634.566S" minBufferTime="PT2S" profiles="urn:mpeg:dash:profile:isoff-live:2011">
  <!-- packaged by origin: <SegmentURL media="https://origin.internal/v/c0ffee42/x.m4s"/> -->
  <BaseURL serviceLocation="origin">
    /p/TOKEN123/c0ffee42/dash/
  </BaseURL>
  <Period id="p0" start="PT0S">
    <AdaptationSet mimeType="video/mp4" segmentAlignment="true" startWithSAP="1">
      <SegmentTemplate timescale="90000" duration="360000" startNumber="1" initialization="/p/TOKEN123/c0ffee42/dash/$RepresentationID$/init.mp4" media="seg-$Number%05d$.m4s"/>
      <Representation id="v720" bandwidth="3000000" width="1280" height="720" codecs="avc1.64001f">
        <BaseURL>video/720p/</BaseURL>
      </Representation>
      <Representation id="v1080" bandwidth="6000000" width="1920" height="1080" codecs="avc1.640028">
        <BaseURL>/p/TOKEN123/c0ffee42/video/1080p/</BaseURL>
        <SegmentTemplate media='/p/TOKEN123/c0ffee42/video/1080p/$RepresentationID$-$Time$.m4s' initialization="$RepresentationID$/init.mp4">
          <SegmentTimeline><S t="0" d="360000" r="10"/></SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
    <AdaptationSet mimeType="audio/mp4" lang="fr">
      <Label>Français &amp; « stéréo »</Label>
      <Representation id="a-fr" bandwidth="128000" codecs="mp4a.40.2">
        <dash:BaseURL xmlns:dash="urn:mpeg:dash:schema:mpd:2011">/p/TOKEN123/c0ffee42/audio/</dash:BaseURL>
        <SegmentList duration="4">
          <Initialization sourceURL = '/p/TOKEN123/c0ffee42/audio/fr/init.mp4?a=1&amp;b=2'/>
          <SegmentURL media="/p/TOKEN123/c0ffee42/audio/fr/1.m4s" mediaRange="0-999"/>
          <SegmentURL media="/p/TOKEN123/c0ffee42/audio/fr/2.m4s"/>
          <SegmentURL media="https://cdn.partner.example/v/other-id/audio/fr/3.m4s"/>
          <SegmentURL data-note="a > b" media="https://cdn.partner.example/audio/fr/4.m4s"/>
          <SegmentURL data-note='x > "y"' media="/p/TOKEN123/c0ffee42/audio/fr/5.m4s"/>
        </SegmentList>
      </Representation>
    </AdaptationSet>
  </Period>
  <![CDATA[ <SegmentURL media="/v/c0ffee42/cdata.m4s"/> ]]>
</MPD>
"#;

    fn hls(body: &[u8]) -> Bytes {
        rewrite_all(ManifestKind::Hls, CID, PREFIX, body)
    }

    fn dash(body: &[u8]) -> Bytes {
        rewrite_all(ManifestKind::Dash, CID, PREFIX, body)
    }

    fn show(b: &[u8]) -> String {
        String::from_utf8_lossy(b).into_owned()
    }

    /// Feeds `body` in the given chunks.
    fn chunked<'a>(kind: ManifestKind, chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        let mut rewriter = ManifestRewriter::new(kind, CID, PREFIX);
        let mut out = BytesMut::new();
        for chunk in chunks {
            rewriter.push(chunk, &mut out);
        }
        rewriter.finish(&mut out);
        out.to_vec()
    }

    /// Every two-chunk split, 1-byte chunks and pseudo-random chunk sizes give the output of
    /// `rewrite_all`.
    fn assert_split_invariant(kind: ManifestKind, body: &[u8]) {
        let whole = rewrite_all(kind, CID, PREFIX, body);
        for k in 0..=body.len() {
            let (a, b) = body.split_at(k);
            let got = chunked(kind, [a, b]);
            assert!(got == whole, "split at {k}:\n{}", show(&got));
        }
        let got = chunked(kind, body.chunks(1));
        assert!(got == whole, "1-byte chunks:\n{}", show(&got));
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        for _ in 0..20 {
            let mut parts = Vec::new();
            let mut rest = body;
            while !rest.is_empty() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let n = (seed % 40) as usize + 1;
                let (a, b) = rest.split_at(n.min(rest.len()));
                parts.push(a);
                rest = b;
            }
            let got = chunked(kind, parts);
            assert!(got == whole, "random chunks:\n{}", show(&got));
        }
    }

    #[test]
    fn kind_from_path() {
        assert_eq!(
            ManifestKind::from_path("master.m3u8"),
            Some(ManifestKind::Hls)
        );
        assert_eq!(
            ManifestKind::from_path("a/b/INDEX.M3U8"),
            Some(ManifestKind::Hls)
        );
        assert_eq!(
            ManifestKind::from_path("manifest.mpd"),
            Some(ManifestKind::Dash)
        );
        assert_eq!(
            ManifestKind::from_path("x.mpd?t=1"),
            Some(ManifestKind::Dash)
        );
        assert_eq!(ManifestKind::from_path("seg.m4s"), None);
        assert_eq!(ManifestKind::from_path("m3u8"), None);
        assert_eq!(ManifestKind::from_path("x.m3u8.bak"), None);
        assert_eq!(ManifestKind::from_path(""), None);
    }

    #[test]
    fn uri_rule() {
        let rules = Rules {
            content_id: CID.as_bytes().into(),
            prefix: PREFIX.as_bytes().into(),
            enabled: true,
        };
        let rewrite = |u: &str| match rules.rest_at(u.as_bytes()) {
            Some(at) => format!("{PREFIX}{}", &u[at..]),
            None => u.to_owned(),
        };
        let cases = [
            // relative
            ("seg_00001.ts", "seg_00001.ts"),
            ("../c0ffee42/seg.ts", "../c0ffee42/seg.ts"),
            ("v/c0ffee42/seg.ts", "v/c0ffee42/seg.ts"),
            ("seg:1.ts", "seg:1.ts"),
            // origin layout
            ("/v/c0ffee42/a/b.ts", "/p/TOKEN123/c0ffee42/a/b.ts"),
            (
                "https://o.example/v/c0ffee42/a.ts",
                "/p/TOKEN123/c0ffee42/a.ts",
            ),
            (
                "http://o.example:8080/v/c0ffee42/a.ts?x=1&y=2#t=3",
                "/p/TOKEN123/c0ffee42/a.ts?x=1&y=2#t=3",
            ),
            (
                "HTTPS://O.EXAMPLE/v/c0ffee42/a.ts",
                "/p/TOKEN123/c0ffee42/a.ts",
            ),
            (
                "https://user@o.example/v/c0ffee42/a.ts",
                "/p/TOKEN123/c0ffee42/a.ts",
            ),
            ("https://o.example/v/c0ffee42/", "/p/TOKEN123/c0ffee42/"),
            ("//o.example/v/c0ffee42/a.ts", "/p/TOKEN123/c0ffee42/a.ts"),
            // re-tokenized
            ("/p/abc.DEF_-/c0ffee42/a.ts", "/p/TOKEN123/c0ffee42/a.ts"),
            (
                "https://edge.example/p/old/c0ffee42/a/b.ts?q",
                "/p/TOKEN123/c0ffee42/a/b.ts?q",
            ),
            // bare content id
            ("/c0ffee42/a.ts", "/p/TOKEN123/c0ffee42/a.ts"),
            (
                "https://o.example/c0ffee42/a.ts",
                "/p/TOKEN123/c0ffee42/a.ts",
            ),
            // unchanged
            ("/v/c0ffee42", "/v/c0ffee42"),
            ("/v/c0ffee42?x=/", "/v/c0ffee42?x=/"),
            ("/v/c0ffee421/a.ts", "/v/c0ffee421/a.ts"),
            ("/v/other/a.ts", "/v/other/a.ts"),
            ("/p//c0ffee42/a.ts", "/p//c0ffee42/a.ts"),
            ("/p/tok?/c0ffee42/a.ts", "/p/tok?/c0ffee42/a.ts"),
            ("/assets/c0ffee42/a.ts", "/assets/c0ffee42/a.ts"),
            ("https://o.example", "https://o.example"),
            (
                "https://o.example?/v/c0ffee42/a.ts",
                "https://o.example?/v/c0ffee42/a.ts",
            ),
            ("https:///v/c0ffee42/a.ts", "https:///v/c0ffee42/a.ts"),
            ("https:/v/c0ffee42/a.ts", "https:/v/c0ffee42/a.ts"),
            (
                "skd://o.example/v/c0ffee42/key",
                "skd://o.example/v/c0ffee42/key",
            ),
            (
                "ftp://o.example/v/c0ffee42/a.ts",
                "ftp://o.example/v/c0ffee42/a.ts",
            ),
            (
                "data:text/plain;base64,L3YvYzBmZmVlNDIv",
                "data:text/plain;base64,L3YvYzBmZmVlNDIv",
            ),
            ("", ""),
            ("/", "/"),
        ];
        for (input, want) in cases {
            assert_eq!(rewrite(input), want, "{input}");
        }
    }

    #[test]
    fn master_playlist() {
        assert_eq!(show(&hls(MASTER.as_bytes())), MASTER_OUT);
    }

    #[test]
    fn media_playlist() {
        assert_eq!(show(&hls(MEDIA.as_bytes())), MEDIA_OUT);
    }

    #[test]
    fn low_latency_tags_and_last_line_without_newline() {
        assert_eq!(show(&hls(LL.as_bytes())), LL_OUT);
    }

    #[test]
    fn crlf_is_preserved() {
        let body = MEDIA.replace('\n', "\r\n");
        let want = MEDIA_OUT.replace('\n', "\r\n");
        assert_eq!(show(&hls(body.as_bytes())), want);
        // mixed endings, a blank CRLF line and a lone CR inside a line
        let body = "#EXTM3U\r\n\r\n/v/c0ffee42/a.ts\n#EXTINF:4,\r\nhttps://o/v/c0ffee42/b\r.ts\r\n";
        let want = "#EXTM3U\r\n\r\n/p/TOKEN123/c0ffee42/a.ts\n#EXTINF:4,\r\n/p/TOKEN123/c0ffee42/b\r.ts\r\n";
        assert_eq!(show(&hls(body.as_bytes())), want);
    }

    #[test]
    fn dash_mpd() {
        assert_eq!(show(&dash(MPD.as_bytes())), MPD_OUT);
    }

    #[test]
    fn foreign_hosts_and_paths_are_left_alone() {
        let body = "#EXTM3U
#EXT-X-KEY:METHOD=AES-128,URI=\"https://keys.example.net/key/c0ffee42\"
#EXTINF:10,
https://ads.example.org/creatives/spot.ts
#EXTINF:10,
https://ads.example.org/c0ffee42x/spot.ts
#EXTINF:10,
/static/c0ffee42/spot.ts
";
        assert_eq!(show(&hls(body.as_bytes())), body);
        let body = r#"<MPD><BaseURL>https://cdn.partner.example/media/</BaseURL><SegmentTemplate media="https://ads.example.org/$Number$.m4s" initialization="data:video/mp4;base64,AAAA"/></MPD>"#;
        assert_eq!(show(&dash(body.as_bytes())), body);
    }

    #[test]
    fn other_content_ids_are_left_alone() {
        let body = "#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",NAME=\"a\",URI=\"https://o.example/v/deadbeef/audio.m3u8\"
https://o.example/p/tok/deadbeef/video.m3u8
/deadbeef/video.m3u8
/v/c0ffee4/video.m3u8
";
        assert_eq!(show(&hls(body.as_bytes())), body);
        let body = r#"<MPD><BaseURL>https://o.example/v/deadbeef/</BaseURL><SegmentURL media="/p/t/deadbeef/1.m4s"/></MPD>"#;
        assert_eq!(show(&dash(body.as_bytes())), body);
    }

    #[test]
    fn unlisted_attributes_and_tags_are_left_alone() {
        let body = "#EXT-X-CONTENT-STEERING:SERVER-URI=\"/v/c0ffee42/steer.json\"
#EXT-X-MEDIA:TYPE=AUDIO,X-URI=\"/v/c0ffee42/a.m3u8\",NAME=\"URI=/v/c0ffee42/b, x\",URI=\"/v/c0ffee42/c.m3u8\"
";
        let want = "#EXT-X-CONTENT-STEERING:SERVER-URI=\"/v/c0ffee42/steer.json\"
#EXT-X-MEDIA:TYPE=AUDIO,X-URI=\"/v/c0ffee42/a.m3u8\",NAME=\"URI=/v/c0ffee42/b, x\",URI=\"/p/TOKEN123/c0ffee42/c.m3u8\"
";
        assert_eq!(show(&hls(body.as_bytes())), want);
        let body = r#"<MPD><SegmentTemplate index="/v/c0ffee42/idx" mediaRange="/v/c0ffee42/r" xlink:href="/v/c0ffee42/x"/><Foo>/v/c0ffee42/text</Foo></MPD>"#;
        assert_eq!(show(&dash(body.as_bytes())), body);
    }

    #[test]
    fn dash_prefix_is_xml_escaped() {
        let body =
            br#"<MPD><BaseURL>/v/c0ffee42/</BaseURL><SegmentURL media="/v/c0ffee42/1.m4s"/></MPD>"#;
        let got = rewrite_all(ManifestKind::Dash, CID, "/p/a&b'c/c0ffee42/", body);
        assert_eq!(
            show(&got),
            r#"<MPD><BaseURL>/p/a&amp;b&apos;c/c0ffee42/</BaseURL><SegmentURL media="/p/a&amp;b&apos;c/c0ffee42/1.m4s"/></MPD>"#
        );
    }

    #[test]
    fn dash_edge_cases() {
        let cases = [
            // self-closing BaseURL, empty BaseURL, BaseURL interrupted by a comment
            (
                "<BaseURL/><BaseURL></BaseURL>",
                "<BaseURL/><BaseURL></BaseURL>",
            ),
            (
                "<BaseURL>/v/c0ffee42/a/<!-- x --></BaseURL>",
                "<BaseURL>/v/c0ffee42/a/<!-- x --></BaseURL>",
            ),
            // the ClearKey license URL is a URI element like BaseURL
            (
                r#"<ContentProtection><dashif:Laurl Lic_type="EME-1.0">/v/c0ffee42/license</dashif:Laurl></ContentProtection>"#,
                r#"<ContentProtection><dashif:Laurl Lic_type="EME-1.0">/p/TOKEN123/c0ffee42/license</dashif:Laurl></ContentProtection>"#,
            ),
            (
                "<clearkey:Laurl>https://keys.example.net/c0ffee42</clearkey:Laurl>",
                "<clearkey:Laurl>https://keys.example.net/c0ffee42</clearkey:Laurl>",
            ),
            // BaseURL attributes are looked at like any other element's
            (
                r#"<BaseURL media="/v/c0ffee42/m">/v/c0ffee42/t/</BaseURL>"#,
                r#"<BaseURL media="/p/TOKEN123/c0ffee42/m">/p/TOKEN123/c0ffee42/t/</BaseURL>"#,
            ),
            // unquoted value (not XML) is skipped, the next attribute still seen
            (
                r#"<S media=/v/c0ffee42/a initialization="/v/c0ffee42/i"/>"#,
                r#"<S media=/v/c0ffee42/a initialization="/p/TOKEN123/c0ffee42/i"/>"#,
            ),
            // unterminated tag at the end of the body is copied as is
            (r#"<S media="/v/c0ffee42/a"#, r#"<S media="/v/c0ffee42/a"#),
            (
                "<!-->/v/c0ffee42/<S media=\"/v/c0ffee42/a\"/>",
                "<!-->/v/c0ffee42/<S media=\"/v/c0ffee42/a\"/>",
            ),
            ("text > only", "text > only"),
        ];
        for (input, want) in cases {
            assert_eq!(show(&dash(input.as_bytes())), want, "{input}");
            assert_split_invariant(ManifestKind::Dash, input.as_bytes());
        }
    }

    #[test]
    fn every_split_gives_the_same_output() {
        for body in [MASTER, MEDIA, LL] {
            assert_split_invariant(ManifestKind::Hls, body.as_bytes());
            assert_split_invariant(ManifestKind::Hls, body.replace('\n', "\r\n").as_bytes());
        }
        assert_split_invariant(ManifestKind::Dash, MPD.as_bytes());
        assert_split_invariant(ManifestKind::Dash, MPD.replace('\n', "\r\n").as_bytes());
    }

    #[test]
    fn output_is_emitted_as_units_complete() {
        let mut rewriter = ManifestRewriter::new(ManifestKind::Hls, CID, PREFIX);
        let mut out = BytesMut::new();
        rewriter.push(b"#EXTM3U\n#EXTINF:4,\nhttps://o/v/c0ff", &mut out);
        assert_eq!(&out[..], b"#EXTM3U\n#EXTINF:4,\n");
        rewriter.push(b"ee42/a.ts\n#EXT", &mut out);
        assert_eq!(
            &out[..],
            b"#EXTM3U\n#EXTINF:4,\n/p/TOKEN123/c0ffee42/a.ts\n"
        );
        rewriter.finish(&mut out);
        assert!(out.ends_with(b"a.ts\n#EXT"));

        let mut rewriter = ManifestRewriter::new(ManifestKind::Dash, CID, PREFIX);
        let mut out = BytesMut::new();
        rewriter.push(b"<MPD>\n  <BaseURL>https://o/v/c0ffee42/", &mut out);
        assert_eq!(&out[..], b"<MPD>\n  ");
        rewriter.push(b"</BaseURL", &mut out);
        assert_eq!(&out[..], b"<MPD>\n  ");
        rewriter.push(b">\n  <Period", &mut out);
        assert_eq!(
            &out[..],
            b"<MPD>\n  <BaseURL>/p/TOKEN123/c0ffee42/</BaseURL>\n  "
        );
        rewriter.push(b">", &mut out);
        rewriter.finish(&mut out);
        assert!(out.ends_with(b"\n  <Period>"));
    }

    #[test]
    fn non_utf8_bytes_pass_through() {
        let body: &[u8] = b"#EXTM3U\n#EXT-X-SESSION-DATA:DATA-ID=\"t\",VALUE=\"\xff\xfe\x80\"\n\
            #EXTINF:4,caf\xe9\n/v/c0ffee42/caf\xe9.ts\n\xc3\n\xf0\x9f\x8e\n";
        let want: &[u8] = b"#EXTM3U\n#EXT-X-SESSION-DATA:DATA-ID=\"t\",VALUE=\"\xff\xfe\x80\"\n\
            #EXTINF:4,caf\xe9\n/p/TOKEN123/c0ffee42/caf\xe9.ts\n\xc3\n\xf0\x9f\x8e\n";
        assert_eq!(&hls(body)[..], want);
        assert_split_invariant(ManifestKind::Hls, body);

        let body: &[u8] = b"<MPD t=\"\xff\"><Label>\xe9\xff</Label><BaseURL>/v/c0ffee42/\xe9/</BaseURL>\xfe<</MPD>";
        let want: &[u8] = b"<MPD t=\"\xff\"><Label>\xe9\xff</Label><BaseURL>/p/TOKEN123/c0ffee42/\xe9/</BaseURL>\xfe<</MPD>";
        assert_eq!(&dash(body)[..], want);
        assert_split_invariant(ManifestKind::Dash, body);
    }

    #[test]
    fn invalid_content_id_passes_through() {
        for cid in ["", "a/b", "a?b", "a#b"] {
            let body = format!("/v/{cid}/a.ts\nhttps://o/{cid}/b.ts\n");
            let got = rewrite_all(ManifestKind::Hls, cid, "/p/t/x/", body.as_bytes());
            assert_eq!(show(&got), body);
        }
    }

    #[test]
    fn oversized_units_are_flushed_unmodified() {
        let long = "a".repeat(MAX_UNIT + 100);
        let body = format!(
            "#EXTM3U\n#EXT-X-LONG:{long}\n/v/c0ffee42/{long}.ts\n/v/c0ffee42/{long}\n/v/c0ffee42/ok.ts\n"
        );
        let want = format!(
            "#EXTM3U\n#EXT-X-LONG:{long}\n/v/c0ffee42/{long}.ts\n/v/c0ffee42/{long}\n/p/TOKEN123/c0ffee42/ok.ts\n"
        );
        assert_eq!(show(&hls(body.as_bytes())), want);
        // just below the bound is still rewritten
        let fits = "b".repeat(MAX_UNIT - "/v/c0ffee42/\n".len());
        let body = format!("/v/c0ffee42/{fits}\n");
        assert_eq!(show(&hls(body.as_bytes())), format!("{PREFIX}{fits}\n"));

        let body = format!(
            r#"<MPD><SegmentURL media="/v/c0ffee42/{long}"/><SegmentURL media="/v/c0ffee42/1.m4s"/></MPD>"#
        );
        let want = format!(
            r#"<MPD><SegmentURL media="/v/c0ffee42/{long}"/><SegmentURL media="/p/TOKEN123/c0ffee42/1.m4s"/></MPD>"#
        );
        assert_eq!(show(&dash(body.as_bytes())), want);

        for (kind, body) in [
            (
                ManifestKind::Hls,
                format!("#EXTM3U\n/v/c0ffee42/{long}\n/v/c0ffee42/ok.ts\n/v/c0ffee42/{long}"),
            ),
            (ManifestKind::Dash, body),
        ] {
            let whole = rewrite_all(kind, CID, PREFIX, body.as_bytes());
            let bytes = body.as_bytes();
            assert!(chunked(kind, bytes.chunks(1)) == whole);
            for size in [2, 7, 4096, MAX_UNIT - 1, MAX_UNIT, MAX_UNIT + 1] {
                assert!(chunked(kind, bytes.chunks(size)) == whole, "{size}");
            }
            for k in [
                1,
                20,
                MAX_UNIT,
                MAX_UNIT + 9,
                MAX_UNIT + 20,
                bytes.len() - 3,
            ] {
                let (a, b) = bytes.split_at(k);
                assert!(chunked(kind, [a, b]) == whole, "split at {k}");
            }
        }
    }

    #[test]
    fn rewriter_is_reusable_after_finish() {
        let mut rewriter = ManifestRewriter::new(ManifestKind::Hls, CID, PREFIX);
        let mut out = BytesMut::new();
        rewriter.push(b"/v/c0ffee42/a", &mut out);
        rewriter.finish(&mut out);
        rewriter.push(b"/v/c0ffee42/b\n", &mut out);
        rewriter.finish(&mut out);
        assert_eq!(show(&out), format!("{PREFIX}a{PREFIX}b\n"));
        assert!(!format!("{rewriter:?}").contains("TOKEN123"));
    }

    #[test]
    fn find_byte_matches_a_naive_search() {
        let hay: Vec<u8> = (0..200u32).map(|i| (i * 7 % 251) as u8).collect();
        for start in 0..hay.len() {
            for needle in [0u8, 1, 7, 0x80, 0xff, b'\n', b'<', hay[start]] {
                let s = &hay[start..];
                assert_eq!(find_byte(s, needle), s.iter().position(|&b| b == needle));
            }
        }
        assert_eq!(find_byte(b"", b'a'), None);
        assert_eq!(
            find_byte(&[0x01, 0x00, 0x01, 0x01, 0, 0, 0, 0, 0], 0x01),
            Some(0)
        );
        assert_eq!(
            find_byte(&[0x80, 0x81, 0x00, 0x01, 0, 0, 0, 0], 0x01),
            Some(3)
        );
    }
}
