//! Responses the edge writes itself (health, errors): small JSON bodies with a stable shape,
//! `{"error": CODE, "message": TEXT}` plus an optional `reason`, as origin uses.

use bytes::Bytes;
use http::{HeaderName, Method, StatusCode, header};
use pingora::{Result, http::ResponseHeader, proxy::Session};
use serde::Serialize;

/// The JSON error body shared by every edge error.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct ErrorBody<'a> {
    /// Stable code (`forbidden`, `bad_request`, `not_found`, …).
    pub(crate) error: &'a str,
    /// Human-readable explanation.
    pub(crate) message: &'a str,
    /// Finer machine-readable cause (`expired`, `dot_segment`, …), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<&'a str>,
}

impl<'a> ErrorBody<'a> {
    pub(crate) fn new(error: &'a str, message: &'a str) -> Self {
        Self {
            error,
            message,
            reason: None,
        }
    }

    pub(crate) fn with_reason(mut self, reason: &'a str) -> Self {
        self.reason = Some(reason);
        self
    }
}

/// Serializes `body`; our bodies are plain structs of strings, which cannot fail to encode.
pub(crate) fn to_json(body: &impl Serialize) -> Bytes {
    serde_json::to_vec(body).map_or_else(|_| Bytes::from_static(b"{}"), Bytes::from)
}

/// Builds the header of a JSON response of `len` bytes. Edge-generated answers are never
/// cached by clients or intermediaries.
pub(crate) fn json_header(
    status: StatusCode,
    len: usize,
    extra: &[(HeaderName, &str)],
) -> Result<ResponseHeader> {
    let mut resp = ResponseHeader::build(status, Some(4 + extra.len()))?;
    resp.insert_header(header::CONTENT_TYPE, "application/json")?;
    resp.insert_header(header::CACHE_CONTROL, "no-store")?;
    for (name, value) in extra {
        resp.insert_header(name.clone(), *value)?;
    }
    resp.set_content_length(len)?;
    Ok(resp)
}

/// Builds the header of a response without a body (204, and no `Content-Length`, as RFC 9110
/// requires for 204).
pub(crate) fn empty_header(
    status: StatusCode,
    extra: &[(HeaderName, &str)],
) -> Result<ResponseHeader> {
    let mut resp = ResponseHeader::build(status, Some(2 + extra.len()))?;
    resp.insert_header(header::CACHE_CONTROL, "no-store")?;
    for (name, value) in extra {
        resp.insert_header(name.clone(), *value)?;
    }
    Ok(resp)
}

/// Writes a complete JSON response (header only for `HEAD`), keeping the connection reusable.
///
/// # Errors
/// Writing to the client failed (it went away).
pub(crate) async fn send_json(
    session: &mut Session,
    status: StatusCode,
    body: &impl Serialize,
    extra: &[(HeaderName, &str)],
) -> Result<()> {
    let body = to_json(body);
    let resp = json_header(status, body.len(), extra)?;
    if session.req_header().method == Method::HEAD {
        return session.write_response_header(Box::new(resp), true).await;
    }
    session.write_response_header(Box::new(resp), false).await?;
    session.write_response_body(Some(body), true).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_shape() {
        let b = ErrorBody::new("forbidden", "token expired").with_reason("expired");
        assert_eq!(
            &to_json(&b)[..],
            br#"{"error":"forbidden","message":"token expired","reason":"expired"}"#
        );
        let b = ErrorBody::new("not_found", "no such route");
        assert_eq!(
            &to_json(&b)[..],
            br#"{"error":"not_found","message":"no such route"}"#
        );
    }

    #[test]
    fn header_has_type_length_and_extras() {
        let h = json_header(
            StatusCode::METHOD_NOT_ALLOWED,
            12,
            &[(header::ALLOW, "GET")],
        )
        .unwrap();
        assert_eq!(h.status, StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(h.headers[header::CONTENT_TYPE], "application/json");
        assert_eq!(h.headers[header::CONTENT_LENGTH], "12");
        assert_eq!(h.headers[header::ALLOW], "GET");
        let h = empty_header(StatusCode::NO_CONTENT, &[(header::ALLOW, "GET")]).unwrap();
        assert!(h.headers.get(header::CONTENT_LENGTH).is_none());
        assert_eq!(h.headers[header::ALLOW], "GET");
    }
}
