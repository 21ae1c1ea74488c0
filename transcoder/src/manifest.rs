//! Text work on FFmpeg's manifests: renaming representation folders after the rungs, reading
//! playlists, and checking that a package is complete before it is published.

use std::path::Path;

use streamgate_config::contract::is_valid_media_path;

use crate::{
    Error,
    audio::{AudioOut, CHANNELS},
};

/// File name of each rendition's HLS media playlist inside its folder.
pub(crate) const MEDIA_PLAYLIST: &str = "index.m3u8";

/// Rewrites FFmpeg's `media_{index}.m3u8` for a playlist living in its rendition's folder:
/// `{index}/seg-00001.m4s` becomes `seg-00001.m4s`, and wall-clock `EXT-X-PROGRAM-DATE-TIME`
/// tags (meaningless for VOD) are dropped.
pub(crate) fn rewrite_media_playlist(text: &str, index: usize) -> Result<String, Error> {
    let prefix = format!("{index}/");
    let map_prefix = format!("#EXT-X-MAP:URI=\"{prefix}");
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let line = line.trim_end();
        if line.starts_with("#EXT-X-PROGRAM-DATE-TIME") {
            continue;
        }
        if let Some(rest) = line.strip_prefix(&map_prefix) {
            out.push_str("#EXT-X-MAP:URI=\"");
            out.push_str(rest);
        } else if line.is_empty() || line.starts_with('#') {
            out.push_str(line);
        } else if let Some(rest) = line.strip_prefix(&prefix) {
            out.push_str(rest);
        } else {
            return Err(Error::Package(format!(
                "unexpected segment uri {line:?} in media_{index}.m3u8"
            )));
        }
        out.push('\n');
    }
    Ok(out)
}

/// Points FFmpeg's master playlist at the renamed media playlists: `media_{i}.m3u8` becomes
/// `{folder}/index.m3u8` and the audio group member is named after its folder.
pub(crate) fn rewrite_master(text: &str, folders: &[String]) -> String {
    let mut out = text.to_owned();
    for (i, folder) in folders.iter().enumerate() {
        out = out.replace(
            &format!("\"media_{i}.m3u8\""),
            &format!("\"{folder}/{MEDIA_PLAYLIST}\""),
        );
        out = out.replace(
            &format!("NAME=\"audio_{i}\""),
            &format!("NAME=\"{folder}\""),
        );
    }
    out.lines()
        .map(|l| {
            match l
                .trim()
                .strip_prefix("media_")
                .and_then(|r| r.strip_suffix(".m3u8"))
            {
                Some(i) => match i.parse::<usize>().ok().and_then(|i| folders.get(i)) {
                    Some(folder) => format!("{folder}/{MEDIA_PLAYLIST}\n"),
                    None => format!("{l}\n"),
                },
                None => format!("{l}\n"),
            }
        })
        .collect()
}

