//! `GET|HEAD /v/{id}/{path}`: packaged files for edges, from S3, with Range, ETag and
//! Cache-Control.
//!
//! Only contents whose catalog status is `ready` are served: a package being written (or left
//! half-written by a killed transcoder) is never visible. S3-compatible servers differ in how
//! they treat conditional requests, so `If-None-Match` is answered here from the object's ETag.

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures_util::stream;
use streamgate_config::contract::{is_valid_content_id, is_valid_media_path, layout};

use crate::{AppError, AppState, error::AppResult, metrics::METRICS};

/// Cache policy of packaged files: segments, init segments, rendition playlists and images
/// never change under a name (a re-package is purged explicitly).
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Cache policy of the objects caption changes rewrite (the master playlist, the MPD and the
/// caption playlists): edges keep them until origin purges them (`s-maxage`), browsers
/// re-read them after a minute.
const REWRITTEN: &str = "public, max-age=60, s-maxage=31536000";

/// The cache policy of a package path.
fn cache_control(path: &str) -> &'static str {
    let rewritten = path == layout::HLS_MASTER
        || path == layout::DASH_MANIFEST
        || path
            .strip_prefix("captions/")
            .is_some_and(|f| f.ends_with(".m3u8"));
    if rewritten { REWRITTEN } else { IMMUTABLE }
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, e)| e) {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("mpd") => "application/dash+xml",
        Some("m4s") => "video/iso.segment",
        Some("mp4") => "video/mp4",
        Some("m4a") => "audio/mp4",
        Some("vtt") => "text/vtt",
        Some("jpg") => "image/jpeg",
        _ => "application/octet-stream",
    }
}

/// Validates a single `bytes=` range (what S3 accepts). Multi-range requests are answered with
/// the whole object, as RFC 9110 allows; edges serve multi-range from their cache.
pub(crate) fn single_range(h: &HeaderMap) -> AppResult<Option<String>> {
    let Some(v) = h.get(header::RANGE) else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .map_err(|_| AppError::BadRequest("Range: not ASCII".into()))?
        .trim();
    let Some(spec) = s.strip_prefix("bytes=") else {
        return Ok(None); // unknown unit: ignore, per RFC 9110 §14.2
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let (a, b) = spec
        .split_once('-')
        .ok_or(AppError::RangeNotSatisfiable(None))?;
    let digits = |x: &str| x.is_empty() || x.bytes().all(|c| c.is_ascii_digit());
    if !digits(a) || !digits(b) || (a.is_empty() && b.is_empty()) || a.len() > 19 || b.len() > 19 {
        return Err(AppError::RangeNotSatisfiable(None));
    }
    if let (Ok(x), Ok(y)) = (a.parse::<u64>(), b.parse::<u64>())
        && y < x
    {
        return Err(AppError::RangeNotSatisfiable(None));
    }
    Ok(Some(format!("bytes={spec}")))
}

fn etag_matches(h: &HeaderMap, etag: &str) -> bool {
    let Some(v) = h.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    v.split(',')
        .any(|t| t.trim() == "*" || bare(t) == bare(etag))
}

/// `GET|HEAD /v/{id}/{*path}`.
pub(crate) async fn get(
    State(app): State<AppState>,
    Path((id, path)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> AppResult<Response> {
    if !is_valid_content_id(&id) || !is_valid_media_path(&path) {
        return Err(AppError::BadRequest("malformed content id or path".into()));
    }
    if app.catalog.get_ready(&id).await?.is_none() {
        return Err(AppError::NotFound("no such content, or not ready"));
    }
    let key = layout::media_key(&id, &path);
    let range = single_range(&headers)?;
    let conditional = headers.contains_key(header::IF_NONE_MATCH);
    if conditional || method == Method::HEAD {
        let head = app
            .s3
            .head_object()
            .bucket(&app.cfg.s3.bucket)
            .key(&key)
            .send()
            .await;
        let head = match head {
            Ok(h) => h,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_not_found()) => {
                return Err(AppError::NotFound("no such object"));
            }
            Err(e) => return Err(AppError::storage(aws_sdk_s3::error::DisplayErrorContext(e))),
        };
        let etag = head.e_tag().unwrap_or_default().to_owned();
        if conditional && etag_matches(&headers, &etag) {
            let mut h = HeaderMap::new();
            put(&mut h, header::ETAG, &etag);
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(cache_control(&path)),
            );
            return Ok((StatusCode::NOT_MODIFIED, h).into_response());
        }
        if method == Method::HEAD {
            let mut h = base_headers(&path, &etag);
            put(
                &mut h,
                header::CONTENT_LENGTH,
                &head.content_length().unwrap_or(0).to_string(),
            );
            return Ok((StatusCode::OK, h).into_response());
        }
    }
    let mut req = app.s3.get_object().bucket(&app.cfg.s3.bucket).key(&key);
    if let Some(r) = &range {
        req = req.range(r);
    }
    let obj = match req.send().await {
        Ok(o) => o,
        Err(e) => {
            if let Some(se) = e.as_service_error() {
                if se.is_no_such_key() {
                    return Err(AppError::NotFound("no such object"));
                }
                if se.meta().code() == Some("InvalidRange") {
                    let len = app
                        .s3
                        .head_object()
                        .bucket(&app.cfg.s3.bucket)
                        .key(&key)
                        .send()
                        .await
                        .ok()
                        .and_then(|h| h.content_length())
                        .map(|l| l.max(0) as u64);
                    return Err(AppError::RangeNotSatisfiable(len));
                }
            }
            if e.raw_response().is_some_and(|r| r.status().as_u16() == 416) {
                return Err(AppError::RangeNotSatisfiable(None));
            }
            return Err(AppError::storage(aws_sdk_s3::error::DisplayErrorContext(e)));
        }
    };
    let mut h = base_headers(&path, obj.e_tag().unwrap_or_default());
    if let Some(len) = obj.content_length() {
        put(&mut h, header::CONTENT_LENGTH, &len.to_string());
    }
    let status = match obj.content_range() {
        Some(cr) if range.is_some() => {
            put(&mut h, header::CONTENT_RANGE, cr);
            StatusCode::PARTIAL_CONTENT
        }
        _ => StatusCode::OK,
    };
    let body = stream::unfold(obj.body, |mut b| async move {
        match b.next().await {
            Some(Ok(chunk)) => {
                METRICS.media_bytes.inc_by(chunk.len() as u64);
                Some((Ok::<_, std::io::Error>(chunk), b))
            }
            Some(Err(e)) => Some((Err(std::io::Error::other(e)), b)),
            None => None,
        }
    });
    Ok((status, h, Body::from_stream(body)).into_response())
}

fn base_headers(path: &str, etag: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(path)),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control(path)),
    );
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if !etag.is_empty() {
        put(&mut h, header::ETAG, etag);
    }
    h
}

