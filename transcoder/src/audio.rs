//! The audio side of a package: which source streams are encoded, at what rate, into which
//! folder, and how the HLS master names them.
//!
//! ```text
//!  video source, audio streams eng, fra  ─►  audio/     AAC {audio-kbps}  DEFAULT  "English" en
//!                                            audio-fr/  AAC {audio-kbps}           "Français" fr
//!    (HLS: one EXT-X-MEDIA TYPE=AUDIO per stream, NAME/LANGUAGE/CHANNELS; DASH: one audio
//!     adaptation set per stream with @lang)
//!  audio-only source (podcast, music)    ─►  aac-64k/, aac-128k/  the first stream as a ladder
//!    (HLS: each rung a variant stream, CODECS="mp4a.40.2"; DASH: one adaptation set)
//!    with more streams                   ─►  audio-en/ …  each other language once, at the top
//!    rate (HLS: an audio group on the variants, the ladder's language the default rendition
//!    inside them, the others with their playlists; DASH: an adaptation set each)
//! ```
//!
//! Languages come from the streams' `language` tags (ISO 639-2 made BCP 47: `fra` → `fr`);
//! labels from the language's name, else the stream's title, else `Audio N`.

use streamgate_config::{contract::AudioRendition, lang};

use crate::{SourceInfo, Variant, probe::AudioStream};

/// Lowest rung of an audio-only ladder, kbit/s.
const LOW_KBPS: u32 = 64;
/// Channels every audio rendition is encoded with (`-ac 2`).
pub(crate) const CHANNELS: u32 = 2;

/// One audio output stream of the FFmpeg run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AudioOut {
    /// Index among the source's audio streams (`-map 0:a:{source}`).
    pub(crate) source: usize,
    /// AAC bit rate, kbit/s.
    pub(crate) kbps: u32,
    /// Folder in the package.
    pub(crate) folder: String,
    /// BCP 47 tag, when the stream has one.
    pub(crate) language: Option<String>,
    /// Name players show.
    pub(crate) label: String,
}

impl AudioOut {
    /// What the package reports about it.
    pub(crate) fn rendition(&self) -> AudioRendition {
        AudioRendition {
            name: self.folder.clone(),
            language: self.language.clone(),
            label: self.label.clone(),
            channels: CHANNELS,
            bitrate: u64::from(self.kbps) * 1000,
        }
    }
}

/// The audio outputs for `info`: one per source stream of a video (every language kept), or an
/// audio-only source's first stream as a ladder (64 kbit/s and `kbps`). Folders never collide
/// with the rungs' names.
pub(crate) fn plan(info: &SourceInfo, variants: &[Variant], kbps: u32) -> Vec<AudioOut> {
    let taken = |name: &str| variants.iter().any(|v| v.name == name);
    let unique = |mut name: String| {
        while taken(&name) {
            name.push_str("_track");
        }
        name
    };
    let mut outs: Vec<AudioOut> = Vec::with_capacity(info.audio.len() + 1);
    if !info.has_video {
        let Some(first) = info.audio.first() else {
            return Vec::new();
        };
        let mut rates = vec![LOW_KBPS.min(kbps), kbps];
        rates.dedup();
        outs.extend(rates.into_iter().map(|k| AudioOut {
            source: 0,
            kbps: k,
            folder: unique(format!("aac-{k}k")),
            language: first.language.clone(),
            label: label(first, 0),
        }));
    }
    for (i, s) in info.audio.iter().enumerate() {
        if i == 0 && !info.has_video {
            continue; // the ladder above
        }
        let base = match (i, &s.language) {
            (0, _) => "audio".to_owned(),
            (_, Some(l)) if !outs.iter().any(|o| o.language.as_ref() == Some(l)) => {
                format!("audio-{}", l.to_ascii_lowercase())
            }
            _ => format!("audio-{}", i + 1),
        };
        let mut label = label(s, i);
        if outs.iter().any(|o| o.label == label) {
            label = format!("{label} {}", i + 1);
        }
        outs.push(AudioOut {
            source: i,
            kbps,
            folder: unique(base),
            language: s.language.clone(),
            label,
        });
    }
    outs
}

/// The language's name, else the stream's title, else `Audio N`; quotable in a manifest.
fn label(s: &AudioStream, i: usize) -> String {
    if let Some(l) = &s.language {
        return lang::display_name(l);
    }
    let title: String = s
        .title
        .as_deref()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(64)
        .collect();
    if title.trim().is_empty() {
        format!("Audio {}", i + 1)
    } else {
        title.trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(has_video: bool, langs: &[Option<&str>]) -> SourceInfo {
        SourceInfo {
            width: if has_video { 640 } else { 0 },
            height: if has_video { 360 } else { 0 },
            rotation: 0,
            duration_s: Some(10.0),
            fps: 30.0,
            has_audio: !langs.is_empty(),
            has_video,
            audio: langs
                .iter()
                .map(|l| AudioStream {
                    language: l.map(str::to_owned),
                    title: None,
                })
                .collect(),
        }
    }

    fn rung(name: &str) -> Variant {
        Variant {
            name: name.into(),
            width: 640,
            height: 360,
            video_kbps: 800,
        }
    }

    #[test]
    fn every_language_of_a_video_is_kept() {
        let outs = plan(
            &info(true, &[Some("en"), Some("fr"), None, Some("fr")]),
            &[rung("360p")],
            128,
        );
        let got: Vec<_> = outs
            .iter()
            .map(|o| (o.source, o.folder.as_str(), o.label.as_str(), o.kbps))
            .collect();
        assert_eq!(
            got,
            [
                (0, "audio", "English", 128),
                (1, "audio-fr", "Français", 128),
                (2, "audio-3", "Audio 3", 128),
                (3, "audio-4", "Français 4", 128),
            ]
        );
        assert_eq!(outs[0].rendition().bitrate, 128_000);
    }

    #[test]
    fn audio_only_is_a_ladder_of_the_first_stream_and_the_other_languages() {
        let outs = plan(&info(false, &[Some("de"), Some("en")]), &[], 128);
        let got: Vec<_> = outs
            .iter()
            .map(|o| (o.source, o.folder.as_str(), o.kbps, o.language.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                (0, "aac-64k", 64, Some("de")),
                (0, "aac-128k", 128, Some("de")),
                (1, "audio-en", 128, Some("en"))
            ]
        );
        assert_eq!(plan(&info(false, &[None]), &[], 48).len(), 1);
        assert!(plan(&info(true, &[]), &[rung("360p")], 128).is_empty());
    }

    #[test]
    fn folders_avoid_rung_names() {
        let outs = plan(&info(true, &[None]), &[rung("audio")], 96);
        assert_eq!(outs[0].folder, "audio_track");
    }

    #[test]
    fn titles_are_made_quotable() {
        let s = AudioStream {
            language: None,
            title: Some("Director's \"cut\"\n".into()),
        };
        assert_eq!(label(&s, 0), "Director's cut");
    }
}
