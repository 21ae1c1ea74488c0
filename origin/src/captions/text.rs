//! Caption files in, one clean WebVTT out: WebVTT is checked cue by cue, SRT is converted.
//!
//! ```text
//!  bytes ─► UTF-8 (BOM dropped, CRLF/CR → LF) ─► blocks split on blank lines
//!    "WEBVTT…" first line  ─► WebVTT: header, NOTE/STYLE/REGION blocks dropped,
//!                              [id] timing [settings] text…  per cue
//!    else                  ─► SRT: index, timing with "," (or "."), text…;
//!                              <i> <b> <u> kept, <font …> and {\an8} codes dropped,
//!                              & < > escaped
//!  ─► cues (start < end, settings a WebVTT renderer knows) ─► "WEBVTT\n\n" + cues
//! ```
//!
//! Whatever a file holds, the output is only what a player needs: timings, known cue settings
//! and text, so a crafted file cannot smuggle blocks into the served track. Errors name the
//! line.

use std::fmt::Write as _;

/// Most cues a track may hold (a feature film has 1,000–2,000).
pub(crate) const MAX_CUES: usize = 20_000;

/// Which syntax the body is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// WebVTT (`text/vtt`).
    WebVtt,
    /// SubRip (`application/x-subrip`).
    Srt,
}

impl Format {
    /// The format a `Content-Type` names; `None` for anything else (then the body decides).
    pub(crate) fn from_content_type(ct: &str) -> Option<Self> {
        let essence = ct.split(';').next().unwrap_or("").trim();
        match essence.to_ascii_lowercase().as_str() {
            "text/vtt" => Some(Format::WebVtt),
            "application/x-subrip" | "application/srt" | "text/srt" | "text/x-srt" => {
                Some(Format::Srt)
            }
            _ => None,
        }
    }
}

/// Why a caption file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TextError {
    /// Not UTF-8.
    #[error("captions must be UTF-8 text")]
    NotUtf8,
    /// Declared `text/vtt` without the `WEBVTT` signature.
    #[error("a WebVTT file starts with the line WEBVTT")]
    NoSignature,
    /// A line that is not what it should be.
    #[error("line {line}: {what}")]
    Line {
        /// 1-based line number in the body.
        line: usize,
        /// What was wrong.
        what: String,
    },
    /// Nothing to show.
    #[error("the file has no cues")]
    Empty,
    /// More than [`MAX_CUES`].
    #[error("more than {MAX_CUES} cues")]
    TooManyCues,
}

/// One cue, times in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cue {
    /// Cue identifier (WebVTT id, or the SRT index).
    pub(crate) id: Option<String>,
    /// Start, ms.
    pub(crate) start: u64,
    /// End, ms (after `start`).
    pub(crate) end: u64,
    /// Cue settings (`align:start line:90%`), checked.
    pub(crate) settings: String,
    /// Payload lines, WebVTT cue text.
    pub(crate) text: String,
}

/// Parses a caption file. The body decides between WebVTT and SRT (a `WEBVTT` first line);
/// `declared` only makes a `text/vtt` body without that line an error instead of an SRT try.
pub(crate) fn parse(body: &[u8], declared: Option<Format>) -> Result<Vec<Cue>, TextError> {
    let text = std::str::from_utf8(body).map_err(|_| TextError::NotUtf8)?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = text.split('\n').collect();
    let vtt = is_signature(lines.first().copied().unwrap_or(""));
    let cues = if vtt {
        parse_blocks(&lines, Format::WebVtt)?
    } else if declared == Some(Format::WebVtt) {
        return Err(TextError::NoSignature);
    } else {
        parse_blocks(&lines, Format::Srt)?
    };
    if cues.is_empty() {
        return Err(TextError::Empty);
    }
    Ok(cues)
}

fn is_signature(line: &str) -> bool {
    line.strip_prefix("WEBVTT")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
}

