//! The origin's error type: one variant per cause, each mapped to a status and a stable code.
//! Clients get `{"error": CODE, "message": TEXT}`; internal details are logged, not sent.

use axum::{
    Json,
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::json;

use crate::metrics::METRICS;

/// Everything a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is malformed; the message says how.
    #[error("{0}")]
    BadRequest(String),
    /// No such content, upload or object.
    #[error("{0}")]
    NotFound(&'static str),
    /// The request conflicts with the resource's state (tus offset mismatch, wrong status).
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// Wrong `Content-Type`.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// A tus `Upload-Checksum` did not match the body (nothing of it was stored).
    #[error("Upload-Checksum does not match the body; nothing of it was stored")]
    ChecksumMismatch,
    /// tus version not supported.
    #[error("unsupported tus version; this server speaks 1.0.0")]
    TusVersion,
    /// Another request holds the resource (tus: an upload is being written).
    #[error("{0}")]
    Locked(&'static str),
    /// Too many requests from this client; the argument names the limit.
    #[error("too many {0} requests; retry in a minute")]
    RateLimited(&'static str),
    /// No session, or a bad one; the argument says why (stable code).
    #[error("{1}")]
    Unauthorized(&'static str, String),
    /// Signed in, but not allowed (not the owner).
    #[error("{0}")]
    Forbidden(&'static str),
    /// A requested byte range cannot be served.
    #[error("requested range not satisfiable")]
    RangeNotSatisfiable(Option<u64>),
    /// Redis could not be reached.
    #[error("redis unavailable")]
    Redis(#[from] redis::RedisError),
    /// No RPC endpoint of the chain answered (contract-wallet sign-in fails closed).
    #[error("{0}")]
    RpcUnavailable(String),
    /// S3 failed.
    #[error("storage unavailable")]
    Storage(String),
    /// Anything else that is our fault.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    fn status_code(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AppError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            AppError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            AppError::TusVersion => (StatusCode::PRECONDITION_FAILED, "tus_version"),
            // tus `checksum`: 460 Checksum Mismatch (a status of the tus protocol, not of HTTP).
            AppError::ChecksumMismatch => (
                StatusCode::from_u16(460).unwrap_or(StatusCode::BAD_REQUEST),
                "checksum_mismatch",
            ),
            AppError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            AppError::Unauthorized(code, _) => (StatusCode::UNAUTHORIZED, code),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::Locked(_) => (StatusCode::LOCKED, "locked"),
            AppError::RangeNotSatisfiable(_) => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable")
            }
            AppError::Redis(_) => (StatusCode::SERVICE_UNAVAILABLE, "redis_unavailable"),
            AppError::RpcUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "rpc_unavailable"),
            AppError::Storage(_) => (StatusCode::BAD_GATEWAY, "storage_unavailable"),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// Wraps any S3 SDK error.
    pub(crate) fn storage(e: impl std::fmt::Display) -> Self {
        AppError::Storage(e.to_string())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_code();
        METRICS.errors.with_label_values(&[code]).inc();
        match &self {
            AppError::Redis(e) => tracing::warn!(cause = %e, "redis error"),
            AppError::Storage(e) => tracing::warn!(cause = %e, "storage error"),
            AppError::Internal(e) => tracing::error!(cause = %e, "internal error"),
            other => tracing::debug!(code, message = %other, "client error"),
        }
        let body = json!({ "error": code, "message": self.to_string() });
        let mut resp = (status, Json(body)).into_response();
        let h = resp.headers_mut();
        h.insert("tus-resumable", HeaderValue::from_static("1.0.0"));
        if let AppError::RangeNotSatisfiable(Some(len)) = self
            && let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}"))
        {
            h.insert(header::CONTENT_RANGE, v);
        }
        resp
    }
}

/// Handler result.
pub(crate) type AppResult<T> = Result<T, AppError>;
