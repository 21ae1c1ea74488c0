//! A small tus 1.0 client for StreamGate's origin: create a content, create an upload, `PATCH`
//! bytes at an offset, ask the durable offset, terminate. Each call returns the raw response
//! (callers time it, count it, or assert on its status), so the load generator and the test
//! kit drive uploads the same way a resumable uploader does.

use base64::{Engine, engine::general_purpose::STANDARD};
use bytes::Bytes;
use reqwest::{Response, Url};
use serde_json::{Value, json};

/// The tus protocol version origin speaks.
pub const TUS_VERSION: &str = "1.0.0";
/// The media type of `PATCH` bodies.
pub const OCTET: &str = "application/offset+octet-stream";

/// A signed-in creator's client for one origin.
#[derive(Debug, Clone)]
pub struct TusClient {
    http: reqwest::Client,
    origin: Url,
    session: String,
}

impl TusClient {
    /// A client for `origin` (its public base URL) with the creator's `session` token.
    pub fn new(http: reqwest::Client, origin: Url, session: impl Into<String>) -> Self {
        Self {
            http,
            origin,
            session: session.into(),
        }
    }

    /// The session token this client sends.
    pub fn session(&self) -> &str {
        &self.session
    }

    fn url(&self, path: &str) -> Url {
        self.origin
            .join(path)
            .unwrap_or_else(|_| self.origin.clone())
    }

    /// `POST /v1/contents` `{"title", "policy"}`.
    ///
    /// # Errors
    /// Transport errors only; the status is the caller's to judge.
    pub async fn create_content(&self, title: &str, policy: &Value) -> reqwest::Result<Response> {
        self.http
            .post(self.url("v1/contents"))
            .bearer_auth(&self.session)
            .json(&json!({ "title": title, "policy": policy }))
            .send()
            .await
    }

    /// tus creation (`POST /v1/uploads`) of `length` bytes for `content_id`.
    ///
    /// # Errors
    /// Transport errors only.
    pub async fn create(
        &self,
        content_id: &str,
        length: u64,
        filename: &str,
    ) -> reqwest::Result<Response> {
        let meta = format!(
            "content_id {},filename {}",
            STANDARD.encode(content_id),
            STANDARD.encode(filename)
        );
        self.http
            .post(self.url("v1/uploads"))
            .bearer_auth(&self.session)
            .header("tus-resumable", TUS_VERSION)
            .header("upload-length", length.to_string())
            .header("upload-metadata", meta)
            .send()
            .await
    }

    /// The upload URL a creation answered with (`Location`, resolved against origin).
    pub fn location(&self, created: &Response) -> Option<Url> {
        created
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .and_then(|l| self.origin.join(l).ok())
    }

    /// One `PATCH` of `body` at `offset`.
    ///
    /// # Errors
    /// Transport errors only.
    pub async fn patch(&self, upload: &Url, offset: u64, body: Bytes) -> reqwest::Result<Response> {
        self.http
            .patch(upload.clone())
            .bearer_auth(&self.session)
            .header("tus-resumable", TUS_VERSION)
            .header("upload-offset", offset.to_string())
            .header("content-type", OCTET)
            .body(body)
            .send()
            .await
    }

    /// `HEAD`: the durable offset to resume from (`Upload-Offset`).
    ///
    /// # Errors
    /// Transport errors only.
    pub async fn head(&self, upload: &Url) -> reqwest::Result<Response> {
        self.http
            .head(upload.clone())
            .bearer_auth(&self.session)
            .header("tus-resumable", TUS_VERSION)
            .send()
            .await
    }

    /// Termination (`DELETE`).
    ///
    /// # Errors
    /// Transport errors only.
    pub async fn terminate(&self, upload: &Url) -> reqwest::Result<Response> {
        self.http
            .delete(upload.clone())
            .bearer_auth(&self.session)
            .header("tus-resumable", TUS_VERSION)
            .send()
            .await
    }
}

/// `Upload-Offset` of a response, if it carries a valid one.
pub fn offset_of(r: &Response) -> Option<u64> {
    r.headers()
        .get("upload-offset")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}
