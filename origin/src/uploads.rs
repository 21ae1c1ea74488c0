//! Resumable uploads: tus byte streams written into one S3 multipart upload per file, with
//! memory bounded by the part size whatever the file size.
//!
//! State lives in Redis (`sg:upload:{id}`, JSON); an unfinished upload expires `uploads.expiry`
//! after its last write (tus `expiration`, `Upload-Expires`), and a sweeper then aborts its S3
//! multipart upload and deletes its partial object (`sg:uploads:expiring` lists them by time).
//! The state holds
//! the S3 upload id, the parts written so far, and the length of the *partial* object. Bytes
//! that arrive are buffered until a full part (`uploads.part-size`, ≥ 5 MiB as S3 requires) can
//! be written. When a request ends, normally or because the connection broke, the bytes still
//! buffered are saved as a partial object `uploads/{content}/partial-{upload}-{n}` so nothing a
//! client sent is lost; the next request starts by reading them back. The offset reported to
//! clients is therefore always durable: the sum of written parts plus the partial object.
//!
//! ```text
//!   PATCH body ──► buffer ──(≥ part size)──► UploadPart n ──► state.parts += n
//!                    │
//!                    └─(request ends early)─► PutObject partial ──► state.partial_len
//!   last byte ──► UploadPart (last, any size) ──► CompleteMultipartUpload ──► finalize
//! ```
//!
//! A PATCH that carries `Upload-Checksum` (tus `checksum`) is all or nothing: its parts may go
//! to S3 as they fill, but the state is saved only once the digest of the whole body matches.
//! On a mismatch (or a body that breaks off) the saved state still names the old parts and the
//! old partial object, so the next request writes the same part numbers again and S3 never
//! assembles the refused bytes. An upload whose length is deferred (tus
//! `creation-defer-length`) has no length until a PATCH states it; until then only
//! `uploads.max-size` bounds it.

use std::collections::BTreeMap;

use aws_sdk_s3::{
    Client,
    error::DisplayErrorContext,
    primitives::ByteStream,
    types::{CompletedMultipartUpload, CompletedPart},
};
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use redis::{AsyncCommands, aio::ConnectionManager};
use serde::{Deserialize, Serialize};
use streamgate_config::{UploadsConfig, contract::layout};

use crate::{AppError, error::AppResult, lock::Lease, metrics::METRICS, now_ms};

/// A digest algorithm of tus `checksum` (`Tus-Checksum-Algorithm`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Algo {
    Sha1,
    Sha256,
}

impl Algo {
    /// The algorithms this server verifies, as `Tus-Checksum-Algorithm` lists them.
    pub(crate) const LIST: &'static str = "sha1,sha256";

    pub(crate) fn parse(name: &str) -> Option<Algo> {
        match name {
            "sha1" => Some(Algo::Sha1),
            "sha256" => Some(Algo::Sha256),
            _ => None,
        }
    }

    /// Digest length in bytes.
    pub(crate) fn len(self) -> usize {
        match self {
            Algo::Sha1 => 20,
            Algo::Sha256 => 32,
        }
    }
}

/// The digest a request body must have (`Upload-Checksum`).
#[derive(Debug, Clone)]
pub(crate) struct Checksum {
    pub(crate) algo: Algo,
    pub(crate) digest: Vec<u8>,
}

/// A running digest of a body being received.
enum Hasher {
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

impl Hasher {
    fn new(algo: Algo) -> Hasher {
        use sha2::Digest;
        match algo {
            Algo::Sha1 => Hasher::Sha1(sha1::Sha1::new()),
            Algo::Sha256 => Hasher::Sha256(sha2::Sha256::new()),
        }
    }

    fn update(&mut self, data: &[u8]) {
        use sha2::Digest;
        match self {
            Hasher::Sha1(h) => h.update(data),
            Hasher::Sha256(h) => h.update(data),
        }
    }

