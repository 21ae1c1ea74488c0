//! Content records: `POST /v1/contents` creates one for the signed-in creator (its owner),
//! `GET /v1/contents/{id}` reads it, `GET /v1/contents?owner=me` lists the creator's own
//! (newest first, cursor pages, from the `index`), and the owner alone may `PATCH` its title,
//! description and tags, `PUT …/policy` or `DELETE` it.
//! Policies are validated with [`Policy::parse_with`] against the chains origin accepts for
//! sign-in; a bad one is a 400 whose message names the field (`policy.any[0].erc721.contract:
//! not an EVM address …`). The record stores the policy's canonical form: what edges enforce.

use axum::{
    Json,
    extract::{Path, Query, State},
    http::StatusCode,
};
use rand::{Rng, distr::Alphanumeric};
use serde::Deserialize;
use serde_json::{Value, json};
use streamgate_config::contract::is_valid_content_id;
use streamgate_entitlements::Policy;

use streamgate_config::contract::{Encryption, Invalidation, keys};

use crate::{
    AppError, AppState,
    catalog::{ContentRecord, Status},
    error::AppResult,
    now_ms,
    signin::{Authed, MaybeAuthed, publish},
    webhooks,
};

/// Body of `POST /v1/contents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateContent {
    title: String,
    #[serde(default)]
    policy: Option<Value>,
    /// `"cenc"` encrypts the package (keys only through the edge's license endpoint);
    /// `"none"` or absent leaves it clear.
    #[serde(default)]
    encryption: Encryption,
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
        description: None,
        tags: Vec::new(),
        owner: Some(who.sub.clone()),
        status: Status::AwaitingUpload,
        progress: 0.0,
        policy,
        renditions: Vec::new(),
        duration_s: None,
        error: None,
        has_audio: None,
        artwork: None,
        poster: None,
        storyboard: None,
        captions: Vec::new(),
        audio: Vec::new(),
        encryption: req.encryption,
        upload_id: None,
        created_at: now,
        updated_at: now,
    };
    st.catalog.create(&rec).await?;
    tracing::info!(content_id = %rec.id, owner = %who.sub, encryption = ?rec.encryption, "content created");
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
    description: Option<&'a str>,
    tags: &'a [String],
    owner: Option<&'a str>,
    status: Status,
    progress: f32,
    policy: &'a Value,
    renditions: &'a [streamgate_config::contract::Rendition],
    duration_s: Option<f64>,
    error: Option<&'a str>,
    has_audio: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    artwork: Option<&'a streamgate_config::contract::Artwork>,
    #[serde(skip_serializing_if = "Option::is_none")]
    poster: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    storyboard: Option<&'a str>,
    captions: &'a [crate::captions::Caption],
    audio: &'a [streamgate_config::contract::AudioRendition],
    encryption: Encryption,
}

