//! Content records: `POST /v1/contents` creates one for the signed-in creator (its owner),
//! `GET /v1/contents/{id}` reads it, and the owner alone may `PUT …/policy` or `DELETE` it.
//! Policies are validated with [`Policy::parse_with`] against the chains origin accepts for
//! sign-in; a bad one is a 400 whose message names the field (`policy.any[0].erc721.contract:
//! not an EVM address …`). The record stores the policy's canonical form: what edges enforce.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use rand::{Rng, distr::Alphanumeric};
use serde::Deserialize;
use serde_json::{Value, json};
use streamgate_config::contract::is_valid_content_id;
use streamgate_entitlements::Policy;

use streamgate_config::contract::{Invalidation, keys};

use crate::{
    AppError, AppState,
    catalog::{ContentRecord, Status},
    error::AppResult,
    now_ms,
    signin::{Authed, MaybeAuthed, publish},
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
    Authed(who): Authed,
    body: Result<Json<CreateContent>, axum::extract::rejection::JsonRejection>,
) -> AppResult<(StatusCode, Json<Value>)> {
    let Json(req) = body.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let title = req.title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(AppError::BadRequest(
            "title: must be 1 to 200 characters".into(),
        ));
    }
    let policy = match req.policy {
        Some(p) => check_policy(&st, &p)?,
        None => Policy::public().to_value(),
    };
    let now = now_ms();
    let rec = ContentRecord {
        id: new_id(20),
        title: title.to_owned(),
        owner: Some(who.sub.clone()),
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
    tracing::info!(content_id = %rec.id, owner = %who.sub, "content created");
    let upload_url = format!("{}/v1/uploads", st.cfg.server.public_url);
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": rec.id, "upload_url": upload_url })),
    ))
}

/// What anyone may read about a content: the contract's fields (README, API reference). The
/// policy is public on purpose (players say whom a video is for); the owner's own fields
/// (the tus `upload_id`, which names their upload, and bookkeeping times) are not. A typed
/// view, so a field added to the record stays private until it is added here.
#[derive(Debug, serde::Serialize)]
pub(crate) struct PublicView<'a> {
    id: &'a str,
    title: &'a str,
    owner: Option<&'a str>,
    status: Status,
    progress: f32,
    policy: &'a Value,
    renditions: &'a [streamgate_config::contract::Rendition],
    duration_s: Option<f64>,
    error: Option<&'a str>,
    has_audio: Option<bool>,
}

impl<'a> From<&'a ContentRecord> for PublicView<'a> {
    fn from(r: &'a ContentRecord) -> Self {
        Self {
            id: &r.id,
            title: &r.title,
            owner: r.owner.as_deref(),
            status: r.status,
            progress: r.progress,
            policy: &r.policy,
            renditions: &r.renditions,
            duration_s: r.duration_s,
            error: r.error.as_deref(),
            has_audio: r.has_audio,
        }
    }
}

/// `GET /v1/contents/{id}`: the whole record for its owner, the [`PublicView`] for anyone
/// else (anonymous callers and edges included).
pub(crate) async fn get(
    State(st): State<AppState>,
    Path(id): Path<String>,
    MaybeAuthed(who): MaybeAuthed,
) -> AppResult<Json<Value>> {
    if !is_valid_content_id(&id) {
        return Err(AppError::BadRequest("malformed content id".into()));
    }
    let rec = st
        .catalog
        .get(&id)
        .await?
        .ok_or(AppError::NotFound("no such content"))?;
    let owner = who.is_some_and(|c| rec.owner.as_deref() == Some(c.sub.as_str()));
    let body = if owner {
        serde_json::to_value(&rec)
    } else {
        serde_json::to_value(PublicView::from(&rec))
    }
    .map_err(|e| AppError::Internal(format!("serialize content: {e}")))?;
    Ok(Json(body))
}

/// Validates a policy; returns its canonical form, or a 400 naming the bad field.
fn check_policy(st: &AppState, policy: &Value) -> AppResult<Value> {
    Policy::parse_with(policy, &st.auth.policy_chains)
        .map(|p| p.to_value())
        .map_err(|e| AppError::BadRequest(e.to_string()))
}

