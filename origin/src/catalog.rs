//! The content catalog: one JSON record per content in S3 (`catalog/{id}.json`).
//!
//! Origin is the single writer. Every write is a read-modify-write under the content's lock: a
//! local mutex (so one process queues its own writers cheaply) and a Redis lease
//! (`sg:lock:content:{id}`, so writers in other origin instances, API requests and the events
//! consumer alike, never interleave). Deletion writes a tombstone (`status: deleted`) under the
//! same lock instead of removing the record: a transcoder event or a tus request that was
//! racing the delete then finds the tombstone and changes nothing, so a deleted content can
//! never come back. Readers see a tombstone as no record at all.
//!
//! Records of ready contents are cached briefly for the media route, which reads them on every
//! edge miss. Every write also moves the content in the creators' index (`index`).

use std::{sync::Arc, time::Duration};

use futures_util::StreamExt;

use aws_sdk_s3::{Client, primitives::ByteStream};
use moka::future::Cache;
use serde::{Deserialize, Serialize};
use streamgate_config::contract::{Encryption, Rendition, layout};
use tokio::sync::Mutex;

use crate::{AppError, error::AppResult, index::ContentIndex, lock::Lease, now_ms};

/// Longest wait for another writer of the same record.
const LOCK_WAIT: Duration = Duration::from_secs(10);

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
    /// Deleted by its owner: a tombstone, never served, never written again. Not part of the
    /// API (readers get 404).
    Deleted,
}

/// A catalog record. Its owner gets it as is; others a public view (`contents`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContentRecord {
    /// Content id.
    pub id: String,
    /// Title given by the creator.
    pub title: String,
    /// Description given by the creator.
    #[serde(default)]
    pub description: Option<String>,
    /// Tags given by the creator.
    #[serde(default)]
    pub tags: Vec<String>,
    /// The creator's subject (CAIP-10), once sign-in exists.
    pub owner: Option<String>,
    /// Life-cycle status.
    pub status: Status,
    /// Transcoding progress, 0 to 100.
    pub progress: f32,
    /// Entitlement policy (JSON: `streamgate_entitlements::Policy`).
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
    /// Poster, storyboard and I-frame playlists, once ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artwork: Option<streamgate_config::contract::Artwork>,
    /// The poster's path in the package (`poster.jpg`), once ready: `artwork.poster` named at
    /// the top, as the v1 contract lists it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poster: Option<String>,
    /// The storyboard's path (`thumbs/storyboard.vtt`), once ready: `artwork.storyboard` at
    /// the top.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storyboard: Option<String>,
    /// Caption and subtitle tracks, by language.
    #[serde(default)]
    pub captions: Vec<crate::captions::Caption>,
    /// Audio renditions, once ready: the languages of a video, or an audio-only ladder.
    #[serde(default)]
    pub audio: Vec<streamgate_config::contract::AudioRendition>,
    /// How the package is encrypted (`none` for records from before encryption existed).
    #[serde(default)]
    pub encryption: Encryption,
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
    redis: redis::aio::ConnectionManager,
    index: ContentIndex,
    locks: Cache<String, Arc<Mutex<()>>>,
    ready: Cache<String, Arc<ContentRecord>>,
}

