//! The ABR ladder for one source: configured rungs capped at the source's size.

use streamgate_config::Rung;

use crate::{Error, SourceInfo};

/// One video rendition to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    /// Rung name, also the rendition's folder (`720p`).
    pub name: String,
    /// Output width, even.
    pub width: u32,
    /// Output height, even.
    pub height: u32,
    /// Average video bitrate, kbit/s.
    pub video_kbps: u32,
}

/// Lowest bitrate given to a rung synthesised for a small source.
const MIN_KBPS: u32 = 100;

/// Picks the renditions for a source of `width`x`height` (as displayed).
///
/// A rung's `height` is the short side of the output. Rungs larger than the source's short side
/// are dropped; when none remains, one rung at the source's own size (rounded down to even) is
/// made, named after its short side, with the smallest rung's bitrate scaled by pixel count.
/// The long side keeps the aspect ratio, rounded to the nearest even number.
///
/// # Errors
/// [`Error::InvalidInput`] when the source is smaller than 2x2 or `ladder` is empty.
pub fn plan(ladder: &[Rung], src: &SourceInfo) -> Result<Vec<Variant>, Error> {
    let (w, h) = (src.width, src.height);
    if w < 2 || h < 2 {
        return Err(Error::InvalidInput(format!("video is too small ({w}x{h})")));
    }
    let mut rungs: Vec<&Rung> = ladder.iter().collect();
    rungs.sort_by_key(|r| r.height);
    let smallest = *rungs
        .first()
        .ok_or_else(|| Error::InvalidInput("the ladder is empty".into()))?;
    let short = w.min(h);
    let landscape = w >= h;
    let size = |s: u32| {
        let s = s & !1;
        let long = even(f64::from(w.max(h)) * f64::from(s) / f64::from(short));
        if landscape { (long, s) } else { (s, long) }
    };
    let mut out: Vec<Variant> = rungs
        .iter()
        .filter(|r| r.height <= short)
        .map(|r| {
            let (width, height) = size(r.height);
            Variant {
                name: r.name.clone(),
                width,
                height,
                video_kbps: r.video_bitrate_kbps,
            }
        })
        .collect();
    if out.is_empty() {
        let (width, height) = size(short);
        let ratio = f64::from(short & !1) / f64::from(smallest.height);
        let kbps = (f64::from(smallest.video_bitrate_kbps) * ratio * ratio).round() as u32;
        out.push(Variant {
            name: format!("{}p", short & !1),
            width,
            height,
            video_kbps: kbps.clamp(
                MIN_KBPS.min(smallest.video_bitrate_kbps),
                smallest.video_bitrate_kbps,
            ),
        });
    }
    Ok(out)
}

/// Nearest even integer, at least 2.
fn even(x: f64) -> u32 {
    (((x / 2.0).round() as u32) * 2).max(2)
}

#[cfg(test)]
mod tests {
    use streamgate_config::default_ladder;

    use super::*;

    fn src(width: u32, height: u32) -> SourceInfo {
        SourceInfo {
            width,
            height,
            rotation: 0,
            duration_s: Some(10.0),
            fps: 30.0,
            has_audio: true,
            has_video: true,
            audio: Vec::new(),
        }
    }

    fn sizes(v: &[Variant]) -> Vec<(&str, u32, u32)> {
        v.iter()
            .map(|v| (v.name.as_str(), v.width, v.height))
            .collect()
    }

    #[test]
    fn landscape_1080p() {
        let v = plan(&default_ladder(), &src(1920, 1080)).unwrap();
        assert_eq!(
            sizes(&v),
            [("360p", 640, 360), ("540p", 960, 540), ("720p", 1280, 720)]
        );
        assert_eq!(v[2].video_kbps, 3000);
    }

    #[test]
    fn portrait_is_capped_on_short_side() {
        let v = plan(&default_ladder(), &src(720, 1280)).unwrap();
        assert_eq!(
            sizes(&v),
            [("360p", 360, 640), ("540p", 540, 960), ("720p", 720, 1280)]
        );
        let v = plan(&default_ladder(), &src(360, 640)).unwrap();
        assert_eq!(sizes(&v), [("360p", 360, 640)]);
    }

    #[test]
    fn rotated_source_uses_display_size() {
        // A phone clip stored 1920x1080 with rotation 90 is probed as 1080x1920.
        let mut s = src(1080, 1920);
        s.rotation = 90;
        let v = plan(&default_ladder(), &s).unwrap();
        assert_eq!(v[0].width, 360);
        assert_eq!(v[0].height, 640);
    }

    #[test]
    fn drops_rungs_above_source() {
        let v = plan(&default_ladder(), &src(640, 360)).unwrap();
        assert_eq!(sizes(&v), [("360p", 640, 360)]);
        let v = plan(&default_ladder(), &src(1000, 600)).unwrap();
        assert_eq!(sizes(&v), [("360p", 600, 360), ("540p", 900, 540)]);
    }

    #[test]
    fn odd_small_source_gets_one_even_rung() {
        let v = plan(&default_ladder(), &src(321, 241)).unwrap();
        assert_eq!(sizes(&v), [("240p", 320, 240)]);
        assert!(v[0].video_kbps >= 100 && v[0].video_kbps <= 800);
        let v = plan(&default_ladder(), &src(241, 321)).unwrap();
        assert_eq!(sizes(&v), [("240p", 240, 320)]);
    }

    #[test]
    fn all_dimensions_even() {
        for (w, h) in [(1919, 1079), (853, 480), (4096, 2160), (3, 2), (1080, 1350)] {
            for v in plan(&default_ladder(), &src(w, h)).unwrap() {
                assert!(v.width % 2 == 0 && v.height % 2 == 0, "{w}x{h} -> {v:?}");
            }
        }
        assert!(plan(&default_ladder(), &src(1, 100)).is_err());
        assert!(plan(&[], &src(100, 100)).is_err());
    }
}
