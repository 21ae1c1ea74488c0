//! The content catalog: one JSON record per content in S3 (`catalog/{id}.json`).
//!
//! Origin is the single writer. Writes are read-modify-write under a per-content lock, so an
//! API request and a transcoder event never overwrite each other's changes within a process.
//! Records of ready contents are cached briefly for the media route, which reads them on every
//! edge miss.

use std::{sync::Arc, time::Duration};

use aws_sdk_s3::{Client, primitives::ByteStream};
use moka::future::Cache;
use serde::{Deserialize, Serialize};
use streamgate_config::contract::{Rendition, layout};
use tokio::sync::Mutex;

use crate::{AppError, error::AppResult, now_ms};

/// Where a content is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Created, no upload started.
    AwaitingUpload,
    /// A tus upload is in progress.
    Uploading,
    /// Uploaded and probed; a transcoder job is queued or running.
    Processing,
    /// Packaged and servable.
    Ready,
    /// Upload rejected or transcoding failed; `error` says why.
    Failed,
}

/// A catalog record. The API returns it as is (DESIGN.md, Interfaces).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentRecord {
    /// Content id.
    pub id: String,
    /// Title given by the creator.
    pub title: String,
    /// The creator's subject (CAIP-10), once sign-in exists.
    pub owner: Option<String>,
    /// Life-cycle status.
    pub status: Status,
    /// Transcoding progress, 0 to 100.
    pub progress: f32,
    /// Entitlement policy (JSON, see DESIGN.md).
    pub policy: serde_json::Value,
    /// Packaged ladder, once ready.
    pub renditions: Vec<Rendition>,
    /// Duration in seconds, once ready.
    pub duration_s: Option<f64>,
    /// Why it failed.
    pub error: Option<String>,
    /// Whether the package has audio, once ready.
    #[serde(default)]
    pub has_audio: Option<bool>,
    /// The current tus upload, if any.
    #[serde(default)]
    pub upload_id: Option<String>,
    /// Creation time, Unix ms.
    pub created_at: u64,
    /// Last change, Unix ms.
    pub updated_at: u64,
}

/// Catalog access.
#[derive(Clone)]
pub(crate) struct Catalog {
    s3: Client,
    bucket: String,
    locks: Cache<String, Arc<Mutex<()>>>,
    ready: Cache<String, Arc<ContentRecord>>,
}

impl Catalog {
    /// A catalog in `bucket`.
    pub(crate) fn new(s3: Client, bucket: String) -> Self {
        Self {
            s3,
            bucket,
            locks: Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(300))
                .build(),
            ready: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(10))
                .build(),
        }
    }

    /// Reads a record; `None` when there is none. Storage errors are retried twice: S3 answers
    /// the odd 5xx (and s3s-fs fails a read that races a write of the same key).
    pub(crate) async fn get(&self, id: &str) -> AppResult<Option<ContentRecord>> {
        let mut attempt = 0;
        loop {
            match self.get_once(id).await {
                Err(AppError::Storage(e)) if attempt < 2 => {
                    attempt += 1;
                    tracing::debug!(content_id = id, attempt, cause = %e, "catalog read retried");
                    tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
                }
                other => return other,
            }
        }
    }

    async fn get_once(&self, id: &str) -> AppResult<Option<ContentRecord>> {
        let out = self
            .s3
            .get_object()
            .bucket(&self.bucket)
            .key(layout::catalog_key(id))
            .send()
            .await;
        let obj = match out {
            Ok(o) => o,
            Err(e) => {
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    return Ok(None);
                }
                return Err(AppError::storage(aws_sdk_s3::error::DisplayErrorContext(e)));
            }
        };
        let bytes = obj
            .body
            .collect()
            .await
            .map_err(AppError::storage)?
            .into_bytes();
        let rec = serde_json::from_slice(&bytes)
            .map_err(|e| AppError::Internal(format!("catalog record {id} is corrupt: {e}")))?;
        Ok(Some(rec))
    }

    /// Reads a record that is `ready`, through a short cache (the media route's check).
    pub(crate) async fn get_ready(&self, id: &str) -> AppResult<Option<Arc<ContentRecord>>> {
        if let Some(r) = self.ready.get(id).await {
            return Ok(Some(r));
        }
        match self.get(id).await? {
            Some(r) if r.status == Status::Ready => {
                let r = Arc::new(r);
                self.ready.insert(id.to_owned(), r.clone()).await;
                Ok(Some(r))
            }
            _ => Ok(None),
        }
    }

    /// Writes a new record (no lock: ids are fresh).
    pub(crate) async fn create(&self, rec: &ContentRecord) -> AppResult<()> {
        self.put(rec).await
    }

    /// Applies `f` to the record under the content's lock and writes it back when `f` returns
    /// `true`. Returns the record as it now is.
    pub(crate) async fn update<F>(&self, id: &str, f: F) -> AppResult<ContentRecord>
    where
        F: FnOnce(&mut ContentRecord) -> AppResult<bool>,
    {
        let lock = self
            .locks
            .get_with(id.to_owned(), async { Arc::new(Mutex::new(())) })
            .await;
        let _guard = lock.lock().await;
        let mut rec = self
            .get(id)
            .await?
            .ok_or(AppError::NotFound("no such content"))?;
        if f(&mut rec)? {
            rec.updated_at = now_ms();
            self.put(&rec).await?;
            self.ready.invalidate(id).await;
        }
        Ok(rec)
    }

    /// Deletes a record.
    pub(crate) async fn delete(&self, id: &str) -> AppResult<()> {
        self.s3
            .delete_object()
            .bucket(&self.bucket)
            .key(layout::catalog_key(id))
            .send()
            .await
            .map_err(|e| AppError::storage(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        self.ready.invalidate(id).await;
        Ok(())
    }

    async fn put(&self, rec: &ContentRecord) -> AppResult<()> {
        let body = serde_json::to_vec_pretty(rec)
            .map_err(|e| AppError::Internal(format!("serialize catalog record: {e}")))?;
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(layout::catalog_key(&rec.id))
            .content_type("application/json")
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| AppError::storage(aws_sdk_s3::error::DisplayErrorContext(e)))?;
        Ok(())
    }
}