impl Catalog {
    /// A catalog in `bucket`.
    pub(crate) fn new(s3: Client, bucket: String, redis: redis::aio::ConnectionManager) -> Self {
        Self {
            s3,
            bucket,
            index: ContentIndex::new(redis.clone()),
            redis,
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

    /// Reads a live record; `None` when there is none or it was deleted.
    pub(crate) async fn get(&self, id: &str) -> AppResult<Option<ContentRecord>> {
        Ok(self
            .get_raw(id)
            .await?
            .filter(|r| r.status != Status::Deleted))
    }

    /// Whether `id` was deleted (a tombstone stands in its place).
    pub(crate) async fn is_deleted(&self, id: &str) -> AppResult<bool> {
        Ok(self
            .get_raw(id)
            .await?
            .is_some_and(|r| r.status == Status::Deleted))
    }

    /// Reads a record, tombstones included. Storage errors are retried twice: S3 answers the
    /// odd 5xx (and s3s-fs fails a read that races a write of the same key).
    async fn get_raw(&self, id: &str) -> AppResult<Option<ContentRecord>> {
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
        let Some(bytes) =
            streamgate_storage::get_if_exists(&self.s3, &self.bucket, &layout::catalog_key(id))
                .await
                .map_err(AppError::storage)?
        else {
            return Ok(None);
        };
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

    /// Applies `f` to the live record under the content's lock and writes it back when `f`
    /// returns `true`. Returns the record as it now is. A missing or deleted record is
    /// `NotFound`, and is never written.
    pub(crate) async fn update<F>(&self, id: &str, f: F) -> AppResult<ContentRecord>
    where
        F: FnOnce(&mut ContentRecord) -> AppResult<bool>,
    {
        self.update_and(id, f, |_| async { Ok(()) }).await
    }

    /// [`update`](Self::update), and when `f` changed the record, `before_write` runs on the
    /// new record still under the lock, before it is written (the caption republisher writes
    /// the manifests the record describes). Its error leaves the record as it was.
    pub(crate) async fn update_and<F, G, Fut>(
        &self,
        id: &str,
        f: F,
        before_write: G,
    ) -> AppResult<ContentRecord>
    where
        F: FnOnce(&mut ContentRecord) -> AppResult<bool>,
        G: FnOnce(ContentRecord) -> Fut,
        Fut: std::future::Future<Output = AppResult<()>>,
    {
        let (_local, lease) = self.lock(id).await?;
        let out = async {
            let mut rec = self
                .get(id)
                .await?
                .ok_or(AppError::NotFound("no such content"))?;
            if f(&mut rec)? {
                rec.updated_at = now_ms();
                before_write(rec.clone()).await?;
                self.put(&rec).await?;
                self.ready.invalidate(id).await;
            }
            Ok(rec)
        }
        .await;
        lease.release().await;
        out
    }

    /// Deletes a live record after `check` accepts it (the owner check, under the lock):
    /// replaces it with a tombstone, so writers racing the delete find it deleted. Returns the
    /// record as it was.
    pub(crate) async fn delete<F>(&self, id: &str, check: F) -> AppResult<ContentRecord>
    where
        F: FnOnce(&ContentRecord) -> AppResult<()>,
    {
        let (_local, lease) = self.lock(id).await?;
        let out = async {
            let rec = self
                .get(id)
                .await?
                .ok_or(AppError::NotFound("no such content"))?;
            check(&rec)?;
            let now = now_ms();
            let tombstone = ContentRecord {
                id: rec.id.clone(),
                title: String::new(),
                description: None,
                tags: Vec::new(),
                owner: rec.owner.clone(),
                status: Status::Deleted,
                progress: 0.0,
                policy: serde_json::Value::Null,
                renditions: Vec::new(),
                duration_s: None,
                error: None,
                has_audio: None,
                artwork: None,
                poster: None,
                storyboard: None,
                captions: Vec::new(),
                audio: Vec::new(),
                encryption: rec.encryption,
                upload_id: None,
                created_at: rec.created_at,
                updated_at: now,
            };
            self.put(&tombstone).await?;
            self.ready.invalidate(id).await;
            Ok(rec)
        }
        .await;
        lease.release().await;
        out
    }

    /// Takes the content's lock: this process's mutex, then the cross-instance Redis lease.
    async fn lock(&self, id: &str) -> AppResult<(tokio::sync::OwnedMutexGuard<()>, Lease)> {
        let local = self
            .locks
            .get_with(id.to_owned(), async { Arc::new(Mutex::new(())) })
            .await
            .lock_owned()
            .await;
        let lease = Lease::acquire(
            &self.redis,
            streamgate_config::contract::keys::content_lock(id),
            LOCK_WAIT,
        )
        .await?
        .ok_or_else(|| {
            AppError::Internal(format!(
                "catalog record {id} stayed locked for {LOCK_WAIT:?}"
            ))
        })?;
        Ok((local, lease))
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
        // The record is written (S3 is the truth); the index follows it. A Redis failure here
        // leaves the listing stale until the next write or `streamgate-origin reindex`.
        if let Err(e) = self.index.put(rec).await {
            tracing::warn!(content_id = %rec.id, cause = %e, "content index not updated");
        }
        Ok(())
    }

    /// The index of creators' contents this catalog keeps.
    pub(crate) fn index(&self) -> &ContentIndex {
        &self.index
    }

    /// Rebuilds the index from every record in the bucket; returns how many records it holds.
    pub(crate) async fn reindex(&self) -> AppResult<usize> {
        let cleared = self
            .index
            .clear()
            .await
            .map_err(|e| AppError::Internal(format!("redis: {e}")))?;
        tracing::info!(cleared, "content index cleared");
        let mut pages = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix("catalog/")
            .into_paginator()
            .send();
        let mut indexed = 0;
        while let Some(page) = pages.next().await {
            let page =
                page.map_err(|e| AppError::storage(aws_sdk_s3::error::DisplayErrorContext(e)))?;
            let ids: Vec<String> = page
                .contents()
                .iter()
                .filter_map(|obj| {
                    obj.key()
                        .and_then(|k| k.strip_prefix("catalog/"))
                        .and_then(|k| k.strip_suffix(".json"))
                        .map(str::to_owned)
                })
                .collect();
            // Sixteen records in flight: a bucket of thousands takes seconds, not minutes.
            let mut puts = futures_util::stream::iter(ids)
                .map(|id| async move {
                    match self.get(&id).await? {
                        Some(rec) => {
                            self.index
                                .put(&rec)
                                .await
                                .map_err(|e| AppError::Internal(format!("redis: {e}")))?;
                            Ok::<usize, AppError>(1)
                        }
                        None => Ok(0),
                    }
                })
                .buffer_unordered(16);
            while let Some(n) = puts.next().await {
                indexed += n?;
            }
        }
        Ok(indexed)
    }
}
