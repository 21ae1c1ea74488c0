//! One simulated HLS player: (grant →) master playlist → one rendition's media playlist → init
//! segment → media segments in order, at real-time pace (each segment due at the player's start
//! plus the durations before it, as a player with a full buffer would ask) or as fast as
//! possible; at the end of the playlist it starts over (VOD on repeat) until the run ends.

use std::time::{Duration, Instant};

use reqwest::Url;
use serde::Deserialize;

use crate::{
    Pace,
    stats::{Kind, Live, Stats},
};

/// Where a player gets its stream from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A tokenized master playlist URL.
    Url(Url),
    /// `GET {edge}/v1/playback/{content}` with this session, then the granted `hls` URL.
    Grant {
        /// The edge's base URL.
        edge: Url,
        /// Content id.
        content: String,
        /// Session token (Bearer).
        session: String,
    },
}

/// A media playlist: the init segment and the segments with their durations.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaPlaylist {
    /// `EXT-X-MAP` URI.
    pub init: Option<Url>,
    /// `(URI, seconds)` in order.
    pub segments: Vec<(Url, f64)>,
}

/// Variant URIs of a master playlist, resolved against `base`.
pub fn parse_master(base: &Url, text: &str) -> Vec<Url> {
    let mut out = Vec::new();
    let mut next_is_variant = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with("#EXT-X-STREAM-INF") {
            next_is_variant = true;
        } else if next_is_variant && !line.is_empty() && !line.starts_with('#') {
            if let Ok(u) = base.join(line) {
                out.push(u);
            }
            next_is_variant = false;
        }
    }
    out
}

/// The init segment and segments of a media playlist, resolved against `base`.
pub fn parse_media(base: &Url, text: &str) -> MediaPlaylist {
    let mut init = None;
    let mut segments = Vec::new();
    let mut duration = None;
    for line in text.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("#EXT-X-MAP:") {
            init = rest
                .split_once("URI=\"")
                .and_then(|(_, r)| r.split_once('"'))
                .and_then(|(u, _)| base.join(u).ok());
        } else if let Some(rest) = line.strip_prefix("#EXTINF:") {
            duration = rest.split(',').next().and_then(|d| d.trim().parse().ok());
        } else if !line.is_empty()
            && !line.starts_with('#')
            && let Ok(u) = base.join(line)
        {
            segments.push((u, duration.take().unwrap_or(0.0)));
        }
    }
    MediaPlaylist { init, segments }
}

#[derive(Deserialize)]
struct Grant {
    hls: String,
}

/// The outcome of one request.
struct Fetched {
    text: Option<String>,
    ok: bool,
}

/// Runs one player until `deadline`; returns what it measured.
pub async fn play(
    http: reqwest::Client,
    source: Source,
    index: usize,
    pace: Pace,
    deadline: Instant,
    live: &Live,
) -> Stats {
    let mut stats = Stats::default();
    let started = Instant::now();
    let master_url = match resolve(&http, &source, &mut stats, live).await {
        Some(u) => u,
        None => return stats,
    };
    let mut first_segment = true;
    while Instant::now() < deadline {
        let master = fetch(&http, &master_url, Kind::Master, true, &mut stats, live).await;
        let Some(text) = master.text.filter(|_| master.ok) else {
            backoff(deadline).await;
            continue;
        };
        let variants = parse_master(&master_url, &text);
        let Some(variant) = variants.get(index % variants.len().max(1)).cloned() else {
            stats.error("no_variant");
            return stats;
        };
        let media = fetch(&http, &variant, Kind::Playlist, true, &mut stats, live).await;
        let Some(text) = media.text.filter(|_| media.ok) else {
            backoff(deadline).await;
            continue;
        };
        let playlist = parse_media(&variant, &text);
        if let Some(init) = &playlist.init {
            fetch(&http, init, Kind::Init, false, &mut stats, live).await;
        }
        if playlist.segments.is_empty() {
            stats.error("empty_playlist");
            return stats;
        }
        let playback_start = Instant::now();
        let mut due = Duration::ZERO;
        for (url, seconds) in &playlist.segments {
            if Instant::now() >= deadline {
                break;
            }
            if pace == Pace::Realtime {
                // A player asks for the next segment when the buffer has room: here, one
                // segment ahead of the play-out position.
                let at = playback_start + due;
                if at >= deadline {
                    return stats;
                }
                tokio::time::sleep_until(at.into()).await;
            }
            let got = fetch(&http, url, Kind::Segment, false, &mut stats, live).await;
            due += Duration::from_secs_f64(*seconds);
            if pace == Pace::Realtime && got.ok && playback_start.elapsed() > due {
                stats.late_segments += 1;
            }
            if first_segment && got.ok {
                stats.first_segment(started.elapsed());
                first_segment = false;
            }
        }
        if pace == Pace::Realtime {
            // Watch the rest of the last segment before starting over.
            let end = playback_start + due;
            if end >= deadline {
                return stats;
            }
            tokio::time::sleep_until(end.into()).await;
        }
    }
    stats
}

