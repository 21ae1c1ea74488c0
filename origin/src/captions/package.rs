//! The package's text tracks, written into manifests the transcoder made: an HLS `SUBTITLES`
//! group (one media playlist per language, the whole WebVTT file as its one segment) and one
//! DASH text `AdaptationSet` per language (the WebVTT file as the representation's `BaseURL`).
//!
//! Every function here is idempotent: what an earlier call added is removed first, so the
//! manifests always list exactly the tracks given, whatever they listed before.
//!
//! ```text
//!  master.m3u8                                   manifest.mpd
//!  #EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="sg-subs" <Period …>
//!    ,LANGUAGE="fr",URI="captions/fr.m3u8"          …video, audio…
//!  #EXT-X-STREAM-INF:…,SUBTITLES="sg-subs"          <!-- sg:captions -->
//!  360p/index.m3u8                                  <AdaptationSet contentType="text" lang="fr">
//!                                                     <BaseURL>captions/fr-1a2b3c4d.vtt</BaseURL>
//!  captions/fr.m3u8: #EXTINF:{duration},            <!-- /sg:captions -->
//!                    fr-1a2b3c4d.vtt              </Period>
//! ```

use std::fmt::Write as _;

use super::{Caption, CaptionKind};

/// `GROUP-ID` of the subtitles group this module owns.
const GROUP: &str = "sg-subs";
const MPD_BEGIN: &str = "<!-- sg:captions -->";
const MPD_END: &str = "<!-- /sg:captions -->";
/// First `AdaptationSet@id` of text tracks (FFmpeg numbers its own from 0).
const FIRST_SET_ID: usize = 100;
/// HLS `CHARACTERISTICS` of captions for the deaf and hard of hearing.
const SDH: &str =
    "public.accessibility.transcribes-spoken-dialog,public.accessibility.describes-music-and-sound";

/// The HLS media playlist of one track: the whole WebVTT file as one segment spanning the
/// video. `vtt` is the file's name, relative to the playlist (both live in `captions/`).
pub(crate) fn media_playlist(vtt: &str, duration_s: f64) -> String {
    let d = duration_s.max(0.001);
    format!(
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{}\n#EXT-X-MEDIA-SEQUENCE:0\n\
         #EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:{d:.3},\n{vtt}\n#EXT-X-ENDLIST\n",
        d.ceil() as u64
    )
}

