//! The S3 side of StreamGate, shared by origin and the transcoders: a client built from
//! `[s3]` alone (no ambient AWS environment or profile files), bucket creation for local
//! stacks, deleting everything under a prefix, and errors that keep the SDK's whole context
//! chain. Object keys come from the wire contract (`streamgate_config::contract::layout`).

use aws_sdk_s3::{
    Client,
    config::{BehaviorVersion, Credentials, Region},
    error::DisplayErrorContext,
    types::{Delete, ObjectIdentifier},
};
use streamgate_config::S3Config;

/// An S3 operation that failed, with the SDK's context (never the credentials).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("s3 {op} {target}: {message}")]
pub struct StorageError {
    /// What was attempted (`get`, `delete objects`, …).
    pub op: &'static str,
    /// The bucket or key it was about.
    pub target: String,
    /// The SDK's error chain.
    pub message: String,
}

impl StorageError {
    /// The error of `op` on `target` (a bucket or a key).
    pub fn new(op: &'static str, target: &str, e: impl std::error::Error) -> Self {
        Self {
            op,
            target: target.to_owned(),
            message: DisplayErrorContext(e).to_string(),
        }
    }
}

/// Builds a client for the configured endpoint, region and static credentials.
pub fn client(cfg: &S3Config) -> Client {
    let creds = Credentials::new(
        cfg.access_key.expose(),
        cfg.secret_key.expose(),
        None,
        None,
        "streamgate-config",
    );
    let mut b = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(cfg.region.clone()))
        .credentials_provider(creds)
        .force_path_style(cfg.force_path_style);
    if !cfg.endpoint.is_empty() {
        b = b.endpoint_url(cfg.endpoint.clone());
    }
    Client::from_conf(b.build())
}

/// Creates the bucket when it is missing (`s3.create-bucket`: local stacks). Another process
/// creating it at the same moment is not an error.
///
/// # Errors
/// The bucket is missing and cannot be created.
pub async fn ensure_bucket(client: &Client, bucket: &str) -> Result<(), StorageError> {
    if client.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    match client.create_bucket().bucket(bucket).send().await {
        Ok(_) => {
            tracing::info!(bucket, "bucket created");
            Ok(())
        }
        Err(e) => {
            let already = e.as_service_error().is_some_and(|s| {
                s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()
            });
            if already || client.head_bucket().bucket(bucket).send().await.is_ok() {
                Ok(())
            } else {
                Err(StorageError::new("create bucket", bucket, e))
            }
        }
    }
}

/// Deletes every object under `prefix`, a page (up to 1000 keys) at a time.
///
/// # Errors
/// A listing or a deletion failed; what was deleted before stays deleted.
pub async fn delete_prefix(
    client: &Client,
    bucket: &str,
    prefix: &str,
) -> Result<(), StorageError> {
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .map_err(|e| StorageError::new("list", prefix, e))?;
        let ids: Vec<ObjectIdentifier> = page
            .contents()
            .iter()
            .filter_map(|o| o.key())
            .filter_map(|k| ObjectIdentifier::builder().key(k).build().ok())
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let delete = Delete::builder()
            .set_objects(Some(ids))
            .quiet(true)
            .build()
            .map_err(|e| StorageError::new("delete objects", prefix, e))?;
        client
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| StorageError::new("delete objects", prefix, e))?;
    }
}

/// Reads of an object whose body breaks off (a connection cut mid-body, or an object replaced
/// while it is read: S3 servers that overwrite files in place, such as s3s-fs, then hand out a
/// body that fails its checksum — a catalog record rewritten by a progress event did: s3s-fs
/// opens the data file, then reads the checksum a concurrent PUT may have replaced) are retried,
/// the whole GET, this many times in all, [`BODY_RETRY_BACKOFF`] doubling between attempts.
const BODY_ATTEMPTS: u32 = 5;
/// The first wait before reading a broken-off object again (then 40, 80, 160 ms).
const BODY_RETRY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(20);

/// The bytes of object `key`, or `None` when there is no such object (any other failure is an
/// error).
///
/// # Errors
/// S3 refused or could not be reached, or the body broke off [`BODY_ATTEMPTS`] times.
pub async fn get_if_exists(
    client: &Client,
    bucket: &str,
    key: &str,
) -> Result<Option<Vec<u8>>, StorageError> {
    let mut attempt = 1;
    loop {
        let obj = match client.get_object().bucket(bucket).key(key).send().await {
            Ok(o) => o,
            Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
                return Ok(None);
            }
            Err(e) => return Err(StorageError::new("get", key, e)),
        };
        match obj.body.collect().await {
            Ok(bytes) => return Ok(Some(bytes.to_vec())),
            Err(e) if attempt < BODY_ATTEMPTS => {
                tracing::debug!(key, attempt, error = %e, "object body broke off: reading it again");
                tokio::time::sleep(BODY_RETRY_BACKOFF * 2u32.pow(attempt - 1)).await;
                attempt += 1;
            }
            Err(e) => return Err(StorageError::new("get (body)", key, e)),
        }
    }
}
