//! Captions and subtitles: `PUT /v1/contents/{id}/captions/{lang}` takes a WebVTT or SRT file
//! (owner only), `DELETE` removes a language. The package gains the track without any video
//! being touched: manifests are rewritten and edges told.
//!
//! ```text
//!  PUT …/captions/fr?label=Français&kind=subtitles   (body: .vtt or .srt, ≤ 2 MiB)
//!   ├─ lang checked (BCP 47 shape, canonical case), file parsed → clean WebVTT (`text`)
//!   ├─ owner check, then media/{id}/captions/fr-{sha256[..12]}.vtt   (content-addressed:
//!   │    immutable under its name, like segments)
//!   ├─ under the content's lock: the record's `captions` updated and, when the content is
//!   │    ready, republished (`package`): captions/fr.m3u8, master.m3u8, manifest.mpd
//!   │    (a content still processing gets them when its `ready` event is applied)
//!   └─ the replaced file deleted; edges told (`purged` for each changed path: every edge
//!        drops it from L1 and L2)
//! ```
//!
//! The manifests and caption playlists are the package's only mutable objects: origin serves
//! them with a short browser lifetime and a long shared one (`s-maxage`), so edges keep them
//! until told and players re-read them soon.

mod package;
mod text;

use aws_sdk_s3::primitives::ByteStream;
use axum::{
    Json,
    body::Bytes,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use streamgate_config::contract::{Invalidation, is_valid_content_id, layout};

use crate::{
    AppError, AppState,
    catalog::{ContentRecord, Status},
    contents::ensure_owner,
    error::AppResult,
    metrics::METRICS,
    now_ms,
    signin::{Authed, publish},
};

/// Largest caption file accepted (a feature film's SRT is 50–200 KiB).
pub(crate) const MAX_BYTES: usize = 2 << 20;
/// Most languages per content.
pub(crate) const MAX_TRACKS: usize = 32;

/// What a track is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptionKind {
    /// A translation of the dialogue.
    #[default]
    Subtitles,
    /// Captions for the deaf and hard of hearing (dialogue and sounds).
    Captions,
}

/// One text track of a content, as its record lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Caption {
    /// BCP 47 language tag, canonical case (`en`, `pt-BR`, `zh-Hant`).
    pub lang: String,
    /// Name players show.
    pub label: String,
    /// Subtitles or captions.
    pub kind: CaptionKind,
    /// The WebVTT file, relative to the package root (`captions/fr-1a2b3c4d5e6f.vtt`).
    pub uri: String,
    /// Its HLS media playlist, relative to the package root (`captions/fr.m3u8`).
    pub playlist: String,
    /// Number of cues.
    pub cues: usize,
    /// Size of the WebVTT file.
    pub bytes: u64,
    /// When it was stored, Unix ms.
    pub updated_at: u64,
}

/// Query of `PUT /v1/contents/{id}/captions/{lang}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutQuery {
    /// Name players show (1–64 characters, no `"`); default: the language's name.
    #[serde(default)]
    label: Option<String>,
    /// `subtitles` (default) or `captions`.
    #[serde(default)]
    kind: Option<CaptionKind>,
}