    fn finish(self) -> Vec<u8> {
        use sha2::Digest;
        match self {
            Hasher::Sha1(h) => h.finalize().to_vec(),
            Hasher::Sha256(h) => h.finalize().to_vec(),
        }
    }
}

/// Unfinished uploads by expiry time (Unix ms): what the sweeper visits.
const EXPIRING: &str = streamgate_config::contract::keys::UPLOADS_EXPIRING;
/// How long an expired upload's state is kept for the sweeper.
const SWEEP_GRACE: std::time::Duration = std::time::Duration::from_secs(3600);

/// How far an upload has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Stage {
    /// Bytes are still expected.
    Receiving,
    /// Every byte is in S3 as `uploads/{id}/source`; probing and enqueueing remain.
    Stored,
    /// Probed and handed on (job enqueued, or rejected as not a video).
    Finalized,
}

/// tus `concatenation`: what an upload is part of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub(crate) enum Concat {
    /// A partial upload (`Upload-Concat: partial`): an object of its own, no content, waiting
    /// to be assembled into a final upload; it expires like an unfinished upload, even complete.
    Partial,
    /// A final upload (`Upload-Concat: final;…`), assembled from these partial uploads.
    Final {
        /// The partial uploads' ids, in order.
        parts: Vec<String>,
    },
}

/// One written S3 part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Part {
    number: i32,
    etag: String,
    size: u64,
}

/// The durable state of one upload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct UploadState {
    pub(crate) id: String,
    pub(crate) content_id: String,
    /// Session subject of the creator who started it; only they may write to it.
    pub(crate) owner: String,
    /// Total bytes; `None` while deferred (tus `creation-defer-length`).
    pub(crate) length: Option<u64>,
    pub(crate) metadata: BTreeMap<String, String>,
    pub(crate) stage: Stage,
    /// S3 multipart upload id (absent for empty files).
    s3_upload_id: Option<String>,
    parts: Vec<Part>,
    /// Key of the partial object holding bytes not yet in a part.
    #[serde(default)]
    partial: Option<String>,
    /// Bytes held in the partial object.
    partial_len: u64,
    pub(crate) created_at: u64,
    /// Last write, Unix ms: an unfinished upload expires `uploads.expiry` after it.
    #[serde(default)]
    touched_at: u64,
    /// Part of a concatenation (tus `concatenation`), if any.
    #[serde(default)]
    pub(crate) concat: Option<Concat>,
}

impl UploadState {
    /// When an unfinished upload expires (Unix ms); `None` once every byte is stored, except
    /// for a partial upload, which expires unless a final upload takes it.
    pub(crate) fn expires_at(&self, expiry: std::time::Duration) -> Option<u64> {
        (self.stage == Stage::Receiving || self.is_partial()).then(|| {
            self.touched_at.max(self.created_at)
                + u64::try_from(expiry.as_millis()).unwrap_or(u64::MAX / 2)
        })
    }

    /// Bytes durably received.
    pub(crate) fn offset(&self) -> u64 {
        match (self.stage, self.length) {
            (Stage::Receiving, _) | (_, None) => self.written() + self.partial_len,
            (_, Some(len)) => len,
        }
    }

    /// Whether this is a partial upload of a concatenation.
    pub(crate) fn is_partial(&self) -> bool {
        self.concat == Some(Concat::Partial)
    }

    /// The object the upload writes: the content's source, or a partial upload's own object.
    fn object_key(&self) -> String {
        if self.is_partial() {
            format!("uploads/partials/{}", self.id)
        } else {
            layout::source_key(&self.content_id)
        }
    }

    /// A fresh key for the bytes of an unfinished part (see [`UploadStore::append`]).
    fn buffer_key(&self) -> String {
        let n = crate::contents::new_id(8);
        if self.is_partial() {
            format!("uploads/partials/{}.buffer-{n}", self.id)
        } else {
            format!("uploads/{}/partial-{}-{n}", self.content_id, self.id)
        }
    }

    /// Bytes in written S3 parts.
    fn written(&self) -> u64 {
        self.parts.iter().map(|p| p.size).sum()
    }

