//! Language tags as manifests carry them: BCP 47 in canonical case (HLS `LANGUAGE`, DASH
//! `@lang`), from what a creator types (`pt-br`) or what a media file says (ISO 639-2 `fra`),
//! and the names players show for the common ones. Shared by origin (caption tracks) and the
//! transcoder (audio renditions).

/// ISO 639-2 (bibliographic and terminology) codes of languages that have a 639-1 code, as
/// BCP 47 wants the shorter one.
const ISO639_2: &[(&str, &str)] = &[
    ("ara", "ar"),
    ("ces", "cs"),
    ("chi", "zh"),
    ("cze", "cs"),
    ("dan", "da"),
    ("deu", "de"),
    ("dut", "nl"),
    ("ell", "el"),
    ("eng", "en"),
    ("fin", "fi"),
    ("fra", "fr"),
    ("fre", "fr"),
    ("ger", "de"),
    ("gre", "el"),
    ("heb", "he"),
    ("hin", "hi"),
    ("hun", "hu"),
    ("ind", "id"),
    ("ita", "it"),
    ("jpn", "ja"),
    ("kor", "ko"),
    ("nld", "nl"),
    ("nor", "no"),
    ("pol", "pl"),
    ("por", "pt"),
    ("ron", "ro"),
    ("rum", "ro"),
    ("rus", "ru"),
    ("spa", "es"),
    ("swe", "sv"),
    ("tha", "th"),
    ("tur", "tr"),
    ("ukr", "uk"),
    ("vie", "vi"),
    ("zho", "zh"),
];

/// Endonyms players show for the common languages.
const NAMES: &[(&str, &str)] = &[
    ("ar", "العربية"),
    ("cs", "Čeština"),
    ("da", "Dansk"),
    ("de", "Deutsch"),
    ("el", "Ελληνικά"),
    ("en", "English"),
    ("es", "Español"),
    ("fi", "Suomi"),
    ("fr", "Français"),
    ("he", "עברית"),
    ("hi", "हिन्दी"),
    ("hu", "Magyar"),
    ("id", "Bahasa Indonesia"),
    ("it", "Italiano"),
    ("ja", "日本語"),
    ("ko", "한국어"),
    ("nl", "Nederlands"),
    ("no", "Norsk"),
    ("pl", "Polski"),
    ("pt", "Português"),
    ("ro", "Română"),
    ("ru", "Русский"),
    ("sv", "Svenska"),
    ("th", "ไทย"),
    ("tr", "Türkçe"),
    ("uk", "Українська"),
    ("vi", "Tiếng Việt"),
    ("zh", "中文"),
];

/// A language tag of the usual BCP 47 shape (language of 2–3 letters, then script, region and
/// variant subtags of 1–8 letters or digits, 35 bytes at most) in canonical case (`pt-BR`,
/// `zh-Hant-TW`, `es-419`), with an ISO 639-2 language replaced by its 639-1 code (`fra` →
/// `fr`). `None` for anything else, and for `und` (undetermined).
pub fn canonical(raw: &str) -> Option<String> {
    if raw.is_empty() || raw.len() > 35 {
        return None;
    }
    let mut out: Vec<String> = Vec::new();
    for (i, sub) in raw.split('-').enumerate() {
        if sub.is_empty() || sub.len() > 8 || !sub.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        let alpha = sub.bytes().all(|b| b.is_ascii_alphabetic());
        out.push(match (i, sub.len(), alpha) {
            (0, 2..=3, true) => {
                let l = sub.to_ascii_lowercase();
                match ISO639_2.iter().find(|(long, _)| *long == l) {
                    Some((_, short)) => (*short).to_owned(),
                    None => l,
                }
            }
            (0, _, _) => return None,
            (_, 2, true) => sub.to_ascii_uppercase(),
            (_, 4, true) => {
                let mut s = sub.to_ascii_lowercase();
                s[..1].make_ascii_uppercase();
                s
            }
            _ => sub.to_ascii_lowercase(),
        });
    }
    if out[0] == "und" {
        return None;
    }
    Some(out.join("-"))
}

/// The name players show for a canonical tag: the language's own name for the common ones
/// (`Français`, `Português (pt-BR)`), else the tag itself.
pub fn display_name(tag: &str) -> String {
    let primary = tag.split('-').next().unwrap_or(tag);
    match NAMES.iter().find(|(code, _)| *code == primary) {
        Some((_, name)) if primary == tag => (*name).to_owned(),
        Some((_, name)) => format!("{name} ({tag})"),
        None => tag.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_canonical() {
        for (raw, want) in [
            ("en", "en"),
            ("EN", "en"),
            ("eng", "en"),
            ("fre", "fr"),
            ("pt-br", "pt-BR"),
            ("zh-hant-tw", "zh-Hant-TW"),
            ("es-419", "es-419"),
            ("sgn-ase", "sgn-ase"),
            ("haw", "haw"),
        ] {
            assert_eq!(canonical(raw).as_deref(), Some(want), "{raw}");
        }
        for bad in [
            "",
            "e",
            "english1",
            "en_US",
            "en-",
            "-en",
            "en--US",
            "../x",
            "en/../../x",
            "1a",
            "en-abcdefghi",
            "x-private",
            "und",
        ] {
            assert_eq!(canonical(bad), None, "{bad}");
        }
    }

    #[test]
    fn names() {
        assert_eq!(display_name("fr"), "Français");
        assert_eq!(display_name("pt-BR"), "Português (pt-BR)");
        assert_eq!(display_name("sw"), "sw");
    }
}
