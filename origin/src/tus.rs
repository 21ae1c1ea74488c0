//! tus 1.0 resumable uploads at `/v1/uploads` (core protocol and the creation,
//! creation-with-upload, creation-defer-length, termination, expiration, checksum and
//! concatenation extensions). The bytes go to [`crate::uploads`].
//!
//! Concatenation: partial uploads (`Upload-Concat: partial`) belong to no content and write
//! objects of their own; a final upload (`Upload-Concat: final;<partial URLs>`) names the
//! content, takes every partial's lease, checks they are the caller's and complete, and
//! assembles them in order into the content's source before handing it on as any upload.
//!
//! <https://tus.io/protocols/resumable-upload> — every request but `OPTIONS` must carry
//! `Tus-Resumable: 1.0.0`; `PATCH` bodies are `application/offset+octet-stream` and must start
//! at the upload's current `Upload-Offset`.

use std::collections::BTreeMap;

use axum::{
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use streamgate_config::contract::is_valid_content_id;

use crate::{
    AppError, AppState,
    catalog::Status,
    contents::{ensure_owner, new_id},
    error::AppResult,
    jobs,
    signin::Authed,
    uploads::{Algo, Checksum, Concat, Stage, UploadState},
};

const TUS_VERSION: &str = "1.0.0";
const EXTENSIONS: &str = "creation,creation-with-upload,creation-defer-length,termination,\
     expiration,checksum,concatenation";
/// Most partial uploads one final upload may name.
const MAX_PARTIALS: usize = 100;

/// `Upload-Expires` of an unfinished upload (tus `expiration`), as an HTTP date.
fn expires(app: &AppState, st: &UploadState) -> Option<(&'static str, String)> {
    st.expires_at(app.cfg.uploads.expiry).map(|ms| {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
        ("upload-expires", httpdate::fmt_http_date(at))
    })
}
const OCTET: &str = "application/offset+octet-stream";

fn tus_headers(extra: &[(&str, String)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    for (k, v) in extra {
        if let (Ok(name), Ok(val)) = (
            header::HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(v),
        ) {
            h.insert(name, val);
        }
    }
    h
}

fn check_version(h: &HeaderMap) -> AppResult<()> {
    match h.get("tus-resumable").and_then(|v| v.to_str().ok()) {
        Some(TUS_VERSION) => Ok(()),
        _ => Err(AppError::TusVersion),
    }
}

/// Parses a non-negative decimal header (tus forbids signs, spaces and leading `+`).
pub(crate) fn u64_header(h: &HeaderMap, name: &str) -> AppResult<Option<u64>> {
    let Some(v) = h.get(name) else {
        return Ok(None);
    };
    let s = v
        .to_str()
        .map_err(|_| AppError::BadRequest(format!("{name}: not ASCII")))?;
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AppError::BadRequest(format!(
            "{name}: must be a non-negative integer, got {s:?}"
        )));
    }
    s.parse()
        .map(Some)
        .map_err(|_| AppError::BadRequest(format!("{name}: out of range: {s:?}")))
}

/// Parses `Upload-Checksum: <algorithm> <base64 digest>` (tus `checksum`); an algorithm this
/// server does not list in `Tus-Checksum-Algorithm` is a 400, as the protocol asks.
pub(crate) fn checksum_header(h: &HeaderMap) -> AppResult<Option<Checksum>> {
    let Some(v) = h.get("upload-checksum") else {
        return Ok(None);
    };
    let bad = |why: &str| AppError::BadRequest(format!("Upload-Checksum: {why}"));
    let s = v.to_str().map_err(|_| bad("not ASCII"))?;
    let (name, b64) = s
        .split_once(' ')
        .ok_or_else(|| bad("expected \"<algorithm> <base64 digest>\""))?;
    let algo = Algo::parse(name).ok_or_else(|| {
        bad(&format!(
            "unsupported algorithm {name:?}; supported: {}",
            Algo::LIST
        ))
    })?;
    let digest = STANDARD
        .decode(b64.trim())
        .map_err(|_| bad("the digest is not base64"))?;
    if digest.len() != algo.len() {
        return Err(bad(&format!(
            "a {name} digest has {} bytes, got {}",
            algo.len(),
            digest.len()
        )));
    }
    Ok(Some(Checksum { algo, digest }))
}