    /// States the length of a deferred upload (tus `creation-defer-length`: the first PATCH
    /// that knows it sends `Upload-Length`); once set it cannot change.
    pub(crate) fn set_length(&mut self, length: u64, max: u64) -> AppResult<()> {
        match self.length {
            Some(l) if l == length => Ok(()),
            Some(l) => Err(AppError::BadRequest(format!(
                "Upload-Length: the upload's length is already {l}"
            ))),
            None if length > max => Err(AppError::TooLarge(format!(
                "Upload-Length {length} exceeds Tus-Max-Size {max}"
            ))),
            None if length < self.offset() => Err(AppError::BadRequest(format!(
                "Upload-Length {length} is below the bytes already received ({})",
                self.offset()
            ))),
            None => {
                self.length = Some(length);
                Ok(())
            }
        }
    }
}

/// Upload state and S3 writes.
#[derive(Clone)]
pub(crate) struct UploadStore {
    s3: Client,
    bucket: String,
    redis: ConnectionManager,
    cfg: UploadsConfig,
}

fn state_key(id: &str) -> String {
    streamgate_config::contract::keys::upload_state(id)
}

fn s3_err<E: std::error::Error + 'static>(e: aws_sdk_s3::error::SdkError<E>) -> AppError {
    AppError::storage(DisplayErrorContext(e))
}

impl UploadStore {
    pub(crate) fn new(
        s3: Client,
        bucket: String,
        redis: ConnectionManager,
        cfg: UploadsConfig,
    ) -> Self {
        Self {
            s3,
            bucket,
            redis,
            cfg,
        }
    }

    /// Starts an upload of `length` bytes for `content_id`.
    pub(crate) async fn create(
        &self,
        id: String,
        content_id: &str,
        owner: &str,
        length: Option<u64>,
        metadata: BTreeMap<String, String>,
        concat: Option<Concat>,
    ) -> AppResult<UploadState> {
        let mut st = UploadState {
            id,
            content_id: content_id.to_owned(),
            owner: owner.to_owned(),
            length,
            metadata,
            stage: Stage::Receiving,
            s3_upload_id: None,
            parts: Vec::new(),
            partial: None,
            partial_len: 0,
            created_at: now_ms(),
            touched_at: 0,
            concat,
        };
        if length != Some(0) {
            let out = self
                .s3
                .create_multipart_upload()
                .bucket(&self.bucket)
                .key(st.object_key())
                .content_type("application/octet-stream")
                .send()
                .await
                .map_err(s3_err)?;
            st.s3_upload_id = Some(
                out.upload_id()
                    .ok_or_else(|| AppError::Storage("S3 returned no upload id".into()))?
                    .to_owned(),
            );
        }
        self.save(&mut st).await?;
        Ok(st)
    }

    /// Assembles final upload `st` from complete partial uploads `parts`, in order: their
    /// objects are read back and written as the final's parts (memory: one part, whatever the
    /// partials' sizes: S3's 5 MiB minimum for every part but the last rules out copying small
    /// partials part for part), then the final is complete and the partials are gone.
    pub(crate) async fn assemble(
        &self,
        mut st: UploadState,
        parts: &[UploadState],
    ) -> AppResult<UploadState> {
        let part_size = self.cfg.part_size as usize;
        let mut buf = BytesMut::with_capacity(part_size);
        for p in parts {
            let mut body = self
                .s3
                .get_object()
                .bucket(&self.bucket)
                .key(p.object_key())
                .send()
                .await
                .map_err(s3_err)?
                .body;
            while let Some(chunk) = body.next().await {
                let chunk = chunk.map_err(AppError::storage)?;
                self.fill(&mut st, &mut buf, &chunk, part_size, true)
                    .await?;
            }
        }
        if st.length != Some(st.written() + buf.len() as u64) {
            return Err(AppError::Internal(format!(
                "assembled {} bytes for final upload {}, expected {:?}",
                st.written() + buf.len() as u64,
                st.id,
                st.length
            )));
        }
        self.flush(&mut st, buf).await?;
        for p in parts {
            self.terminate(p).await?;
        }
        Ok(st)
    }

    /// Reads an upload's state; an unfinished upload past its expiry is gone (tus
    /// `expiration`: 404), whether or not the sweeper has cleaned it up yet.
    pub(crate) async fn get(&self, id: &str) -> AppResult<Option<UploadState>> {
        Ok(self.get_raw(id).await?.filter(|st| {
            st.expires_at(self.cfg.expiry)
                .is_none_or(|at| at > now_ms())
        }))
    }