/// Blocks of non-blank lines with the 1-based number of their first line.
fn blocks<'a>(lines: &[&'a str]) -> Vec<(usize, Vec<&'a str>)> {
    let mut out = Vec::new();
    let mut cur: Vec<&str> = Vec::new();
    let mut first = 0;
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            if !cur.is_empty() {
                out.push((first, std::mem::take(&mut cur)));
            }
        } else {
            if cur.is_empty() {
                first = i + 1;
            }
            cur.push(line);
        }
    }
    if !cur.is_empty() {
        out.push((first, cur));
    }
    out
}

fn parse_blocks(lines: &[&str], format: Format) -> Result<Vec<Cue>, TextError> {
    let mut cues = Vec::new();
    for (n, (line_no, block)) in blocks(lines).into_iter().enumerate() {
        if format == Format::WebVtt {
            if n == 0 {
                continue; // the WEBVTT header block
            }
            let head = block[0];
            if ["NOTE", "STYLE", "REGION"].iter().any(|k| {
                head == *k
                    || head.starts_with(&format!("{k} "))
                    || head.starts_with(&format!("{k}\t"))
            }) {
                continue;
            }
        }
        if cues.len() == MAX_CUES {
            return Err(TextError::TooManyCues);
        }
        cues.push(parse_cue(line_no, &block, format)?);
    }
    Ok(cues)
}

fn parse_cue(line_no: usize, block: &[&str], format: Format) -> Result<Cue, TextError> {
    let err = |line: usize, what: &str| TextError::Line {
        line,
        what: what.to_owned(),
    };
    let (id, timing_at) = if block[0].contains("-->") {
        (None, 0)
    } else {
        if block.len() < 2 || !block[1].contains("-->") {
            return Err(err(
                line_no,
                "expected a cue timing such as 00:00:01.000 --> 00:00:02.500",
            ));
        }
        let id = block[0].trim();
        if format == Format::Srt && !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(err(line_no, "an SRT cue starts with its number"));
        }
        (Some(id.to_owned()), 1)
    };
    let timing_line = line_no + timing_at;
    let (start, rest) = block[timing_at]
        .split_once("-->")
        .ok_or_else(|| err(timing_line, "no -->"))?;
    let mut parts = rest.split_whitespace();
    let start = timestamp(start.trim(), format)
        .ok_or_else(|| err(timing_line, "bad start time (hh:mm:ss.mmm)"))?;
    let end = parts
        .next()
        .and_then(|e| timestamp(e, format))
        .ok_or_else(|| err(timing_line, "bad end time (hh:mm:ss.mmm)"))?;
    if end <= start {
        return Err(err(timing_line, "the cue ends before it starts"));
    }
    let settings = match format {
        // SRT's X1:… Y2:… box coordinates have no WebVTT meaning: dropped.
        Format::Srt => String::new(),
        Format::WebVtt => {
            let mut out = Vec::new();
            for s in parts {
                if !is_known_setting(s) {
                    return Err(err(timing_line, &format!("unknown cue setting {s:?}")));
                }
                out.push(s);
            }
            out.join(" ")
        }
    };
    let mut text = String::new();
    for (i, line) in block[timing_at + 1..].iter().enumerate() {
        if line.contains("-->") {
            return Err(err(timing_line + 1 + i, "cue text holds -->"));
        }
        if !text.is_empty() {
            text.push('\n');
        }
        let clean: String = line
            .chars()
            .filter(|c| !c.is_control() || *c == '\t')
            .collect();
        match format {
            Format::WebVtt => text.push_str(clean.trim_end()),
            Format::Srt => text.push_str(&srt_to_vtt_text(clean.trim_end())),
        }
    }
    Ok(Cue {
        id: id.filter(|i| !i.is_empty()),
        start,
        end,
        settings,
        text,
    })
}