/// What `Upload-Concat` asks for.
enum ConcatRequest {
    Partial,
    /// The partial uploads' ids, in order.
    Final(Vec<String>),
}

/// Parses `Upload-Concat: partial` or `final;<upload URL> <upload URL> …` (absolute or
/// relative URLs of this server's `/v1/uploads/{id}`).
fn concat_header(h: &HeaderMap) -> AppResult<Option<ConcatRequest>> {
    let Some(v) = h.get("upload-concat") else {
        return Ok(None);
    };
    let bad = |why: String| AppError::BadRequest(format!("Upload-Concat: {why}"));
    let s = v.to_str().map_err(|_| bad("not ASCII".into()))?;
    if s.trim() == "partial" {
        return Ok(Some(ConcatRequest::Partial));
    }
    let list = s
        .strip_prefix("final;")
        .ok_or_else(|| bad("expected \"partial\" or \"final;<upload URLs>\"".into()))?;
    let mut ids: Vec<String> = Vec::new();
    for url in list.split_whitespace() {
        let id = url
            .rsplit_once("/v1/uploads/")
            .map(|(_, id)| id)
            .filter(|id| is_valid_content_id(id))
            .ok_or_else(|| bad(format!("{url:?} is not an upload URL of this server")))?;
        if ids.iter().any(|i| i == id) {
            return Err(bad(format!("{url:?} is named twice")));
        }
        ids.push(id.to_owned());
    }
    if ids.is_empty() || ids.len() > MAX_PARTIALS {
        return Err(bad(format!(
            "name 1 to {MAX_PARTIALS} partial uploads, got {}",
            ids.len()
        )));
    }
    Ok(Some(ConcatRequest::Final(ids)))
}

/// `Upload-Length`, or the length's deferral (`Upload-Defer-Length: 1`, tus
/// `creation-defer-length`) as `None`; one of the two is required, not both.
fn length_header(h: &HeaderMap) -> AppResult<Option<u64>> {
    let length = u64_header(h, "Upload-Length")?;
    match (length, h.get("upload-defer-length")) {
        (Some(_), Some(_)) => Err(AppError::BadRequest(
            "send Upload-Length or Upload-Defer-Length, not both".into(),
        )),
        (None, Some(v)) if v.as_bytes() == b"1" => Ok(None),
        (None, Some(_)) => Err(AppError::BadRequest(
            "Upload-Defer-Length: must be 1".into(),
        )),
        (None, None) => Err(AppError::BadRequest(
            "Upload-Length: required (or Upload-Defer-Length: 1)".into(),
        )),
        (Some(l), None) => Ok(Some(l)),
    }
}

/// Parses `Upload-Metadata`: `key base64,key2 base64,key3`.
pub(crate) fn parse_metadata(raw: &str) -> AppResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for pair in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut it = pair.splitn(2, ' ');
        let key = it.next().unwrap_or_default();
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_graphic() && b != b',') {
            return Err(AppError::BadRequest(format!(
                "Upload-Metadata: bad key {key:?}"
            )));
        }
        let value = match it.next().map(str::trim) {
            None | Some("") => String::new(),
            Some(b64) => {
                let bytes = STANDARD.decode(b64).map_err(|_| {
                    AppError::BadRequest(format!("Upload-Metadata: value of {key:?} is not base64"))
                })?;
                String::from_utf8(bytes).map_err(|_| {
                    AppError::BadRequest(format!("Upload-Metadata: value of {key:?} is not UTF-8"))
                })?
            }
        };
        if out.insert(key.to_owned(), value).is_some() {
            return Err(AppError::BadRequest(format!(
                "Upload-Metadata: duplicate key {key:?}"
            )));
        }
    }
    Ok(out)
}