impl<'a> From<&'a ContentRecord> for PublicView<'a> {
    fn from(r: &'a ContentRecord) -> Self {
        Self {
            id: &r.id,
            title: &r.title,
            description: r.description.as_deref(),
            tags: &r.tags,
            owner: r.owner.as_deref(),
            status: r.status,
            progress: r.progress,
            policy: &r.policy,
            renditions: &r.renditions,
            duration_s: r.duration_s,
            error: r.error.as_deref(),
            has_audio: r.has_audio,
            artwork: r.artwork.as_ref(),
            poster: r.poster.as_deref(),
            storyboard: r.storyboard.as_deref(),
            captions: &r.captions,
            audio: &r.audio,
            encryption: r.encryption,
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
    if let Some(owner) = rec.owner.as_deref() {
        // Each change is its own message (two identical PUTs are two changes).
        let data = json!({ "content_id": id, "policy": rec.policy });
        webhooks::emit(&st, owner, "content.policy_changed", &new_id(16), data).await;
    }
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
    let rec = st.catalog.delete(&id, |r| ensure_owner(r, &who)).await?;
    remove_files(&st, &id).await?;
    purge_edge_l2(&st, &id).await;
    publish(
        &st,
        &Invalidation::ContentDeleted {
            content_id: id.clone(),
        },
    )
    .await?;
    if let Some(owner) = rec.owner.as_deref() {
        webhooks::emit(
            &st,
            owner,
            "content.deleted",
            &id,
            json!({ "content_id": id }),
        )
        .await;
    }
    tracing::info!(content_id = %id, "content deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a content's package and source from the bucket (again, when a transcoder that was
/// still running at the delete has since uploaded a package).
pub(crate) async fn remove_files(st: &AppState, id: &str) -> AppResult<()> {
    for prefix in [
        streamgate_config::contract::layout::media_prefix(id),
        format!("uploads/{id}/"),
        // The wrapped content key: without it the encrypted segments are noise.
        streamgate_config::contract::layout::key_key(id),
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

/// Query of `GET /v1/contents`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListQuery {
    /// Whose contents: `me` (the only value accepted: creators list their own).
    #[serde(default)]
    owner: Option<String>,
    /// Only contents in this status.
    #[serde(default)]
    status: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[serde(default)]
    limit: Option<usize>,
    /// Where the page starts (`next_cursor` of the previous page).
    #[serde(default)]
    cursor: Option<String>,
}

/// The statuses a listing may filter on.
fn parse_status(s: &str) -> Option<Status> {
    [
        Status::AwaitingUpload,
        Status::Uploading,
        Status::Processing,
        Status::Ready,
        Status::Failed,
    ]
    .into_iter()
    .find(|st| crate::index::status_name(*st) == s)
}

/// `GET /v1/contents?owner=me&status=…&limit=…&cursor=…` → `{"items": [record…],
/// "next_cursor": "…" | null}`: the signed-in creator's contents, newest first.
pub(crate) async fn list(
    State(st): State<AppState>,
    Authed(who): Authed,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> AppResult<Json<Value>> {
    let Query(q) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    if q.owner.as_deref().is_some_and(|o| o != "me") {
        return Err(AppError::BadRequest(
            "owner: only \"me\" (creators list their own contents)".into(),
        ));
    }
    let status = match q.status.as_deref() {
        None => None,
        Some(s) => Some(parse_status(s).ok_or_else(|| {
            AppError::BadRequest(format!(
                "status: {s:?} is not one of awaiting_upload, uploading, processing, ready, failed"
            ))
        })?),
    };
    let limit = q.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(AppError::BadRequest(format!(
            "limit: {limit} must be between 1 and 100"
        )));
    }
    let page = st
        .catalog
        .index()
        .page(&who.sub, status, limit, q.cursor.as_deref())
        .await?
        .ok_or_else(|| AppError::BadRequest("cursor: not a cursor this API handed out".into()))?;
    // Records in page order; one that vanished since (deleted) is left out.
    let reads = page.ids.iter().map(|id| st.catalog.get(id));
    let mut items = Vec::with_capacity(page.ids.len());
    for rec in futures_util::future::join_all(reads).await {
        if let Some(rec) = rec?
            && rec.owner.as_deref() == Some(who.sub.as_str())
        {
            items.push(rec);
        }
    }
    Ok(Json(json!({ "items": items, "next_cursor": page.next })))
}

/// Body of `PATCH /v1/contents/{id}`: the fields to change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PatchContent {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// Printable text: no control characters.
fn printable(s: &str) -> bool {
    !s.chars().any(|c| c.is_control() && c != '\n')
}

/// `PATCH /v1/contents/{id}` (owner only): title (1–200 characters), description (up to
/// 5,000), tags (up to 20, each 1–50 characters, duplicates dropped) → the updated record.
pub(crate) async fn patch(
    State(st): State<AppState>,
    Path(id): Path<String>,
    who: Authed,
    body: Result<Json<PatchContent>, axum::extract::rejection::JsonRejection>,
) -> AppResult<Json<ContentRecord>> {
    let Json(req) = body.map_err(|e| AppError::BadRequest(e.body_text()))?;
    if !is_valid_content_id(&id) {
        return Err(AppError::BadRequest("malformed content id".into()));
    }
    let title = match req.title.as_deref().map(str::trim) {
        Some(t) if t.is_empty() || t.chars().count() > 200 || !printable(t) || t.contains('\n') => {
            return Err(AppError::BadRequest(
                "title: must be 1 to 200 printable characters on one line".into(),
            ));
        }
        t => t.map(str::to_owned),
    };
    let description = match req.description.as_deref().map(str::trim) {
        Some(d) if d.chars().count() > 5000 || !printable(d) => {
            return Err(AppError::BadRequest(
                "description: at most 5000 printable characters".into(),
            ));
        }
        d => d.map(str::to_owned),
    };
    let tags = match req.tags {
        None => None,
        Some(tags) => {
            if tags.len() > 20 {
                return Err(AppError::BadRequest("tags: at most 20".into()));
            }
            let mut out: Vec<String> = Vec::with_capacity(tags.len());
            for (i, t) in tags.iter().enumerate() {
                let t = t.trim();
                if t.is_empty() || t.chars().count() > 50 || !printable(t) || t.contains('\n') {
                    return Err(AppError::BadRequest(format!(
                        "tags[{i}]: must be 1 to 50 printable characters"
                    )));
                }
                if !out.iter().any(|o| o == t) {
                    out.push(t.to_owned());
                }
            }
            Some(out)
        }
    };
    if title.is_none() && description.is_none() && tags.is_none() {
        return Err(AppError::BadRequest(
            "nothing to change: give title, description or tags".into(),
        ));
    }
    let rec = st
        .catalog
        .update(&id, |r| {
            ensure_owner(r, &who)?;
            if let Some(t) = title {
                r.title = t;
            }
            if let Some(d) = description {
                r.description = (!d.is_empty()).then_some(d);
            }
            if let Some(t) = tags {
                r.tags = t;
            }
            Ok(true)
        })
        .await?;
    tracing::info!(content_id = %id, "metadata changed");
    Ok(Json(rec))
}

/// `GET /v1/contents/{id}/key` (internal listener, edges only): the content key as stored,
/// wrapped under a key-encryption key origin does not hold. The edge unwraps it for a license
/// request it has checked; origin never sees the clear key. 404 for an unknown, deleted, clear
/// or not yet packaged content. `Cache-Control: no-store`.
pub(crate) async fn wrapped_key(
    State(st): State<AppState>,
    Path(id): Path<String>,
) -> AppResult<([(axum::http::HeaderName, &'static str); 1], Json<Value>)> {
    if !is_valid_content_id(&id) {
        return Err(AppError::NotFound("no such content"));
    }
    let rec = st
        .catalog
        .get(&id)
        .await?
        .filter(|r| r.encryption.is_encrypted())
        .ok_or(AppError::NotFound("no encrypted content with this id"))?;
    let key = streamgate_config::contract::layout::key_key(&rec.id);
    let bytes = streamgate_storage::get_if_exists(&st.s3, &st.cfg.s3.bucket, &key)
        .await
        .map_err(AppError::storage)?
        .ok_or(AppError::NotFound("this content has no key yet"))?;
    let wrapped: Value = serde_json::from_slice(&bytes)
        .map_err(|e| AppError::Internal(format!("stored key of {id} is corrupt: {e}")))?;
    Ok((
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        Json(wrapped),
    ))
}