/// Describes the audio renditions of a video's master: FFmpeg writes each as
/// `#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=…,NAME=…,DEFAULT=…,URI="{folder}/index.m3u8"` without a
/// language; each line naming one of `outs` is rewritten with its `NAME`, `LANGUAGE`,
/// `AUTOSELECT` and `CHANNELS` (the group and `DEFAULT` kept).
pub(crate) fn describe_audio(text: &str, outs: &[AudioOut]) -> String {
    let mut out = String::with_capacity(text.len() + outs.len() * 64);
    for line in text.lines() {
        let described = line
            .strip_prefix("#EXT-X-MEDIA:")
            .filter(|attrs| attrs.contains("TYPE=AUDIO"))
            .and_then(|attrs| {
                let a = outs.iter().find(|a| {
                    attrs.contains(&format!("URI=\"{}/{MEDIA_PLAYLIST}\"", a.folder))
                })?;
                let attr = |name: &str| {
                    attrs
                        .split(',')
                        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                };
                let group = attr("GROUP-ID")?;
                let default = attr("DEFAULT").unwrap_or("NO");
                let language = a
                    .language
                    .as_deref()
                    .map(|l| format!(",LANGUAGE=\"{l}\""))
                    .unwrap_or_default();
                Some(format!(
                    "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID={group},NAME=\"{}\"{language},DEFAULT={default},\
                     AUTOSELECT=YES,CHANNELS=\"{CHANNELS}\",URI=\"{}/{MEDIA_PLAYLIST}\"",
                    a.label, a.folder
                ))
            });
        out.push_str(described.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
}

/// `GROUP-ID` of the audio group of an audio-only package with several languages.
const AUDIO_ONLY_GROUP: &str = "sg-audio";

/// An audio-only master whose source had several languages: FFmpeg lists every audio output
/// as a variant stream, so a player would switch languages as it switches bit rates. The
/// other languages' variants become renditions of an audio group every ladder variant names;
/// the ladder's own language is the group's default rendition, carried in the variants
/// themselves (no `URI`). Unchanged when there is no other language.
pub(crate) fn group_audio_only(text: &str, outs: &[AudioOut]) -> String {
    let Some(main) = outs.first() else {
        return text.to_owned();
    };
    let alternates: Vec<&AudioOut> = outs.iter().filter(|o| o.source != main.source).collect();
    if alternates.is_empty() {
        return text.to_owned();
    }
    let playlist = |o: &AudioOut| format!("{}/{MEDIA_PLAYLIST}", o.folder);
    let media = |o: &AudioOut, default: bool, uri: Option<String>| {
        let language = o
            .language
            .as_deref()
            .map(|l| format!(",LANGUAGE=\"{l}\""))
            .unwrap_or_default();
        let uri = uri.map(|u| format!(",URI=\"{u}\"")).unwrap_or_default();
        format!(
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{AUDIO_ONLY_GROUP}\",NAME=\"{}\"{language},\
             DEFAULT={},AUTOSELECT=YES,CHANNELS=\"{CHANNELS}\"{uri}\n",
            o.label,
            if default { "YES" } else { "NO" }
        )
    };
    let mut out = String::with_capacity(text.len() + 256);
    let mut lines = text.lines();
    let mut grouped = false;
    while let Some(line) = lines.next() {
        if let Some(attrs) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            let uri = lines.next().unwrap_or("").trim();
            if alternates.iter().any(|a| playlist(a) == uri) {
                continue; // a language, not a bit rate
            }
            if !grouped {
                out.push_str(&media(main, true, None));
                for a in &alternates {
                    out.push_str(&media(a, false, Some(playlist(a))));
                }
                grouped = true;
            }
            out.push_str(&format!(
                "#EXT-X-STREAM-INF:{attrs},AUDIO=\"{AUDIO_ONLY_GROUP}\"\n{uri}\n"
            ));
        } else if !line.trim().is_empty() {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Names each DASH `Representation` after its folder, so that the `$RepresentationID$/…`
/// templates FFmpeg wrote resolve to the renamed folders.
pub(crate) fn rewrite_mpd(text: &str, folders: &[String]) -> Result<String, Error> {
    let mut out = text.to_owned();
    for (i, folder) in folders.iter().enumerate() {
        let from = format!("<Representation id=\"{i}\"");
        if !out.contains(&from) {
            return Err(Error::Package(format!(
                "manifest.mpd has no representation {i}"
            )));
        }
        out = out.replacen(&from, &format!("<Representation id=\"{folder}\""), 1);
    }
    Ok(out)
}

/// How an encrypted package announces its key: the key id and where the license is asked
/// for, written as `/v/{id}/license` (the edge rewrites it under each viewer's token prefix,
/// like every other absolute URI in a manifest).
#[derive(Debug, Clone)]
pub(crate) struct KeyAnnouncement {
    /// Key id, 16 bytes.
    pub(crate) kid: [u8; 16],
    /// The license URL as written in the package.
    pub(crate) license: String,
}

impl KeyAnnouncement {
    fn hls_attributes(&self) -> String {
        format!(
            "METHOD=SAMPLE-AES-CTR,KEYFORMAT=\"org.w3.clearkey\",KEYFORMATVERSIONS=\"1\",URI=\"{}\",KEYID=0x{}",
            self.license,
            hex_upper(&self.kid)
        )
    }

    /// The key id as a UUID (`cenc:default_KID`).
    fn kid_uuid(&self) -> String {
        let h = hex_upper(&self.kid).to_ascii_lowercase();
        format!(
            "{}-{}-{}-{}-{}",
            &h[..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..]
        )
    }
}

fn hex_upper(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02X}")).collect()
}

/// Puts the `#EXT-X-KEY` of the ClearKey system before the first `#EXT-X-MAP` (so init and
/// media segments are both under it) of a media or I-frame playlist.
pub(crate) fn key_media_playlist(text: &str, key: &KeyAnnouncement) -> Result<String, Error> {
    let at = text
        .find("#EXT-X-MAP:")
        .ok_or_else(|| Error::Package("media playlist has no EXT-X-MAP".into()))?;
    Ok(format!(
        "{}#EXT-X-KEY:{}\n{}",
        &text[..at],
        key.hls_attributes(),
        &text[at..]
    ))
}

/// Announces the key in the master playlist (`#EXT-X-SESSION-KEY`, after the header lines), so
/// a player can set up the key system before it loads a media playlist.
pub(crate) fn key_master(text: &str, key: &KeyAnnouncement) -> String {
    let line = format!("#EXT-X-SESSION-KEY:{}\n", key.hls_attributes());
    let mut out = String::with_capacity(text.len() + line.len());
    let mut placed = false;
    for l in text.split_inclusive('\n') {
        let header = l.starts_with("#EXTM3U")
            || l.starts_with("#EXT-X-VERSION")
            || l.starts_with("#EXT-X-INDEPENDENT-SEGMENTS");
        if !placed && !header {
            out.push_str(&line);
            placed = true;
        }
        out.push_str(l);
    }
    if !placed {
        out.push_str(&line);
    }
    out
}

/// Adds the Common Encryption and ClearKey `ContentProtection` descriptors to every
/// `AdaptationSet` of the MPD (with the license URL in `dashif:Laurl`, which the edge rewrites
/// per viewer like `BaseURL`), and their namespaces to the root.
pub(crate) fn key_mpd(text: &str, key: &KeyAnnouncement) -> Result<String, Error> {
    let root = text
        .find("<MPD ")
        .ok_or_else(|| Error::Package("manifest.mpd has no MPD element".into()))?;
    let mut out = String::with_capacity(text.len() + 1024);
    out.push_str(&text[..root]);
    out.push_str("<MPD xmlns:cenc=\"urn:mpeg:cenc:2013\" xmlns:dashif=\"https://dashif.org/CPS\" ");
    let descriptors = format!(
        "<ContentProtection schemeIdUri=\"urn:mpeg:dash:mp4protection:2011\" value=\"cenc\" cenc:default_KID=\"{}\"/>\
<ContentProtection schemeIdUri=\"urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e\" value=\"ClearKey1.0\">\
<dashif:Laurl Lic_type=\"EME-1.0\">{}</dashif:Laurl></ContentProtection>",
        key.kid_uuid(),
        key.license
    );
    let mut rest = &text[root + "<MPD ".len()..];
    let mut sets = 0;
    while let Some(at) = rest.find("<AdaptationSet") {
        let end = rest[at..]
            .find('>')
            .map(|e| at + e + 1)
            .ok_or_else(|| Error::Package("manifest.mpd: unterminated AdaptationSet".into()))?;
        out.push_str(&rest[..end]);
        out.push_str(&descriptors);
        rest = &rest[end..];
        sets += 1;
    }
    out.push_str(rest);
    if sets == 0 {
        return Err(Error::Package("manifest.mpd has no AdaptationSet".into()));
    }
    Ok(out)
}

/// Every object a playlist references: URI lines and `URI="…"` attributes (`EXT-X-MAP`,
/// `EXT-X-MEDIA`), in order. Key URIs (`EXT-X-KEY`, `EXT-X-SESSION-KEY`) name the license
/// endpoint, not an object, and are left out.
pub fn playlist_uris(text: &str) -> Vec<String> {
    let mut uris = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            uris.push(line.to_owned());
            continue;
        }
        // A key's URI names the license endpoint, not an object of the package.
        if line.starts_with("#EXT-X-KEY:") || line.starts_with("#EXT-X-SESSION-KEY:") {
            continue;
        }
        if let Some(at) = line.find("URI=\"") {
            let rest = &line[at + 5..];
            if let Some(end) = rest.find('"') {
                uris.push(rest[..end].to_owned());
            }
        }
    }
    uris
}

/// Sum of `#EXTINF` durations, seconds.
pub fn extinf_total(text: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("#EXTINF:"))
        .filter_map(|v| v.split(',').next()?.trim().parse::<f64>().ok())
        .sum()
}