/// `OPTIONS /v1/uploads[/{id}]`: what this server supports.
pub(crate) async fn options(State(app): State<AppState>) -> Response {
    let h = tus_headers(&[
        ("tus-version", TUS_VERSION.into()),
        ("tus-extension", EXTENSIONS.into()),
        ("tus-checksum-algorithm", Algo::LIST.into()),
        ("tus-max-size", app.cfg.uploads.max_size.to_string()),
    ]);
    (StatusCode::NO_CONTENT, h).into_response()
}

/// `POST /v1/uploads`: creates an upload for the content named in `Upload-Metadata`
/// (`content_id`), optionally with the first bytes in the body.
pub(crate) async fn create(
    State(app): State<AppState>,
    who: Authed,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Response> {
    check_version(&headers)?;
    let concat = concat_header(&headers)?;
    let metadata = match headers.get("upload-metadata") {
        Some(v) => parse_metadata(
            v.to_str()
                .map_err(|_| AppError::BadRequest("Upload-Metadata: not ASCII".into()))?,
        )?,
        None => BTreeMap::new(),
    };
    let partial = match concat {
        Some(ConcatRequest::Final(ids)) => return create_final(&app, &who, metadata, ids).await,
        Some(ConcatRequest::Partial) => true,
        None => false,
    };
    let length = length_header(&headers)?;
    if let Some(length) = length
        && length > app.cfg.uploads.max_size
    {
        return Err(AppError::TooLarge(format!(
            "Upload-Length {length} exceeds Tus-Max-Size {}",
            app.cfg.uploads.max_size
        )));
    }
    let upload_id = new_id(24);
    // A partial upload belongs to no content (its final upload names one).
    let content_id = if partial {
        if length.is_none() {
            return Err(AppError::BadRequest(
                "Upload-Length: a partial upload states its length".into(),
            ));
        }
        String::new()
    } else {
        let content_id = content_id_of(&metadata)?;
        claim(&app, &who, &content_id, &upload_id).await?;
        content_id
    };
    let st = app
        .uploads
        .create(
            upload_id.clone(),
            &content_id,
            &who.0.sub,
            length,
            metadata,
            partial.then_some(Concat::Partial),
        )
        .await?;
    tracing::info!(%upload_id, %content_id, ?length, "upload created");
    let location = format!("{}/v1/uploads/{upload_id}", app.cfg.server.public_url);
    let with_body = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(OCTET.as_bytes()));
    let st = if with_body {
        let lease = app.uploads.lease(&upload_id).await?;
        let written = write(&app, st, 0, &headers, body).await;
        lease.release().await;
        written?
    } else {
        st
    };
    let mut extra = vec![
        ("location", location),
        ("upload-offset", st.offset().to_string()),
    ];
    extra.extend(expires(&app, &st));
    let h = tus_headers(&extra);
    Ok((StatusCode::CREATED, h).into_response())
}

/// The content an upload is for (`Upload-Metadata: content_id`).
fn content_id_of(metadata: &BTreeMap<String, String>) -> AppResult<String> {
    let content_id = metadata
        .get("content_id")
        .cloned()
        .ok_or_else(|| AppError::BadRequest("Upload-Metadata: content_id is required".into()))?;
    if !is_valid_content_id(&content_id) {
        return Err(AppError::BadRequest(
            "Upload-Metadata: content_id is malformed".into(),
        ));
    }
    Ok(content_id)
}

/// Claims content `content_id` (the caller's) for upload `upload_id`; refused once the content
/// is past uploading.
async fn claim(app: &AppState, who: &Authed, content_id: &str, upload_id: &str) -> AppResult<()> {
    app.catalog
        .update(content_id, |r| {
            ensure_owner(r, who)?;
            match r.status {
                Status::AwaitingUpload | Status::Uploading | Status::Failed => {
                    r.status = Status::Uploading;
                    r.upload_id = Some(upload_id.to_owned());
                    r.error = None;
                    Ok(true)
                }
                s => Err(AppError::Conflict(format!(
                    "content is {}; it takes no new upload",
                    serde_json::to_value(s)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default()
                ))),
            }
        })
        .await?;
    Ok(())
}

