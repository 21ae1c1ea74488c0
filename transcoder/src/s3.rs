//! The S3 client, built from `[s3]` alone (no ambient AWS environment or profile files).

use aws_sdk_s3::{
    Client,
    config::{BehaviorVersion, Credentials, Region},
    error::DisplayErrorContext,
};
use streamgate_config::S3Config;

use crate::Error;

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

/// Creates the bucket when it is missing (only when `s3.create-bucket` is set: local stacks).
///
/// # Errors
/// [`Error::S3`] when the bucket is missing and cannot be created.
pub(crate) async fn ensure_bucket(client: &Client, bucket: &str) -> Result<(), Error> {
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
            if already {
                Ok(())
            } else {
                Err(s3_error("create bucket", bucket, e))
            }
        }
    }
}

/// Turns an SDK error into [`Error::S3`] with its full context chain.
pub(crate) fn s3_error<E: std::error::Error + Send + Sync + 'static>(
    op: &str,
    key: &str,
    e: E,
) -> Error {
    Error::S3(format!("{op} {key}: {}", DisplayErrorContext(e)))
}