    async fn get_raw(&self, id: &str) -> AppResult<Option<UploadState>> {
        let mut con = self.redis.clone();
        let raw: Option<String> = con.get(state_key(id)).await?;
        raw.map(|s| {
            serde_json::from_str(&s)
                .map_err(|e| AppError::Internal(format!("upload state {id} is corrupt: {e}")))
        })
        .transpose()
    }

    /// Saves the state (a write: the expiry starts again). The record outlives the expiry by
    /// [`SWEEP_GRACE`] so the sweeper can still find what to clean up; unfinished uploads are
    /// listed in [`EXPIRING`] by expiry time.
    pub(crate) async fn save(&self, st: &mut UploadState) -> AppResult<()> {
        st.touched_at = now_ms();
        let json = serde_json::to_string(st)
            .map_err(|e| AppError::Internal(format!("serialize upload state: {e}")))?;
        let ttl = (self.cfg.expiry + SWEEP_GRACE).as_secs().max(1);
        let mut pipe = redis::pipe();
        pipe.set_ex(state_key(&st.id), json, ttl);
        match st.expires_at(self.cfg.expiry) {
            Some(at) => pipe.zadd(EXPIRING, &st.id, at),
            None => pipe.zrem(EXPIRING, &st.id),
        };
        let mut con = self.redis.clone();
        let _: () = pipe.query_async(&mut con).await?;
        Ok(())
    }

    /// Unfinished uploads past their expiry (up to `max`), oldest first.
    pub(crate) async fn expired(&self, max: usize) -> AppResult<Vec<String>> {
        let mut con = self.redis.clone();
        Ok(con
            .zrangebyscore_limit(EXPIRING, "-inf", now_ms(), 0, max as isize)
            .await?)
    }

    /// Cleans up expired upload `id` (S3 multipart aborted, partial object deleted, state
    /// removed) unless a write revived it; returns the state it removed.
    pub(crate) async fn sweep(&self, id: &str) -> AppResult<Option<UploadState>> {
        let st = self.get_raw(id).await?;
        let expired = st
            .as_ref()
            .and_then(|s| s.expires_at(self.cfg.expiry))
            .is_some_and(|at| at <= now_ms());
        let mut con = self.redis.clone();
        match st {
            Some(st) if expired => {
                self.terminate(&st).await?;
                let _: () = con.zrem(EXPIRING, id).await?;
                Ok(Some(st))
            }
            Some(_) => Ok(None),
            None => {
                // The state outlived nothing to clean (or was cleaned): forget the entry.
                let _: () = con.zrem(EXPIRING, id).await?;
                Ok(None)
            }
        }
    }

    /// Takes the writer lease of an upload, or answers 423 when another request holds it.
    pub(crate) async fn lease(&self, id: &str) -> AppResult<Lease> {
        Lease::try_acquire(
            &self.redis,
            streamgate_config::contract::keys::upload_lock(id),
        )
        .await?
        .ok_or(AppError::Locked(
            "another request is writing this upload; retry",
        ))
    }

