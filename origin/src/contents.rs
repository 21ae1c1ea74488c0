//! Content records: `POST /v1/contents` creates one, `GET /v1/contents/{id}` reads it.
//!
//! Sign-in, ownership checks and policy validation arrive with the auth issues; the record
//! already carries `owner` and `policy` so they slot in.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use rand::{Rng, distr::Alphanumeric};
use serde::Deserialize;
use serde_json::{Value, json};
use streamgate_config::contract::is_valid_content_id;

use crate::{
    AppError, AppState,
    catalog::{ContentRecord, Status},
    error::AppResult,
    now_ms,
};

/// Body of `POST /v1/contents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateContent {
    title: String,
    #[serde(default)]
    policy: Option<Value>,
}

/// A fresh random id: 20 lowercase letters and digits (~103 bits).
pub(crate) fn new_id(len: usize) -> String {
    rand::rng()
        .sample_iter(Alphanumeric)
        .take(len)
        .map(|c| char::from(c).to_ascii_lowercase())
        .collect()
}

/// `POST /v1/contents` → 201 `{"id", "upload_url"}`.
pub(crate) async fn create(
    State(st): State<AppState>,
    body: Result<Json<CreateContent>, axum::extract::rejection::JsonRejection>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let Json(req) = body.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let title = req.title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(AppError::BadRequest(
            "title: must be 1 to 200 characters".into(),
        ));
    }
    let policy = req.policy.unwrap_or_else(|| json!({ "public": true }));
    if !policy.is_object() {
        return Err(AppError::BadRequest("policy: must be a JSON object".into()));
    }
    let now = now_ms();
    let rec = ContentRecord {
        id: new_id(20),
        title: title.to_owned(),
        owner: None,
        status: Status::AwaitingUpload,
        progress: 0.0,
        policy,
        renditions: Vec::new(),
        duration_s: None,
        error: None,
        has_audio: None,
        upload_id: None,
        created_at: now,
        updated_at: now,
    };
    st.catalog.create(&rec).await?;
    tracing::info!(content_id = %rec.id, "content created");
    let upload_url = format!("{}/v1/uploads", st.cfg.server.public_url);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": rec.id, "upload_url": upload_url })),
    ))
}

/// `GET /v1/contents/{id}`.
pub(crate) async fn get(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> AppResult<Json<ContentRecord>> {
    if !is_valid_content_id(&id) {
        return Err(AppError::BadRequest("malformed content id".into()));
    }
    let rec = st
        .catalog
        .get(&id)
        .await?
        .ok_or(AppError::NotFound("no such content"))?;
    Ok(Json(rec))
}
