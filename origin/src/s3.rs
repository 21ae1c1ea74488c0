//! The S3 client, built from `[s3]`, and the few bucket operations origin needs.

use aws_sdk_s3::{
    Client,
    config::{BehaviorVersion, Credentials, Region},
};
use streamgate_config::S3Config;

/// Builds a client for the configured endpoint with static credentials.
pub(crate) fn client(cfg: &S3Config) -> Client {
    let creds = Credentials::new(
        cfg.access_key.expose(),
        cfg.secret_key.expose(),
        None,
        None,
        "streamgate-config",
    );
    let mut b = aws_sdk_s3::config::Builder::new()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(cfg.region.clone()))
        .credentials_provider(creds)
        .force_path_style(cfg.force_path_style);
    if !cfg.endpoint.is_empty() {
        b = b.endpoint_url(&cfg.endpoint);
    }
    Client::from_conf(b.build())
}

/// Creates the bucket if it does not exist (local stacks set `create-bucket`).
pub(crate) async fn ensure_bucket(client: &Client, bucket: &str) -> Result<(), String> {
    if client.head_bucket().bucket(bucket).send().await.is_ok() {
        return Ok(());
    }
    match client.create_bucket().bucket(bucket).send().await {
        Ok(_) => Ok(()),
        Err(e) => {
            let again = client.head_bucket().bucket(bucket).send().await;
            again
                .map(|_| ())
                .map_err(|_| format!("cannot create bucket {bucket}: {e}"))
        }
    }
}

/// Deletes every object under `prefix`, a page (up to 1000 keys) at a time.
pub(crate) async fn delete_prefix(
    client: &Client,
    bucket: &str,
    prefix: &str,
) -> Result<(), crate::AppError> {
    use aws_sdk_s3::types::{Delete, ObjectIdentifier};
    let err = |e: &dyn std::fmt::Display| crate::AppError::storage(e);
    loop {
        let page = client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(prefix)
            .send()
            .await
            .map_err(|e| err(&aws_sdk_s3::error::DisplayErrorContext(e)))?;
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
            .map_err(|e| err(&e))?;
        client
            .delete_objects()
            .bucket(bucket)
            .delete(delete)
            .send()
            .await
            .map_err(|e| err(&aws_sdk_s3::error::DisplayErrorContext(e)))?;
    }
}