    /// Appends `body` at `offset`. Returns the state after the bytes received were made
    /// durable. A body that breaks off mid-way still saves what arrived, then reports the error;
    /// with a `checksum`, nothing of the body is kept unless all of it arrived and matches.
    pub(crate) async fn append<S, E>(
        &self,
        mut st: UploadState,
        offset: u64,
        body: S,
        checksum: Option<Checksum>,
    ) -> AppResult<UploadState>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        if st.stage != Stage::Receiving {
            if offset == st.offset() {
                return Ok(st);
            }
            return Err(AppError::Conflict(format!(
                "upload is complete; Upload-Offset must be {}",
                st.offset()
            )));
        }
        if offset != st.offset() {
            return Err(AppError::Conflict(format!(
                "Upload-Offset {offset} does not match the upload's offset {}",
                st.offset()
            )));
        }
        let part_size = self.cfg.part_size as usize;
        // Exactly one part: the buffer is never grown (growing doubles it, and the allocator
        // keeps what it freed), so an upload in progress holds one part of memory.
        let mut buf = BytesMut::with_capacity(part_size);
        if let (Some(key), true) = (&st.partial, st.partial_len > 0) {
            let obj = self
                .s3
                .get_object()
                .bucket(&self.bucket)
                .key(key)
                .send()
                .await
                .map_err(s3_err)?;
            let bytes = obj
                .body
                .collect()
                .await
                .map_err(AppError::storage)?
                .into_bytes();
            if bytes.len() as u64 != st.partial_len {
                return Err(AppError::Internal(format!(
                    "partial object of upload {} has {} bytes, state says {}",
                    st.id,
                    bytes.len(),
                    st.partial_len
                )));
            }
            buf.extend_from_slice(&bytes);
        }
        let Some(checksum) = checksum else {
            let result = self.pump(&mut st, &mut buf, body, part_size, None).await;
            // Whatever happened, make the buffered bytes durable before answering.
            let flushed = self.flush(&mut st, buf).await;
            result?;
            flushed?;
            return Ok(st);
        };
        // All or nothing: on any failure the saved state is left as it was.
        let mut hasher = Hasher::new(checksum.algo);
        let parts_before = st.parts.len();
        self.pump(&mut st, &mut buf, body, part_size, Some(&mut hasher))
            .await?;
        if hasher.finish() != checksum.digest {
            METRICS.upload_checksum_failures.inc();
            return Err(AppError::ChecksumMismatch);
        }
        if st.parts.len() > parts_before {
            self.save(&mut st).await?; // the parts written while unverified
        }
        self.flush(&mut st, buf).await?;
        Ok(st)
    }

    async fn pump<S, E>(
        &self,
        st: &mut UploadState,
        buf: &mut BytesMut,
        mut body: S,
        part_size: usize,
        mut hasher: Option<&mut Hasher>,
    ) -> AppResult<()>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        // A deferred length is bounded by the size limit until it is known.
        let (limit, what) = match st.length {
            Some(l) => (l, "Upload-Length"),
            None => (self.cfg.max_size, "Tus-Max-Size"),
        };
        let save = hasher.is_none();
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| AppError::BadRequest(format!("body ended early: {e}")))?;
            METRICS.upload_bytes.inc_by(chunk.len() as u64);
            if let Some(h) = hasher.as_deref_mut() {
                h.update(&chunk);
            }
            if st.written() + (buf.len() + chunk.len()) as u64 > limit {
                let room = limit - st.written() - buf.len() as u64;
                self.fill(st, buf, &chunk[..room as usize], part_size, save)
                    .await?;
                return Err(AppError::TooLarge(format!("body runs past {what} {limit}")));
            }
            self.fill(st, buf, &chunk, part_size, save).await?;
        }
        Ok(())
    }

    /// Appends `data` to the part buffer, writing each part as it fills. The buffer never
    /// holds more than one part, and a written part's memory is freed before the next one is
    /// allocated.
    async fn fill(
        &self,
        st: &mut UploadState,
        buf: &mut BytesMut,
        mut data: &[u8],
        part_size: usize,
        save: bool,
    ) -> AppResult<()> {
        while !data.is_empty() {
            let take = (part_size - buf.len()).min(data.len());
            buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if buf.len() == part_size {
                let part = std::mem::take(buf).freeze();
                self.put_part(st, part, save).await?;
                *buf = BytesMut::with_capacity(part_size);
            }
        }
        Ok(())
    }

    /// Writes part `n + 1`; `save` records it at once (a checksummed body records its parts
    /// only once the digest matched).
    async fn put_part(&self, st: &mut UploadState, data: Bytes, save: bool) -> AppResult<()> {
        let upload_id = st
            .s3_upload_id
            .clone()
            .ok_or_else(|| AppError::Internal("upload has no S3 multipart id".into()))?;
        let number = st.parts.len() as i32 + 1;
        let size = data.len() as u64;
        let out = self
            .s3
            .upload_part()
            .bucket(&self.bucket)
            .key(st.object_key())
            .upload_id(upload_id)
            .part_number(number)
            .body(ByteStream::from(data))
            .send()
            .await
            .map_err(s3_err)?;
        let etag = out
            .e_tag()
            .ok_or_else(|| AppError::Storage("S3 returned no part ETag".into()))?
            .to_owned();
        st.parts.push(Part { number, etag, size });
        // The partial object's bytes went into this part: they are no longer pending.
        st.partial_len = 0;
        METRICS.upload_parts.inc();
        if save { self.save(st).await } else { Ok(()) }
    }

    /// Saves what is buffered: as the last part when the file is complete, else as the partial
    /// object.
    async fn flush(&self, st: &mut UploadState, buf: BytesMut) -> AppResult<()> {
        if st.length == Some(st.written() + buf.len() as u64) {
            if !buf.is_empty() || (st.parts.is_empty() && st.s3_upload_id.is_some()) {
                self.put_part(st, buf.freeze(), true).await?;
            }
            return self.complete(st).await;
        }
        if buf.len() as u64 == st.partial_len {
            return Ok(()); // nothing new arrived
        }
        // Write the buffered bytes under a fresh key, switch the state to it, then drop the old
        // object: a crash at any point leaves the state naming an object that matches it.
        let len = buf.len() as u64;
        let old = st.partial.take();
        let key = st.buffer_key();
        self.s3
            .put_object()
            .bucket(&self.bucket)
            .key(&key)
            .body(ByteStream::from(buf.freeze()))
            .send()
            .await
            .map_err(s3_err)?;
        st.partial = Some(key);
        st.partial_len = len;
        self.save(st).await?;
        if let Some(old) = old {
            self.delete_object(&old).await;
        }
        Ok(())
    }

    async fn complete(&self, st: &mut UploadState) -> AppResult<()> {
        let key = st.object_key();
        match &st.s3_upload_id {
            Some(upload_id) => {
                let parts = st
                    .parts
                    .iter()
                    .map(|p| {
                        CompletedPart::builder()
                            .part_number(p.number)
                            .e_tag(&p.etag)
                            .build()
                    })
                    .collect();
                self.s3
                    .complete_multipart_upload()
                    .bucket(&self.bucket)
                    .key(&key)
                    .upload_id(upload_id)
                    .multipart_upload(
                        CompletedMultipartUpload::builder()
                            .set_parts(Some(parts))
                            .build(),
                    )
                    .send()
                    .await
                    .map_err(s3_err)?;
            }
            None => {
                self.s3
                    .put_object()
                    .bucket(&self.bucket)
                    .key(&key)
                    .body(ByteStream::from_static(b""))
                    .send()
                    .await
                    .map_err(s3_err)?;
            }
        }
        if let Some(old) = st.partial.take() {
            self.delete_object(&old).await;
        }
        st.partial_len = 0;
        st.stage = Stage::Stored;
        METRICS.uploads_completed.inc();
        tracing::info!(upload_id = %st.id, content_id = %st.content_id, bytes = st.offset(), "upload stored");
        self.save(st).await
    }

    /// Marks the upload handed on.
    pub(crate) async fn mark_finalized(&self, st: &mut UploadState) -> AppResult<()> {
        st.stage = Stage::Finalized;
        self.save(st).await
    }

    async fn delete_object(&self, key: &str) {
        if let Err(e) = self
            .s3
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            tracing::warn!(key, cause = %DisplayErrorContext(e), "object not deleted");
        }
    }

    /// Abandons an upload: aborts the S3 multipart upload and forgets the state (tus
    /// termination).
    pub(crate) async fn terminate(&self, st: &UploadState) -> AppResult<()> {
        if st.stage != Stage::Receiving && st.is_partial() {
            // A complete partial upload: its object is all there is.
            self.delete_object(&st.object_key()).await;
        }
        if st.stage == Stage::Receiving {
            if let Some(upload_id) = &st.s3_upload_id {
                self.s3
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(st.object_key())
                    .upload_id(upload_id)
                    .send()
                    .await
                    .map_err(s3_err)?;
            }
            if let Some(key) = &st.partial {
                self.delete_object(key).await;
            }
        }
        let mut con = self.redis.clone();
        let _: () = con.del(state_key(&st.id)).await?;
        Ok(())
    }
}