/// Refuses anyone but the content's owner.
pub(crate) fn ensure_owner(rec: &ContentRecord, who: &Authed) -> AppResult<()> {
    if rec.owner.as_deref() == Some(who.0.sub.as_str()) {
        Ok(())
    } else {
        Err(AppError::Forbidden("only the content's owner may do this"))
    }
}

/// Body of `PUT /v1/contents/{id}/policy`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutPolicy {
    policy: Value,
}

/// `PUT /v1/contents/{id}/policy` (owner only) → the updated record; edges are told to drop
/// cached decisions for it.
pub(crate) async fn put_policy(
    State(st): State<AppState>,
    Path(id): Path<String>,
    who: Authed,
    body: Result<Json<PutPolicy>, axum::extract::rejection::JsonRejection>,
) -> AppResult<Json<ContentRecord>> {
    let Json(req) = body.map_err(|e| AppError::BadRequest(e.body_text()))?;
    if !is_valid_content_id(&id) {
        return Err(AppError::BadRequest("malformed content id".into()));
    }
    let policy = check_policy(&st, &req.policy)?;
    let rec = st
        .catalog
        .update(&id, |r| {
            ensure_owner(r, &who)?;
            r.policy = policy;
            Ok(true)
        })
        .await?;
    publish(
        &st,
        &Invalidation::PolicyChanged {
            content_id: id.clone(),
        },
    )
    .await?;
    tracing::info!(content_id = %id, "policy changed");
    Ok(Json(rec))
}

/// `DELETE /v1/contents/{id}` (owner only): tombstones the record (so nothing racing the delete
/// can bring it back), removes the package and the source, and tells edges to drop it.
pub(crate) async fn delete(
    State(st): State<AppState>,
    Path(id): Path<String>,
    who: Authed,
) -> AppResult<StatusCode> {
    if !is_valid_content_id(&id) {
        return Err(AppError::BadRequest("malformed content id".into()));
    }
    // Record first: once it is a tombstone nothing is served, whatever the cleanup below leaves.
    st.catalog.delete(&id, |r| ensure_owner(r, &who)).await?;
    remove_files(&st, &id).await?;
    purge_edge_l2(&st, &id).await;
    publish(
        &st,
        &Invalidation::ContentDeleted {
            content_id: id.clone(),
        },
    )
    .await?;
    tracing::info!(content_id = %id, "content deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a content's package and source from the bucket (again, when a transcoder that was
/// still running at the delete has since uploaded a package).
pub(crate) async fn remove_files(st: &AppState, id: &str) -> AppResult<()> {
    for prefix in [
        streamgate_config::contract::layout::media_prefix(id),
        format!("uploads/{id}/"),
    ] {
        streamgate_storage::delete_prefix(&st.s3, &st.cfg.s3.bucket, &prefix)
            .await
            .map_err(AppError::storage)?;
    }
    Ok(())
}

/// Deletes the content's objects from the edges' shared L2 (`sg:objs:{{id}}` lists their keys);
/// edges drop their L1 copies on the `content_deleted` message. Best effort: an L2 entry that
/// survives is unreachable anyway once the edges' L1 is purged and origin answers 404, and it
/// expires with its TTL.
async fn purge_edge_l2(st: &AppState, id: &str) {
    let index = keys::edge_objects(id);
    let mut con = st.redis.clone();
    let objects: Vec<String> = match redis::AsyncCommands::smembers(&mut con, &index).await {
        Ok(k) => k,
        Err(e) => {
            tracing::warn!(content_id = %id, cause = %e, "edge l2 index unreadable");
            return;
        }
    };
    let mut p = redis::pipe();
    for k in objects.iter().filter(|k| keys::is_edge_object(k)) {
        p.del(k).ignore();
    }
    p.del(&index).ignore();
    if let Err(e) = p.query_async::<()>(&mut con).await {
        tracing::warn!(content_id = %id, cause = %e, "edge l2 purge failed");
    } else {
        tracing::info!(content_id = %id, objects = objects.len(), "edge l2 objects deleted");
    }
}