/// A final upload (tus `concatenation`): assembles the caller's complete partial uploads
/// `ids`, in order, into the content's source and hands it on. Every partial's lease is held
/// meanwhile, so two finals cannot consume one partial.
async fn create_final(
    app: &AppState,
    who: &Authed,
    metadata: BTreeMap<String, String>,
    ids: Vec<String>,
) -> AppResult<Response> {
    let content_id = content_id_of(&metadata)?;
    let mut leases = Vec::with_capacity(ids.len());
    let assembled = async {
        let mut parts = Vec::with_capacity(ids.len());
        for id in &ids {
            leases.push(app.uploads.lease(id).await?);
            let p = match app.uploads.get(id).await? {
                Some(p) if p.owner == who.0.sub && p.is_partial() => p,
                _ => {
                    return Err(AppError::BadRequest(format!(
                        "Upload-Concat: {id} is not a partial upload of yours"
                    )));
                }
            };
            if p.stage == Stage::Receiving {
                return Err(AppError::BadRequest(format!(
                    "Upload-Concat: partial upload {id} is not complete ({} of {} bytes)",
                    p.offset(),
                    p.length.unwrap_or_default()
                )));
            }
            parts.push(p);
        }
        let total: u64 = parts.iter().map(UploadState::offset).sum();
        if total > app.cfg.uploads.max_size {
            return Err(AppError::TooLarge(format!(
                "the partial uploads hold {total} bytes, more than Tus-Max-Size {}",
                app.cfg.uploads.max_size
            )));
        }
        let upload_id = new_id(24);
        claim(app, who, &content_id, &upload_id).await?;
        let st = app
            .uploads
            .create(
                upload_id,
                &content_id,
                &who.0.sub,
                Some(total),
                metadata,
                Some(Concat::Final { parts: ids.clone() }),
            )
            .await?;
        let mut st = app.uploads.assemble(st, &parts).await?;
        jobs::finalize(app, &mut st).await?;
        Ok(st)
    }
    .await;
    for lease in leases {
        lease.release().await;
    }
    let st = assembled?;
    tracing::info!(upload_id = %st.id, %content_id, partials = ids.len(), bytes = st.offset(), "final upload assembled");
    let location = format!("{}/v1/uploads/{}", app.cfg.server.public_url, st.id);
    let h = tus_headers(&[
        ("location", location),
        ("upload-offset", st.offset().to_string()),
    ]);
    Ok((StatusCode::CREATED, h).into_response())
}

/// `Upload-Concat` of an upload, as HEAD reports it.
fn concat_value(app: &AppState, st: &UploadState) -> Option<(&'static str, String)> {
    let v = match st.concat.as_ref()? {
        Concat::Partial => "partial".to_owned(),
        Concat::Final { parts } => {
            let urls: Vec<String> = parts
                .iter()
                .map(|id| format!("{}/v1/uploads/{id}", app.cfg.server.public_url))
                .collect();
            format!("final;{}", urls.join(" "))
        }
    };
    Some(("upload-concat", v))
}

/// Reads an upload that `who` may write to (404 for others' uploads too: ids are not leaked).
async fn load(app: &AppState, id: &str, who: &Authed) -> AppResult<UploadState> {
    if !is_valid_content_id(id) {
        return Err(AppError::NotFound("no such upload"));
    }
    match app.uploads.get(id).await? {
        Some(st) if st.owner == who.0.sub => Ok(st),
        _ => Err(AppError::NotFound("no such upload")),
    }
}