/// `[hh:]mm:ss.mmm` (SRT: `,` or `.` before the milliseconds) → ms.
fn timestamp(s: &str, format: Format) -> Option<u64> {
    let (clock, ms) = match format {
        Format::WebVtt => s.rsplit_once('.')?,
        Format::Srt => s.rsplit_once([',', '.'])?,
    };
    if ms.len() != 3 || !ms.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fields: Vec<&str> = clock.split(':').collect();
    let (h, m, sec) = match fields.as_slice() {
        [h, m, sec] => (*h, *m, *sec),
        [m, sec] => ("0", *m, *sec),
        _ => return None,
    };
    let num = |x: &str, max_len: usize| -> Option<u64> {
        if x.is_empty() || x.len() > max_len || !x.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        x.parse().ok()
    };
    let (h, m, sec) = (num(h, 6)?, num(m, 2)?, num(sec, 2)?);
    if m > 59 || sec > 59 {
        return None;
    }
    Some(((h * 60 + m) * 60 + sec) * 1000 + ms.parse::<u64>().ok()?)
}

/// The WebVTT cue settings (`name:value`, value of plain characters).
fn is_known_setting(s: &str) -> bool {
    let Some((name, value)) = s.split_once(':') else {
        return false;
    };
    ["vertical", "line", "position", "size", "align", "region"].contains(&name)
        && !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'%' | b'.' | b',' | b'-' | b'_'))
}