/// `master` with exactly `tracks` as its subtitles group (none: the group removed).
pub(crate) fn master(master: &str, tracks: &[Caption]) -> String {
    let member = format!(",SUBTITLES=\"{GROUP}\"");
    let ours = format!("GROUP-ID=\"{GROUP}\"");
    let mut out = String::with_capacity(master.len() + tracks.len() * 200);
    let mut added = false;
    for line in master.lines() {
        if line.starts_with("#EXT-X-MEDIA:") && line.contains(&ours) {
            continue;
        }
        if let Some(attrs) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            if !added {
                for (i, t) in tracks.iter().enumerate() {
                    media_line(&mut out, t, &unique_name(tracks, i));
                }
                added = true;
            }
            out.push_str("#EXT-X-STREAM-INF:");
            out.push_str(&attrs.replace(&member, ""));
            if !tracks.is_empty() {
                out.push_str(&member);
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

fn media_line(out: &mut String, t: &Caption, name: &str) {
    let _ = write!(
        out,
        "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"{GROUP}\",NAME=\"{name}\",LANGUAGE=\"{}\",\
         DEFAULT=NO,AUTOSELECT=YES,FORCED=NO",
        t.lang
    );
    if t.kind == CaptionKind::Captions {
        let _ = write!(out, ",CHARACTERISTICS=\"{SDH}\"");
    }
    let _ = writeln!(out, ",URI=\"{}\"", t.playlist);
}

/// `NAME` must be unique in the group: a label two tracks share gets the language added.
fn unique_name(tracks: &[Caption], i: usize) -> String {
    let t = &tracks[i];
    if tracks.iter().filter(|o| o.label == t.label).count() > 1 {
        format!("{} ({})", t.label, t.lang)
    } else {
        t.label.clone()
    }
}

/// `mpd` with exactly `tracks` as text adaptation sets, before the end of its (last) period.
///
/// # Errors
/// The manifest has no `</Period>`.
pub(crate) fn mpd(mpd: &str, tracks: &[Caption], duration_s: f64) -> Result<String, String> {
    let mut base = mpd.to_owned();
    while let Some(start) = base.find(MPD_BEGIN) {
        let Some(len) = base[start..].find(MPD_END) else {
            return Err("manifest.mpd: unterminated captions block".into());
        };
        let mut end = start + len + MPD_END.len();
        if base[end..].starts_with('\n') {
            end += 1;
        }
        // Drop the indentation before the marker too.
        let line_start = base[..start].rfind('\n').map_or(0, |n| n + 1);
        let from = if base[line_start..start].trim().is_empty() {
            line_start
        } else {
            start
        };
        base.replace_range(from..end, "");
    }
    if tracks.is_empty() {
        return Ok(base);
    }
    let at = base
        .rfind("</Period>")
        .ok_or("manifest.mpd has no </Period>")?;
    let mut block = format!("\t\t{MPD_BEGIN}\n");
    for (i, t) in tracks.iter().enumerate() {
        let bandwidth = if duration_s > 0.0 {
            ((t.bytes as f64 * 8.0 / duration_s).ceil() as u64).max(1)
        } else {
            1
        };
        let role = match t.kind {
            CaptionKind::Subtitles => "subtitle",
            CaptionKind::Captions => "caption",
        };
        let _ = write!(
            block,
            "\t\t<AdaptationSet id=\"{}\" contentType=\"text\" mimeType=\"text/vtt\" lang=\"{}\">\n\
             \t\t\t<Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"{role}\"/>\n\
             \t\t\t<Label>{}</Label>\n\
             \t\t\t<Representation id=\"text-{}\" bandwidth=\"{bandwidth}\">\n\
             \t\t\t\t<BaseURL>{}</BaseURL>\n\
             \t\t\t</Representation>\n\
             \t\t</AdaptationSet>\n",
            FIRST_SET_ID + i,
            t.lang,
            xml_escape(&unique_name(tracks, i)),
            t.lang,
            t.uri,
        );
    }
    block.push_str("\t\t");
    block.push_str(MPD_END);
    block.push('\n');
    let line_start = base[..at].rfind('\n').map_or(0, |n| n + 1);
    let insert_at = if base[line_start..at].trim().is_empty() {
        line_start
    } else {
        at
    };
    base.insert_str(insert_at, &block);
    Ok(base)
}

fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(lang: &str, label: &str, kind: CaptionKind) -> Caption {
        Caption {
            lang: lang.into(),
            label: label.into(),
            kind,
            uri: format!("captions/{lang}-0123abcd.vtt"),
            playlist: format!("captions/{lang}.m3u8"),
            cues: 2,
            bytes: 1000,
            updated_at: 0,
        }
    }

    const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:7\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_A1\",NAME=\"audio\",DEFAULT=YES,URI=\"audio/index.m3u8\"\n\
        #EXT-X-STREAM-INF:BANDWIDTH=532925,RESOLUTION=426x240,CODECS=\"avc1.640015,mp4a.40.2\",AUDIO=\"group_A1\"\n\
        240p/index.m3u8\n\
        #EXT-X-STREAM-INF:BANDWIDTH=932925,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"group_A1\"\n\
        360p/index.m3u8\n\
        #EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=1000,CODECS=\"avc1.64001e\",URI=\"360p/iframes.m3u8\"\n";

    #[test]
    fn master_gains_and_loses_the_group() {
        let tracks = [
            track("en", "English", CaptionKind::Captions),
            track("fr", "Français", CaptionKind::Subtitles),
        ];
        let one = master(MASTER, &tracks);
        assert_eq!(one.matches("TYPE=SUBTITLES").count(), 2);
        assert!(one.contains(
            "NAME=\"Français\",LANGUAGE=\"fr\",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI=\"captions/fr.m3u8\"\n"
        ));
        assert!(one.contains("CHARACTERISTICS=\"public.accessibility"));
        assert_eq!(one.matches(",SUBTITLES=\"sg-subs\"").count(), 2);
        assert!(!one.contains("iframes.m3u8\",SUBTITLES"));
        // The group comes before the first variant that names it.
        assert!(one.find("TYPE=SUBTITLES").unwrap() < one.find("#EXT-X-STREAM-INF").unwrap());
        // Applying again changes nothing; applying none restores the original.
        assert_eq!(master(&one, &tracks), one);
        assert_eq!(master(&one, &[]), MASTER);
        let only_fr = master(&one, &tracks[1..]);
        assert_eq!(only_fr, master(MASTER, &tracks[1..]));
    }

    #[test]
    fn names_are_unique() {
        let tracks = [
            track("en", "English", CaptionKind::Subtitles),
            track("en-GB", "English", CaptionKind::Subtitles),
        ];
        let m = master(MASTER, &tracks);
        assert!(m.contains("NAME=\"English (en)\""), "{m}");
        assert!(m.contains("NAME=\"English (en-GB)\""), "{m}");
    }

    const MPD: &str = "<?xml version=\"1.0\"?>\n<MPD>\n\t<Period id=\"0\" start=\"PT0.0S\">\n\
        \t\t<AdaptationSet id=\"0\" contentType=\"video\">\n\t\t</AdaptationSet>\n\t</Period>\n</MPD>\n";

    #[test]
    fn mpd_gains_and_loses_text_sets() {
        let tracks = [
            track("en", "English <SDH>", CaptionKind::Captions),
            track("fr", "Français", CaptionKind::Subtitles),
        ];
        let one = mpd(MPD, &tracks, 8.0).unwrap();
        assert!(one.contains(
            "<AdaptationSet id=\"100\" contentType=\"text\" mimeType=\"text/vtt\" lang=\"en\">"
        ));
        assert!(one.contains("<Label>English &lt;SDH&gt;</Label>"));
        assert!(one.contains("value=\"caption\""));
        assert!(one.contains("<Representation id=\"text-fr\" bandwidth=\"1000\">"));
        assert!(one.contains("<BaseURL>captions/fr-0123abcd.vtt</BaseURL>"));
        assert!(one.find("sg:captions").unwrap() < one.find("</Period>").unwrap());
        assert_eq!(mpd(&one, &tracks, 8.0).unwrap(), one);
        assert_eq!(mpd(&one, &[], 8.0).unwrap(), MPD);
        assert!(mpd("<MPD/>", &tracks, 8.0).is_err());
    }

    #[test]
    fn playlist_spans_the_video() {
        let p = media_playlist("en-0123abcd.vtt", 7.5);
        assert!(p.contains("#EXT-X-TARGETDURATION:8\n"));
        assert!(p.contains("#EXTINF:7.500,\nen-0123abcd.vtt\n#EXT-X-ENDLIST\n"));
    }
}