/// One `EXT-X-STREAM-INF` of a master playlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterVariant {
    /// The media playlist it points at.
    pub uri: String,
    /// `BANDWIDTH`, bits per second.
    pub bandwidth: u64,
    /// `RESOLUTION` as (width, height), when present.
    pub resolution: Option<(u32, u32)>,
}

/// The variant streams of a master playlist.
pub fn master_variants(text: &str) -> Vec<MasterVariant> {
    let mut out = Vec::new();
    let mut lines = text.lines().map(str::trim);
    while let Some(line) = lines.next() {
        let Some(attrs) = line.strip_prefix("#EXT-X-STREAM-INF:") else {
            continue;
        };
        let attr = |name: &str| {
            attrs
                .split(',')
                .find_map(|kv| kv.trim().strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
        };
        let bandwidth = attr("BANDWIDTH").and_then(|b| b.parse().ok()).unwrap_or(0);
        let resolution = attr("RESOLUTION").and_then(|r| {
            let (w, h) = r.split_once('x')?;
            Some((w.parse().ok()?, h.parse().ok()?))
        });
        if let Some(uri) = lines
            .by_ref()
            .find(|l| !l.is_empty() && !l.starts_with('#'))
        {
            out.push(MasterVariant {
                uri: uri.to_owned(),
                bandwidth,
                resolution,
            });
        }
    }
    out
}

/// Checks a package directory: both manifests exist, every playlist the master references
/// exists, and every segment and init file those playlists reference exists and is non-empty.
///
/// # Errors
/// [`Error::Package`] naming the first missing or empty file.
pub(crate) async fn verify(dir: &Path, mpd: &str, master: &str) -> Result<(), Error> {
    for name in [mpd, master] {
        non_empty(dir, name).await?;
    }
    let master_text = read(dir, master).await?;
    let playlists = playlist_uris(&master_text);
    if playlists.is_empty() {
        return Err(Error::Package("master playlist references nothing".into()));
    }
    for playlist in playlists {
        let text = read(dir, &playlist).await?;
        let base = playlist.rsplit_once('/').map(|(b, _)| b);
        let uris = playlist_uris(&text);
        if !uris.iter().any(|u| u.ends_with(".m4s")) {
            return Err(Error::Package(format!("{playlist} has no segments")));
        }
        for uri in uris {
            let path = base.map_or_else(|| uri.clone(), |b| format!("{b}/{uri}"));
            non_empty(dir, &path).await?;
        }
    }
    Ok(())
}

async fn read(dir: &Path, rel: &str) -> Result<String, Error> {
    non_empty(dir, rel).await?;
    let path = dir.join(rel);
    tokio::fs::read_to_string(&path)
        .await
        .map_err(Error::io("reading", path))
}

async fn non_empty(dir: &Path, rel: &str) -> Result<(), Error> {
    if !is_valid_media_path(rel) {
        return Err(Error::Package(format!("bad path {rel:?} in a manifest")));
    }
    match tokio::fs::metadata(dir.join(rel)).await {
        Ok(m) if m.is_file() && m.len() > 0 => Ok(()),
        Ok(_) => Err(Error::Package(format!("{rel} is empty"))),
        Err(_) => Err(Error::Package(format!("{rel} is missing"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEDIA: &str = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"1/init.mp4\"\n\
        #EXTINF:2.000000,\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:00.000+0000\n1/seg-00001.m4s\n\
        #EXTINF:1.500000,\n1/seg-00002.m4s\n#EXT-X-ENDLIST\n";

    const MASTER: &str = "#EXTM3U\n#EXT-X-VERSION:7\n\
        #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_A1\",NAME=\"audio_2\",DEFAULT=YES,URI=\"media_2.m3u8\"\n\
        #EXT-X-STREAM-INF:BANDWIDTH=532925,RESOLUTION=426x240,CODECS=\"avc1.640015,mp4a.40.2\",AUDIO=\"group_A1\"\n\
        media_0.m3u8\n\n\
        #EXT-X-STREAM-INF:BANDWIDTH=932925,RESOLUTION=640x360,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"group_A1\"\n\
        media_1.m3u8\n";

    fn folders() -> Vec<String> {
        ["240p", "360p", "audio"].map(String::from).to_vec()
    }

    #[test]
    fn media_playlist_is_relative_to_its_folder() {
        let out = rewrite_media_playlist(MEDIA, 1).unwrap();
        assert_eq!(
            playlist_uris(&out),
            ["init.mp4", "seg-00001.m4s", "seg-00002.m4s"]
        );
        assert!(!out.contains("PROGRAM-DATE-TIME"));
        assert!((extinf_total(&out) - 3.5).abs() < 1e-9);
        assert!(rewrite_media_playlist(MEDIA, 0).is_err());
    }

    #[test]
    fn master_points_at_folders() {
        let out = rewrite_master(MASTER, &folders());
        assert_eq!(
            playlist_uris(&out),
            ["audio/index.m3u8", "240p/index.m3u8", "360p/index.m3u8"]
        );
        assert!(out.contains("NAME=\"audio\""));
        let v = master_variants(&out);
        assert_eq!(v.len(), 2);
        assert_eq!(v[1].uri, "360p/index.m3u8");
        assert_eq!(v[1].bandwidth, 932_925);
        assert_eq!(v[0].resolution, Some((426, 240)));
    }

    #[test]
    fn audio_renditions_get_languages() {
        let master = "#EXTM3U\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_A1\",NAME=\"audio\",DEFAULT=YES,URI=\"audio/index.m3u8\"\n\
            #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_A1\",NAME=\"audio-fr\",DEFAULT=NO,URI=\"audio-fr/index.m3u8\"\n\
            #EXT-X-STREAM-INF:BANDWIDTH=1,CODECS=\"avc1.64001e,mp4a.40.2\",AUDIO=\"group_A1\"\n360p/index.m3u8\n";
        let out = |folder: &str, language: Option<&str>, label: &str| AudioOut {
            source: 0,
            kbps: 128,
            folder: folder.into(),
            language: language.map(str::to_owned),
            label: label.into(),
        };
        let got = describe_audio(
            master,
            &[
                out("audio", None, "Audio 1"),
                out("audio-fr", Some("fr"), "Français"),
            ],
        );
        assert!(got.contains(
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"group_A1\",NAME=\"Audio 1\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio/index.m3u8\"\n"
        ), "{got}");
        assert!(got.contains(
            "NAME=\"Français\",LANGUAGE=\"fr\",DEFAULT=NO,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio-fr/index.m3u8\"\n"
        ), "{got}");
        assert!(got.ends_with("AUDIO=\"group_A1\"\n360p/index.m3u8\n"));
    }

    #[test]
    fn audio_only_languages_become_a_group() {
        let master = "#EXTM3U\n#EXT-X-VERSION:7\n\
            #EXT-X-STREAM-INF:BANDWIDTH=67734,CODECS=\"mp4a.40.2\"\naac-64k/index.m3u8\n\n\
            #EXT-X-STREAM-INF:BANDWIDTH=128000,CODECS=\"mp4a.40.2\"\naac-128k/index.m3u8\n\n\
            #EXT-X-STREAM-INF:BANDWIDTH=128000,CODECS=\"mp4a.40.2\"\naudio-en/index.m3u8\n";
        let out = |source: usize, folder: &str, language: &str, label: &str| AudioOut {
            source,
            kbps: 128,
            folder: folder.into(),
            language: Some(language.into()),
            label: label.into(),
        };
        let outs = [
            out(0, "aac-64k", "de", "Deutsch"),
            out(0, "aac-128k", "de", "Deutsch"),
            out(1, "audio-en", "en", "English"),
        ];
        let got = group_audio_only(master, &outs);
        assert_eq!(
            got,
            "#EXTM3U\n#EXT-X-VERSION:7\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"sg-audio\",NAME=\"Deutsch\",LANGUAGE=\"de\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\"\n\
             #EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"sg-audio\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=NO,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio-en/index.m3u8\"\n\
             #EXT-X-STREAM-INF:BANDWIDTH=67734,CODECS=\"mp4a.40.2\",AUDIO=\"sg-audio\"\naac-64k/index.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=128000,CODECS=\"mp4a.40.2\",AUDIO=\"sg-audio\"\naac-128k/index.m3u8\n"
        );
        assert_eq!(master_variants(&got).len(), 2);
        // One language: nothing to group.
        assert_eq!(group_audio_only(master, &outs[..2]), master);
    }

    #[test]
    fn mpd_representations_are_renamed() {
        let mpd = "<Representation id=\"0\" a><SegmentTemplate initialization=\"$RepresentationID$/init.mp4\"/>\
            <Representation id=\"1\" b><Representation id=\"2\" c>";
        let out = rewrite_mpd(mpd, &folders()).unwrap();
        assert!(out.contains("<Representation id=\"240p\" a>"));
        assert!(out.contains("<Representation id=\"audio\" c>"));
        assert!(out.contains("$RepresentationID$/init.mp4"));
        assert!(rewrite_mpd("<Representation id=\"0\"", &folders()).is_err());
    }

    fn announcement() -> KeyAnnouncement {
        KeyAnnouncement {
            kid: [0xab; 16],
            license: "/v/c0ffee/license".into(),
        }
    }

    #[test]
    fn encrypted_playlists_announce_the_clearkey_key_before_the_init_segment() {
        let media = "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:4\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.0,\nseg-00001.m4s\n";
        let out = key_media_playlist(media, &announcement()).unwrap();
        let key_at = out
            .find("#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,KEYFORMAT=\"org.w3.clearkey\"")
            .unwrap();
        assert!(key_at < out.find("#EXT-X-MAP").unwrap());
        assert!(out.contains("URI=\"/v/c0ffee/license\",KEYID=0xABABABABABABABABABABABABABABABAB"));
        assert!(key_media_playlist("#EXTM3U\n", &announcement()).is_err());
        let master = "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-STREAM-INF:BANDWIDTH=1\n360p/index.m3u8\n";
        let out = key_master(master, &announcement());
        assert!(
            out.starts_with("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES-CTR"),
            "{out}"
        );
        assert_eq!(
            playlist_uris(&out).last().map(String::as_str),
            Some("360p/index.m3u8")
        );
    }

    #[test]
    fn encrypted_mpd_has_cenc_and_clearkey_descriptors_in_every_adaptation_set() {
        let mpd = "<?xml?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\">\n<Period><AdaptationSet id=\"0\" contentType=\"video\">\n<Representation/></AdaptationSet><AdaptationSet id=\"1\">\n<Representation/></AdaptationSet></Period></MPD>";
        let out = key_mpd(mpd, &announcement()).unwrap();
        assert!(out.contains(
            "<MPD xmlns:cenc=\"urn:mpeg:cenc:2013\" xmlns:dashif=\"https://dashif.org/CPS\" xmlns="
        ));
        assert_eq!(
            out.matches("cenc:default_KID=\"abababab-abab-abab-abab-abababababab\"")
                .count(),
            2
        );
        assert_eq!(
            out.matches("<dashif:Laurl Lic_type=\"EME-1.0\">/v/c0ffee/license</dashif:Laurl>")
                .count(),
            2
        );
        assert!(out.find("ContentProtection").unwrap() < out.find("<Representation").unwrap());
        assert!(key_mpd("<MPD></MPD>", &announcement()).is_err());
    }

    #[tokio::test]
    async fn verify_finds_missing_and_empty_segments() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("360p")).unwrap();
        std::fs::write(d.join("manifest.mpd"), "<MPD/>").unwrap();
        std::fs::write(
            d.join("master.m3u8"),
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n360p/index.m3u8\n",
        )
        .unwrap();
        std::fs::write(
            d.join("360p/index.m3u8"),
            rewrite_media_playlist(MEDIA, 1).unwrap(),
        )
        .unwrap();
        std::fs::write(d.join("360p/init.mp4"), "x").unwrap();
        std::fs::write(d.join("360p/seg-00001.m4s"), "x").unwrap();
        let e = verify(d, "manifest.mpd", "master.m3u8").await.unwrap_err();
        assert!(
            e.to_string().contains("360p/seg-00002.m4s is missing"),
            "{e}"
        );
        std::fs::write(d.join("360p/seg-00002.m4s"), "").unwrap();
        let e = verify(d, "manifest.mpd", "master.m3u8").await.unwrap_err();
        assert!(e.to_string().contains("is empty"), "{e}");
        std::fs::write(d.join("360p/seg-00002.m4s"), "x").unwrap();
        verify(d, "manifest.mpd", "master.m3u8").await.unwrap();
    }
}