/// `PUT /v1/contents/{id}/captions/{lang}` (owner only; body WebVTT or SRT) → 201 with the
/// track (200 when it replaced one).
pub(crate) async fn put(
    State(st): State<AppState>,
    Path((id, lang)): Path<(String, String)>,
    query: Result<Query<PutQuery>, axum::extract::rejection::QueryRejection>,
    who: Authed,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> AppResult<(StatusCode, Json<Caption>)> {
    let Query(q) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::TooLarge(format!("captions: larger than {MAX_BYTES} bytes"))
        } else {
            AppError::BadRequest(e.body_text())
        }
    })?;
    if !is_valid_content_id(&id) {
        return Err(AppError::BadRequest("malformed content id".into()));
    }
    let lang = checked_lang(&lang)?;
    let label = match q.label {
        Some(l) => checked_label(&l)?,
        None => streamgate_config::lang::display_name(&lang),
    };
    let declared = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(text::Format::from_content_type);
    let cues = text::parse(&body, declared).map_err(|e| {
        METRICS.captions.with_label_values(&["refused"]).inc();
        AppError::BadRequest(format!("captions: {e}"))
    })?;
    let vtt = text::to_webvtt(&cues);
    let digest: String = Sha256::digest(vtt.as_bytes())[..6]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let track = Caption {
        uri: format!("captions/{lang}-{digest}.vtt"),
        playlist: format!("captions/{lang}.m3u8"),
        lang,
        label,
        kind: q.kind.unwrap_or_default(),
        cues: cues.len(),
        bytes: vtt.len() as u64,
        updated_at: now_ms(),
    };
    // Nothing is stored under someone else's content.
    let rec = st
        .catalog
        .get(&id)
        .await?
        .ok_or(AppError::NotFound("no such content"))?;
    ensure_owner(&rec, &who)?;
    put_object(&st, &id, &track.uri, vtt.into_bytes(), "text/vtt").await?;

    let mut replaced: Option<Caption> = None;
    update_tracks(&st, &id, |r| {
        ensure_owner(r, &who)?;
        let count = r.captions.len();
        match r.captions.iter_mut().find(|c| c.lang == track.lang) {
            Some(c) => replaced = Some(std::mem::replace(c, track.clone())),
            None if count >= MAX_TRACKS => {
                return Err(AppError::Conflict(format!(
                    "a content has at most {MAX_TRACKS} caption languages"
                )));
            }
            None => {
                r.captions.push(track.clone());
                r.captions.sort_by(|a, b| a.lang.cmp(&b.lang));
            }
        }
        Ok(true)
    })
    .await?;
    let mut changed = vec![
        layout::HLS_MASTER.to_owned(),
        layout::DASH_MANIFEST.to_owned(),
        track.playlist.clone(),
    ];
    if let Some(old) = replaced.as_ref().filter(|o| o.uri != track.uri) {
        delete_object(&st, &id, &old.uri).await;
        changed.push(old.uri.clone());
    }
    tell_edges(&st, &id, &changed).await?;
    let (status, outcome) = if replaced.is_some() {
        (StatusCode::OK, "replaced")
    } else {
        (StatusCode::CREATED, "stored")
    };
    METRICS.captions.with_label_values(&[outcome]).inc();
    tracing::info!(content_id = %id, lang = %track.lang, cues = track.cues, outcome, "captions stored");
    Ok((status, Json(track)))
}