/// SRT cue text to WebVTT cue text: `<i> <b> <u>` (and closers) kept, other tags and `{\…}`
/// override codes dropped, `&`, `<`, `>` escaped.
fn srt_to_vtt_text(line: &str) -> String {
    const KEPT: [&str; 6] = ["<i>", "</i>", "<b>", "</b>", "<u>", "</u>"];
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(c) = rest.chars().next() {
        if c == '<' {
            if let Some(tag) = KEPT.iter().find(|t| {
                rest.get(..t.len())
                    .is_some_and(|r| r.eq_ignore_ascii_case(t))
            }) {
                out.push_str(&tag.to_ascii_lowercase());
                rest = &rest[tag.len()..];
                continue;
            }
            if let Some(end) = rest.find('>') {
                let tag = &rest[1..end];
                if tag
                    .trim_start_matches('/')
                    .starts_with(|ch: char| ch.is_ascii_alphabetic())
                {
                    rest = &rest[end + 1..]; // a tag WebVTT does not have (<font color=…>)
                    continue;
                }
            }
            out.push_str("&lt;");
        } else if c == '{' && rest.starts_with("{\\") && rest.contains('}') {
            let end = rest.find('}').unwrap_or(0);
            rest = &rest[end + 1..];
            continue;
        } else if c == '>' {
            out.push_str("&gt;");
        } else if c == '&' {
            out.push_str("&amp;");
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn clock(ms: u64) -> String {
    let (h, rem) = (ms / 3_600_000, ms % 3_600_000);
    format!(
        "{h:02}:{:02}:{:02}.{:03}",
        rem / 60_000,
        rem % 60_000 / 1000,
        rem % 1000
    )
}

/// The cues as a WebVTT file.
pub(crate) fn to_webvtt(cues: &[Cue]) -> String {
    let mut out = String::from("WEBVTT\n");
    for c in cues {
        out.push('\n');
        if let Some(id) = &c.id {
            out.push_str(id);
            out.push('\n');
        }
        let _ = write!(out, "{} --> {}", clock(c.start), clock(c.end));
        if !c.settings.is_empty() {
            out.push(' ');
            out.push_str(&c.settings);
        }
        out.push('\n');
        if !c.text.is_empty() {
            out.push_str(&c.text);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webvtt_is_checked_and_cleaned() {
        let src = "\u{feff}WEBVTT - a title\r\nKind: captions\r\n\r\nNOTE written by hand\r\n\r\n\
            STYLE\r\n::cue { color: red }\r\n\r\nintro\r\n00:01.000 --> 00:02.500 align:start line:90%\r\n\
            <v Alice>Hello</v>\r\n\r\n00:00:03.000 --> 01:00:04.250\r\nsecond\r\nline\r\n";
        let cues = parse(src.as_bytes(), Some(Format::WebVtt)).unwrap();
        assert_eq!(cues.len(), 2);
        assert_eq!(cues[0].id.as_deref(), Some("intro"));
        assert_eq!((cues[0].start, cues[0].end), (1_000, 2_500));
        assert_eq!(cues[0].settings, "align:start line:90%");
        assert_eq!(cues[1].end, 3_604_250);
        assert_eq!(
            to_webvtt(&cues),
            "WEBVTT\n\nintro\n00:00:01.000 --> 00:00:02.500 align:start line:90%\n<v Alice>Hello</v>\n\n\
             00:00:03.000 --> 01:00:04.250\nsecond\nline\n"
        );
    }

    #[test]
    fn srt_is_converted() {
        let src = "1\n00:00:01,000 --> 00:00:02,000 X1:10 X2:20 Y1:1 Y2:2\n<i>Hi</i> & <font color=\"#fff\">bye</font> 1 < 2\n\n\
            2\n00:00:02,500 --> 00:00:04,000\n{\\an8}Top\n";
        let cues = parse(src.as_bytes(), None).unwrap();
        assert_eq!(cues.len(), 2);
        assert_eq!(cues[0].text, "<i>Hi</i> &amp; bye 1 &lt; 2");
        assert_eq!(cues[0].settings, "");
        assert_eq!(cues[1].text, "Top");
        assert_eq!(
            to_webvtt(&cues),
            "WEBVTT\n\n1\n00:00:01.000 --> 00:00:02.000\n<i>Hi</i> &amp; bye 1 &lt; 2\n\n\
             2\n00:00:02.500 --> 00:00:04.000\nTop\n"
        );
    }

    #[test]
    fn bad_files_name_the_line() {
        let cases: [(&[u8], Option<Format>, &str); 9] = [
            (b"\xff\xfe", None, "UTF-8"),
            (
                b"1\n00:00:01,000 --> 00:00:02,000\nx\n",
                Some(Format::WebVtt),
                "WEBVTT",
            ),
            (b"WEBVTT\n\n", None, "no cues"),
            (
                b"WEBVTT\n\nhello\nworld\n",
                None,
                "line 3: expected a cue timing",
            ),
            (
                b"WEBVTT\n\n00:00:02.000 --> 00:00:01.000\nx\n",
                None,
                "line 3: the cue ends",
            ),
            (
                b"WEBVTT\n\n00:00:01,000 --> 00:00:02.000\nx\n",
                None,
                "line 3: bad start",
            ),
            (b"WEBVTT\n\n00:61.000 --> 00:62.000\nx\n", None, "bad start"),
            (
                b"WEBVTT\n\n00:01.000 --> 00:02.000 onerror:x\nx\n",
                None,
                "unknown cue setting",
            ),
            (
                b"one\n00:00:01,000 --> 00:00:02,000\nx\n",
                None,
                "line 1: an SRT cue starts",
            ),
        ];
        for (body, declared, want) in cases {
            let e = parse(body, declared).unwrap_err().to_string();
            assert!(e.contains(want), "{:?}: {e}", String::from_utf8_lossy(body));
        }
        let many = (0..=MAX_CUES)
            .map(|i| format!("{}\n00:00:00,000 --> 00:00:00,500\nx\n", i + 1))
            .collect::<Vec<_>>()
            .join("\n");
        assert_eq!(parse(many.as_bytes(), None), Err(TextError::TooManyCues));
    }

    #[test]
    fn content_types() {
        assert_eq!(
            Format::from_content_type("text/vtt; charset=utf-8"),
            Some(Format::WebVtt)
        );
        assert_eq!(
            Format::from_content_type("application/x-subrip"),
            Some(Format::Srt)
        );
        assert_eq!(Format::from_content_type("text/plain"), None);
    }
}
