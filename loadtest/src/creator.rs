//! One simulated creator: `POST /v1/contents`, then a tus upload of a file in `chunk`-sized
//! PATCHes (each one timed), as a resumable uploader would send it.

use std::time::Instant;

use bytes::Bytes;
use reqwest::Url;
use serde_json::{Value, json};

use crate::{
    stats::{Kind, Live, Stats},
    tus::TusClient,
};

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
    let tus = TusClient::new(http, origin, session);
    let mut stats = Stats::default();
    let t0 = Instant::now();
    let id = match tus.create_content(&title, &json!({"public": true})).await {
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
    let t0 = Instant::now();
    let location = match tus.create(&id, data.len() as u64, "upload.mp4").await {
        Ok(r) if r.status().as_u16() == 201 => tus.location(&r),
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
        let r = tus
            .patch(&location, offset as u64, data.slice(offset..end))
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