/// `HEAD /v1/uploads/{id}`: the durable offset to resume from.
pub(crate) async fn head(
    State(app): State<AppState>,
    Path(id): Path<String>,
    who: Authed,
    headers: HeaderMap,
) -> AppResult<Response> {
    check_version(&headers)?;
    let mut st = load(&app, &id, &who).await?;
    if st.stage == Stage::Stored && !st.is_partial() {
        // Stored but not handed on (a failure after the last byte): a resuming client sees
        // the upload complete and will not PATCH again, so hand it on now.
        if let Ok(lease) = app.uploads.lease(&id).await {
            if let Err(e) = jobs::finalize(&app, &mut st).await {
                tracing::warn!(upload_id = %id, cause = %e, "finalize on HEAD failed");
            }
            lease.release().await;
        }
    }
    let mut extra = vec![
        ("upload-offset", st.offset().to_string()),
        ("cache-control", "no-store".into()),
        match st.length {
            Some(len) => ("upload-length", len.to_string()),
            None => ("upload-defer-length", "1".into()),
        },
    ];
    extra.extend(expires(&app, &st));
    extra.extend(concat_value(&app, &st));
    let h = tus_headers(&extra);
    Ok((StatusCode::OK, h).into_response())
}

/// `PATCH /v1/uploads/{id}`: appends the body at `Upload-Offset`.
pub(crate) async fn patch(
    State(app): State<AppState>,
    Path(id): Path<String>,
    who: Authed,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Response> {
    check_version(&headers)?;
    let ct_ok = headers
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(OCTET.as_bytes()));
    if !ct_ok {
        return Err(AppError::UnsupportedMediaType(format!(
            "Content-Type must be {OCTET}"
        )));
    }
    let offset = u64_header(&headers, "Upload-Offset")?
        .ok_or_else(|| AppError::BadRequest("Upload-Offset: required".into()))?;
    // Ownership before the lease: someone else's request must not hold the owner's upload
    // at 423 (it gets the same 404 as an unknown id). The state is read again under the lease.
    load(&app, &id, &who).await?;
    let lease = app.uploads.lease(&id).await?;
    let written = match load(&app, &id, &who).await {
        Ok(st) if matches!(st.concat, Some(Concat::Final { .. })) => Err(AppError::Forbidden(
            "a final upload is assembled from its partial uploads; it takes no PATCH",
        )),
        Ok(st) => write(&app, st, offset, &headers, body).await,
        Err(e) => Err(e),
    };
    lease.release().await;
    let st = written?;
    let mut extra = vec![("upload-offset", st.offset().to_string())];
    extra.extend(expires(&app, &st));
    let h = tus_headers(&extra);
    Ok((StatusCode::NO_CONTENT, h).into_response())
}

/// Appends a body and, when the upload is whole, hands it on. The caller holds the lease.
/// A deferred length is stated here by the request's `Upload-Length` (which must not
/// contradict a length already known).
async fn write(
    app: &AppState,
    mut st: UploadState,
    offset: u64,
    headers: &HeaderMap,
    body: Body,
) -> AppResult<UploadState> {
    let checksum = checksum_header(headers)?;
    if let Some(len) = u64_header(headers, "Upload-Length")?
        && st.length != Some(len)
    {
        st.set_length(len, app.cfg.uploads.max_size)?;
        app.uploads.save(&mut st).await?; // stated once, kept even if the body fails
    }
    let (limit, what) = match st.length {
        Some(l) => (l, "Upload-Length"),
        None => (app.cfg.uploads.max_size, "Tus-Max-Size"),
    };
    if let Some(len) = u64_header(headers, "Content-Length")?
        && offset.saturating_add(len) > limit
    {
        return Err(AppError::TooLarge(format!(
            "Upload-Offset {offset} + Content-Length {len} exceeds {what} {limit}"
        )));
    }
    let mut st = app
        .uploads
        .append(st, offset, body.into_data_stream(), checksum)
        .await?;
    // A complete partial upload waits for its final upload.
    if st.stage == Stage::Stored && !st.is_partial() {
        jobs::finalize(app, &mut st).await?;
    }
    Ok(st)
}

