//! S3 for the transcoder: the client origin uses too (`streamgate-storage`: built from `[s3]`
//! alone), and SDK errors as [`Error::S3`].

pub use streamgate_storage::{client, ensure_bucket};

use crate::Error;

/// Turns an SDK error into [`Error::S3`] with its full context chain.
pub(crate) fn s3_error(op: &'static str, key: &str, e: impl std::error::Error) -> Error {
    Error::S3(streamgate_storage::StorageError::new(op, key, e).to_string())
}