/// `DELETE /v1/contents/{id}/captions/{lang}` (owner only) → 204; 404 when there is no track
/// in that language.
pub(crate) async fn delete(
    State(st): State<AppState>,
    Path((id, lang)): Path<(String, String)>,
    who: Authed,
) -> AppResult<StatusCode> {
    if !is_valid_content_id(&id) {
        return Err(AppError::BadRequest("malformed content id".into()));
    }
    let lang = checked_lang(&lang)?;
    let mut removed: Option<Caption> = None;
    update_tracks(&st, &id, |r| {
        ensure_owner(r, &who)?;
        let at = r
            .captions
            .iter()
            .position(|c| c.lang == lang)
            .ok_or(AppError::NotFound("no captions in that language"))?;
        removed = Some(r.captions.remove(at));
        Ok(true)
    })
    .await?;
    let Some(old) = removed else {
        return Err(AppError::Internal("caption removal lost its track".into()));
    };
    delete_object(&st, &id, &old.uri).await;
    delete_object(&st, &id, &old.playlist).await;
    tell_edges(
        &st,
        &id,
        &[
            layout::HLS_MASTER.to_owned(),
            layout::DASH_MANIFEST.to_owned(),
            old.playlist,
            old.uri,
        ],
    )
    .await?;
    METRICS.captions.with_label_values(&["deleted"]).inc();
    tracing::info!(content_id = %id, %lang, "captions deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// Changes a record's tracks with `f` under the content's lock, the package republished to
/// match before the record is written.
async fn update_tracks<F>(st: &AppState, id: &str, f: F) -> AppResult<ContentRecord>
where
    F: FnOnce(&mut ContentRecord) -> AppResult<bool>,
{
    st.catalog
        .update_and(id, f, |r| async move { republish_if_ready(st, &r).await })
        .await
}

/// Writes the record's tracks into its package when it is ready (caption playlists first,
/// then the manifests that name them). Runs under the content's lock, before the record is
/// written: a failure leaves the record as it was.
pub(crate) async fn republish_if_ready(st: &AppState, rec: &ContentRecord) -> AppResult<()> {
    if rec.status != Status::Ready {
        return Ok(());
    }
    let duration = rec.duration_s.unwrap_or(0.0);
    for c in &rec.captions {
        let file = c.uri.rsplit('/').next().unwrap_or(&c.uri);
        let playlist = package::media_playlist(file, duration);
        put_object(
            st,
            &rec.id,
            &c.playlist,
            playlist.into_bytes(),
            "application/vnd.apple.mpegurl",
        )
        .await?;
    }
    let master = get_text(st, &rec.id, layout::HLS_MASTER).await?;
    let master = package::master(&master, &rec.captions);
    let mpd = get_text(st, &rec.id, layout::DASH_MANIFEST).await?;
    let mpd = package::mpd(&mpd, &rec.captions, duration).map_err(AppError::Internal)?;
    put_object(
        st,
        &rec.id,
        layout::HLS_MASTER,
        master.into_bytes(),
        "application/vnd.apple.mpegurl",
    )
    .await?;
    put_object(
        st,
        &rec.id,
        layout::DASH_MANIFEST,
        mpd.into_bytes(),
        "application/dash+xml",
    )
    .await?;
    tracing::debug!(content_id = %rec.id, tracks = rec.captions.len(), "manifests republished");
    Ok(())
}

/// Tells every edge to drop these objects of the content (L1 and L2).
async fn tell_edges(st: &AppState, id: &str, paths: &[String]) -> AppResult<()> {
    for p in paths {
        publish(
            st,
            &Invalidation::Purged {
                content_id: id.to_owned(),
                path: Some(p.clone()),
            },
        )
        .await?;
    }
    Ok(())
}

/// A BCP 47 tag of the usual shape (language, then script, region, variants: `en`, `pt-BR`,
/// `zh-Hant-TW`, `es-419`), in canonical case; 400 otherwise.
fn checked_lang(raw: &str) -> AppResult<String> {
    streamgate_config::lang::canonical(raw).ok_or_else(|| {
        let shown: String = raw.chars().take(40).collect();
        AppError::BadRequest(format!(
            "lang: {shown:?} is not a language tag such as en, pt-BR or zh-Hant"
        ))
    })
}

/// A label players can show and manifests can quote: 1–64 characters, no control
/// characters, no `"`.
fn checked_label(raw: &str) -> AppResult<String> {
    let l = raw.trim();
    if l.is_empty() || l.chars().count() > 64 || l.chars().any(|c| c.is_control() || c == '"') {
        return Err(AppError::BadRequest(
            "label: must be 1 to 64 characters, without control characters or \"".into(),
        ));
    }
    Ok(l.to_owned())
}

async fn put_object(
    st: &AppState,
    id: &str,
    path: &str,
    body: Vec<u8>,
    content_type: &str,
) -> AppResult<()> {
    st.s3
        .put_object()
        .bucket(&st.cfg.s3.bucket)
        .key(layout::media_key(id, path))
        .content_type(content_type)
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| AppError::storage(aws_sdk_s3::error::DisplayErrorContext(e)))?;
    Ok(())
}

async fn get_text(st: &AppState, id: &str, path: &str) -> AppResult<String> {
    let obj = st
        .s3
        .get_object()
        .bucket(&st.cfg.s3.bucket)
        .key(layout::media_key(id, path))
        .send()
        .await
        .map_err(|e| AppError::storage(aws_sdk_s3::error::DisplayErrorContext(e)))?;
    let bytes = obj
        .body
        .collect()
        .await
        .map_err(AppError::storage)?
        .into_bytes();
    String::from_utf8(bytes.to_vec())
        .map_err(|_| AppError::Internal(format!("{path} of {id} is not UTF-8")))
}

/// Best effort: an object left behind is unreachable (no manifest names it) and goes with
/// the content.
async fn delete_object(st: &AppState, id: &str, path: &str) {
    let r = st
        .s3
        .delete_object()
        .bucket(&st.cfg.s3.bucket)
        .key(layout::media_key(id, path))
        .send()
        .await;
    if let Err(e) = r {
        tracing::warn!(content_id = %id, path, cause = %aws_sdk_s3::error::DisplayErrorContext(e), "old caption object not deleted");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels() {
        assert!(checked_lang("en_US").is_err());
        assert_eq!(checked_lang("pt-br").unwrap(), "pt-BR");
        assert!(checked_label("Say \"hi\"").is_err());
        assert!(checked_label("a\nb").is_err());
        assert!(checked_label("").is_err());
        assert_eq!(checked_label(" English SDH ").unwrap(), "English SDH");
    }
}
