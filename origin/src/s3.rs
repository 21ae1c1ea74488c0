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