fn put(h: &mut HeaderMap, name: header::HeaderName, v: &str) {
    if let Ok(v) = HeaderValue::from_str(v) {
        h.insert(name, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(k: header::HeaderName, v: &str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(k, HeaderValue::from_str(v).unwrap());
        m
    }

    #[test]
    fn only_rewritten_objects_are_mutable() {
        for p in ["master.m3u8", "manifest.mpd", "captions/pt-BR.m3u8"] {
            assert_eq!(cache_control(p), REWRITTEN, "{p}");
        }
        for p in [
            "360p/index.m3u8",
            "360p/seg-00001.m4s",
            "captions/pt-BR-0123456789ab.vtt",
            "thumbs/storyboard.vtt",
            "poster.jpg",
        ] {
            assert_eq!(cache_control(p), IMMUTABLE, "{p}");
        }
    }

    #[test]
    fn ranges() {
        assert_eq!(single_range(&HeaderMap::new()).unwrap(), None);
        assert_eq!(
            single_range(&h(header::RANGE, "bytes=0-99"))
                .unwrap()
                .unwrap(),
            "bytes=0-99"
        );
        assert_eq!(
            single_range(&h(header::RANGE, "bytes=-500"))
                .unwrap()
                .unwrap(),
            "bytes=-500"
        );
        assert_eq!(
            single_range(&h(header::RANGE, "bytes=10-"))
                .unwrap()
                .unwrap(),
            "bytes=10-"
        );
        assert_eq!(
            single_range(&h(header::RANGE, "bytes=0-1,5-6")).unwrap(),
            None
        );
        assert_eq!(single_range(&h(header::RANGE, "items=0-1")).unwrap(), None);
        assert!(single_range(&h(header::RANGE, "bytes=9-1")).is_err());
        assert!(single_range(&h(header::RANGE, "bytes=x-1")).is_err());
        assert!(single_range(&h(header::RANGE, "bytes=-")).is_err());
    }

    #[test]
    fn etags_and_types() {
        assert!(etag_matches(
            &h(header::IF_NONE_MATCH, "\"a\", \"b\""),
            "\"b\""
        ));
        assert!(etag_matches(&h(header::IF_NONE_MATCH, "W/\"b\""), "\"b\""));
        assert!(!etag_matches(&h(header::IF_NONE_MATCH, "\"c\""), "\"b\""));
        assert_eq!(content_type("720p/seg-00001.m4s"), "video/iso.segment");
        assert_eq!(content_type("master.m3u8"), "application/vnd.apple.mpegurl");
        assert_eq!(content_type("manifest.mpd"), "application/dash+xml");
        assert_eq!(content_type("poster.jpg"), "image/jpeg");
    }
}