/// `DELETE /v1/uploads/{id}` (termination): aborts the upload and frees its storage.
pub(crate) async fn delete(
    State(app): State<AppState>,
    Path(id): Path<String>,
    who: Authed,
    headers: HeaderMap,
) -> AppResult<Response> {
    check_version(&headers)?;
    load(&app, &id, &who).await?; // ownership before the lease, as in PATCH
    let lease = app.uploads.lease(&id).await?;
    let terminated = match load(&app, &id, &who).await {
        Ok(st) => app.uploads.terminate(&st).await.map(|()| st),
        Err(e) => Err(e),
    };
    lease.release().await;
    let st = terminated?;
    if st.stage == Stage::Receiving && !st.is_partial() {
        app.catalog
            .update(&st.content_id, |r| {
                if r.upload_id.as_deref() == Some(id.as_str()) && r.status == Status::Uploading {
                    r.status = Status::AwaitingUpload;
                    r.upload_id = None;
                    return Ok(true);
                }
                Ok(false)
            })
            .await?;
    }
    tracing::info!(upload_id = %id, "upload terminated");
    Ok((StatusCode::NO_CONTENT, tus_headers(&[])).into_response())
}

/// The expiration sweeper: every few seconds, cleans up unfinished uploads past their expiry
/// (S3 multipart aborted, partial object deleted, state gone) and puts their content back to
/// `awaiting_upload` with the reason. Runs in every origin; the upload lease keeps two from
/// sweeping the same upload at once, and a sweep is idempotent anyway.
pub(crate) async fn sweep_expired(app: AppState, mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let every = (app.cfg.uploads.expiry / 4).clamp(
        std::time::Duration::from_millis(250),
        std::time::Duration::from_secs(30),
    );
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            () = tokio::time::sleep(every) => {}
        }
        let ids = match app.uploads.expired(100).await {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(cause = %e, "upload sweeper: cannot list expired uploads");
                continue;
            }
        };
        for id in ids {
            let Ok(lease) = app.uploads.lease(&id).await else {
                continue; // a request is writing it: not expired after all
            };
            let swept = app.uploads.sweep(&id).await;
            lease.release().await;
            match swept {
                Ok(Some(st)) => {
                    let reset = app
                        .catalog
                        .update(&st.content_id, |r| {
                            if r.upload_id.as_deref() == Some(id.as_str())
                                && r.status == Status::Uploading
                            {
                                r.status = Status::AwaitingUpload;
                                r.upload_id = None;
                                r.error = Some("the upload expired before it was complete".into());
                                return Ok(true);
                            }
                            Ok(false)
                        })
                        .await;
                    if let Err(e) = reset
                        && !matches!(e, AppError::NotFound(_))
                    {
                        tracing::warn!(upload_id = %id, cause = %e, "expired upload: content not reset");
                    }
                    tracing::info!(upload_id = %id, content_id = %st.content_id, "expired upload cleaned up");
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(upload_id = %id, cause = %e, "expired upload not cleaned up")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_parsing() {
        let m = parse_metadata("content_id YWJj,filename dGVzdC5tcDQ=,is_confidential").unwrap();
        assert_eq!(m["content_id"], "abc");
        assert_eq!(m["filename"], "test.mp4");
        assert_eq!(m["is_confidential"], "");
        assert!(parse_metadata("content_id !!!").is_err());
        assert!(parse_metadata("a YQ==,a YQ==").is_err());
    }

    #[test]
    fn offsets_are_strict_decimals() {
        let mut h = HeaderMap::new();
        for (v, ok) in [
            ("0", true),
            ("123", true),
            ("-1", false),
            ("+1", false),
            (" 1", false),
            ("1e3", false),
            ("", false),
        ] {
            h.insert("upload-offset", HeaderValue::from_str(v).unwrap());
            assert_eq!(u64_header(&h, "upload-offset").is_ok(), ok, "{v:?}");
        }
        assert_eq!(
            u64_header(&HeaderMap::new(), "upload-offset").unwrap(),
            None
        );
    }
}