async fn backoff(deadline: Instant) {
    let at = (Instant::now() + Duration::from_secs(1)).min(deadline);
    tokio::time::sleep_until(at.into()).await;
}

/// The master playlist URL of a player: given, or granted.
async fn resolve(
    http: &reqwest::Client,
    source: &Source,
    stats: &mut Stats,
    live: &Live,
) -> Option<Url> {
    match source {
        Source::Url(u) => Some(u.clone()),
        Source::Grant {
            edge,
            content,
            session,
        } => {
            let url = edge.join(&format!("v1/playback/{content}")).ok()?;
            let t0 = Instant::now();
            let r = http.get(url).bearer_auth(session).send().await;
            let r = match r {
                Ok(r) => r,
                Err(e) => {
                    stats.error(if e.is_timeout() { "timeout" } else { "io" });
                    live.record(0, true);
                    return None;
                }
            };
            let status = r.status();
            let body = r.bytes().await.unwrap_or_default();
            stats.request(Kind::Grant, t0.elapsed(), body.len() as u64, None);
            live.record(body.len() as u64, !status.is_success());
            if !status.is_success() {
                stats.error(status.as_str());
                return None;
            }
            let g: Grant = serde_json::from_slice(&body).ok()?;
            edge.join(&g.hls).ok()
        }
    }
}

/// GETs `url` to the end of its body, recording latency, bytes, status and `x-cache`.
async fn fetch(
    http: &reqwest::Client,
    url: &Url,
    kind: Kind,
    want_text: bool,
    stats: &mut Stats,
    live: &Live,
) -> Fetched {
    let t0 = Instant::now();
    let r = match http.get(url.clone()).send().await {
        Ok(r) => r,
        Err(e) => {
            stats.error(if e.is_timeout() { "timeout" } else { "io" });
            live.record(0, true);
            return Fetched {
                text: None,
                ok: false,
            };
        }
    };
    let status = r.status();
    let tier = r
        .headers()
        .get("x-cache")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match r.bytes().await {
        Ok(b) => b,
        Err(e) => {
            stats.error(if e.is_timeout() { "timeout" } else { "io" });
            live.record(0, true);
            return Fetched {
                text: None,
                ok: false,
            };
        }
    };
    let ok = status.is_success();
    stats.request(kind, t0.elapsed(), body.len() as u64, tier.as_deref());
    live.record(body.len() as u64, !ok);
    if !ok {
        stats.error(status.as_str());
    }
    Fetched {
        text: want_text.then(|| String::from_utf8_lossy(&body).into_owned()),
        ok,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlists_parse_and_resolve() {
        let base = Url::parse("http://e/p/TOKEN/c1/master.m3u8").unwrap();
        let master = "#EXTM3U\n#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"a\",URI=\"audio/index.m3u8\"\n\
                      #EXT-X-STREAM-INF:BANDWIDTH=1\n360p/index.m3u8\n\
                      #EXT-X-STREAM-INF:BANDWIDTH=2\n720p/index.m3u8\n";
        let v = parse_master(&base, master);
        assert_eq!(
            v.iter().map(Url::as_str).collect::<Vec<_>>(),
            [
                "http://e/p/TOKEN/c1/360p/index.m3u8",
                "http://e/p/TOKEN/c1/720p/index.m3u8"
            ]
        );
        let media = "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:4.000,\nseg-00001.m4s\n\
                     #EXTINF:2.5,\nseg-00002.m4s\n#EXT-X-ENDLIST\n";
        let p = parse_media(&v[0], media);
        assert_eq!(
            p.init.unwrap().as_str(),
            "http://e/p/TOKEN/c1/360p/init.mp4"
        );
        assert_eq!(p.segments.len(), 2);
        assert_eq!(p.segments[1].1, 2.5);
        assert_eq!(
            p.segments[0].0.as_str(),
            "http://e/p/TOKEN/c1/360p/seg-00001.m4s"
        );
    }
}
