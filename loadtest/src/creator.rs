//! One simulated creator: `POST /v1/contents`, then a tus upload of a file in `chunk`-sized
//! PATCHes (each one timed), as a resumable uploader would send it.

use std::time::Instant;

use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::Bytes;
use reqwest::Url;
use serde_json::{Value, json};

use crate::stats::{Kind, Live, Stats};

/// Uploads `data` as a new content; returns what it measured and the content id if it
/// completed.
pub async fn upload(
    http: reqwest::Client,
    origin: Url,
    session: String,
    data: Bytes,
    chunk: usize,
    title: String,
    live: &Live,
) -> (Stats, Option<String>) {
    let mut stats = Stats::default();
    let t0 = Instant::now();
    let created = http
        .post(origin.join("v1/contents").expect("path joins"))
        .bearer_auth(&session)
        .json(&json!({"title": title, "policy": {"public": true}}))
        .send()
        .await;
    let id = match created {
        Ok(r) if r.status().as_u16() == 201 => {
            let v: Value = r.json().await.unwrap_or(Value::Null);
            v["id"].as_str().map(str::to_owned)
        }
        Ok(r) => {
            stats.error(r.status().as_str());
            None
        }
        Err(_) => {
            stats.error("io");
            None
        }
    };
    stats.request(Kind::Upload, t0.elapsed(), 0, None);
    live.record(0, id.is_none());
    let Some(id) = id else {
        return (stats, None);
    };
    let meta = format!(
        "content_id {},filename {}",
        STANDARD.encode(&id),
        STANDARD.encode("upload.mp4")
    );
    let t0 = Instant::now();
    let r = http
        .post(origin.join("v1/uploads").expect("path joins"))
        .bearer_auth(&session)
        .header("tus-resumable", "1.0.0")
        .header("upload-length", data.len().to_string())
        .header("upload-metadata", meta)
        .send()
        .await;
    let location = match r {
        Ok(r) if r.status().as_u16() == 201 => r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .and_then(|l| origin.join(l).ok()),
        Ok(r) => {
            stats.error(r.status().as_str());
            None
        }
        Err(_) => {
            stats.error("io");
            None
        }
    };
    stats.request(Kind::Upload, t0.elapsed(), 0, None);
    live.record(0, location.is_none());
    let Some(location) = location else {
        return (stats, None);
    };
    let mut offset = 0;
    while offset < data.len() {
        let end = (offset + chunk.max(1)).min(data.len());
        let t0 = Instant::now();
        let r = http
            .patch(location.clone())
            .bearer_auth(&session)
            .header("tus-resumable", "1.0.0")
            .header("upload-offset", offset.to_string())
            .header("content-type", "application/offset+octet-stream")
            .body(data.slice(offset..end))
            .send()
            .await;
        let ok = matches!(&r, Ok(r) if r.status().as_u16() == 204);
        stats.request(Kind::Upload, t0.elapsed(), (end - offset) as u64, None);
        live.record((end - offset) as u64, !ok);
        match r {
            Ok(_) if ok => offset = end,
            Ok(r) => {
                stats.error(r.status().as_str());
                return (stats, None);
            }
            Err(_) => {
                stats.error("io");
                return (stats, None);
            }
        }
    }
    (stats, Some(id))
}
