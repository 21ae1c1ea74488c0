//! Moving bytes between S3 and the job's scratch directory: the source download (streamed to
//! disk, bounded memory) and the package upload (ordered so that manifests appear last).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
};

use aws_sdk_s3::{Client, primitives::ByteStream};
use streamgate_auth::{ContentKey, KeyWrapper, WrappedKey};
use streamgate_config::contract::{is_valid_media_path, layout};
use tokio::{io::AsyncWriteExt, sync::Semaphore, task::JoinSet};

use crate::{Error, s3::s3_error};

/// The content key of `content_id`: the stored one (`keys/{id}.json`) when a previous attempt
/// made it, so a retried job and the segments edges already cache agree; else a new random
/// key, wrapped under the wrapping KEK and stored before any segment is encrypted with it.
///
/// # Errors
/// [`Error::Encryption`] (permanent) when the stored key does not unwrap here (unknown KEK,
/// tampered record); [`Error::S3`] when the bucket cannot be read or written.
pub(crate) async fn content_key(
    client: &Client,
    bucket: &str,
    content_id: &str,
    wrapper: &KeyWrapper,
) -> Result<ContentKey, Error> {
    let key = layout::key_key(content_id);
    match client.get_object().bucket(bucket).key(&key).send().await {
        Ok(r) => {
            let body = r
                .body
                .collect()
                .await
                .map_err(|e| Error::S3(format!("reading {key}: {e}")))?
                .into_bytes();
            let stored: WrappedKey = serde_json::from_slice(&body)
                .map_err(|e| Error::Encryption(format!("{key} is not a wrapped key: {e}")))?;
            return wrapper
                .unwrap(content_id, &stored)
                .map_err(|e| Error::Encryption(format!("{key}: {e}")));
        }
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {}
        Err(e) => return Err(s3_error("get", &key, e)),
    }
    let fresh = ContentKey::generate().map_err(|e| Error::Encryption(e.to_string()))?;
    let wrapped = wrapper
        .wrap(content_id, &fresh)
        .map_err(|e| Error::Encryption(e.to_string()))?;
    let body = serde_json::to_vec(&wrapped).map_err(|e| Error::Encryption(e.to_string()))?;
    client
        .put_object()
        .bucket(bucket)
        .key(&key)
        .content_type("application/json")
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| s3_error("put", &key, e))?;
    tracing::info!(kid = %fresh.kid_hex(), kek = %wrapped.kek, "content key created");
    Ok(fresh)
}

/// Uploads in flight at once.
const UPLOAD_CONCURRENCY: usize = 8;

/// Downloads `key` into `dest`, streaming; returns the number of bytes written.
///
/// # Errors
/// [`Error::SourceMissing`] when the object does not exist, [`Error::S3`] or [`Error::Io`] else.
pub(crate) async fn download(
    client: &Client,
    bucket: &str,
    key: &str,
    dest: &Path,
) -> Result<u64, Error> {
    let resp = match client.get_object().bucket(bucket).key(key).send().await {
        Ok(r) => r,
        Err(e) if e.as_service_error().is_some_and(|s| s.is_no_such_key()) => {
            return Err(Error::SourceMissing(key.to_owned()));
        }
        Err(e) => return Err(s3_error("get", key, e)),
    };
    let mut body = resp.body.into_async_read();
    let mut file = tokio::fs::File::create(dest)
        .await
        .map_err(Error::io("creating", dest))?;
    // A read error here is the network (the SDK's body), a write error the disk; both transient.
    let n = tokio::io::copy_buf(&mut body, &mut file)
        .await
        .map_err(|e| Error::S3(format!("get {key}: {e}")))?;
    file.flush().await.map_err(Error::io("writing", dest))?;
    Ok(n)
}

/// Content-Type of a package file, by extension.
pub(crate) fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("m3u8") => "application/vnd.apple.mpegurl",
        Some("mpd") => "application/dash+xml",
        Some("mp4") => "video/mp4",
        Some("m4s") => "video/iso.segment",
        Some("jpg") => "image/jpeg",
        Some("vtt") => "text/vtt",
        _ => "application/octet-stream",
    }
}

/// Upload stage of a package file: media first, then rendition playlists, then the two
/// top-level manifests, so that a reader never sees a manifest naming a missing file.
pub(crate) fn stage(rel: &str) -> u8 {
    match rel {
        layout::HLS_MASTER | layout::DASH_MANIFEST => 2,
        _ if rel.ends_with(".m3u8") || rel.ends_with(".mpd") => 1,
        _ => 0,
    }
}

/// Every file under `dir` as (relative path with `/`, absolute path), sorted.
pub(crate) async fn list_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, Error> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let mut rd = tokio::fs::read_dir(&d)
            .await
            .map_err(Error::io("listing", &d))?;
        while let Some(entry) = rd.next_entry().await.map_err(Error::io("listing", &d))? {
            let path = entry.path();
            let ft = entry
                .file_type()
                .await
                .map_err(Error::io("inspecting", &path))?;
            if ft.is_dir() {
                todo.push(path);
            } else if ft.is_file() {
                let rel = path
                    .strip_prefix(dir)
                    .map_err(|_| Error::Package(format!("{} outside the package", path.display())))?
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                if !is_valid_media_path(&rel) {
                    return Err(Error::Package(format!("bad file name {rel:?}")));
                }
                out.push((rel, path));
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Uploads the package in `dir` to `media/{content_id}/`, in stages (see [`stage`]), at most
/// [`UPLOAD_CONCURRENCY`] objects at once. Existing objects are overwritten (a retried job
/// republishes). Returns the bytes uploaded.
pub(crate) async fn publish(
    client: &Client,
    bucket: &str,
    content_id: &str,
    dir: &Path,
) -> Result<u64, Error> {
    let files = list_files(dir).await?;
    let limit = Arc::new(Semaphore::new(UPLOAD_CONCURRENCY));
    let mut total = 0;
    for s in 0..=2 {
        let mut set = JoinSet::new();
        for (rel, path) in files.iter().filter(|(rel, _)| stage(rel) == s) {
            let (client, limit) = (client.clone(), limit.clone());
            let (bucket, key, path) = (
                bucket.to_owned(),
                layout::media_key(content_id, rel),
                path.clone(),
            );
            let ct = content_type(rel);
            set.spawn(async move {
                // The semaphore is never closed, so acquiring only waits.
                let _permit = limit.acquire_owned().await;
                put_file(&client, &bucket, &key, &path, ct).await
            });
        }
        while let Some(res) = set.join_next().await {
            total += res.map_err(|e| Error::S3(format!("upload task failed: {e}")))??;
        }
    }
    Ok(total)
}

async fn put_file(
    client: &Client,
    bucket: &str,
    key: &str,
    path: &Path,
    ct: &str,
) -> Result<u64, Error> {
    let len = tokio::fs::metadata(path)
        .await
        .map_err(Error::io("inspecting", path))?
        .len();
    let body = ByteStream::from_path(path)
        .await
        .map_err(|e| Error::S3(format!("reading {}: {e}", path.display())))?;
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type(ct)
        .body(body)
        .send()
        .await
        .map_err(|e| s3_error("put", key, e))?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types() {
        assert_eq!(content_type("master.m3u8"), "application/vnd.apple.mpegurl");
        assert_eq!(content_type("manifest.mpd"), "application/dash+xml");
        assert_eq!(content_type("360p/init.mp4"), "video/mp4");
        assert_eq!(content_type("360p/seg-00001.m4s"), "video/iso.segment");
        assert_eq!(content_type("poster.jpg"), "image/jpeg");
        assert_eq!(content_type("thumbs/storyboard.vtt"), "text/vtt");
    }

    #[test]
    fn manifests_go_last() {
        assert_eq!(stage("360p/seg-00001.m4s"), 0);
        assert_eq!(stage("360p/init.mp4"), 0);
        assert_eq!(stage("360p/index.m3u8"), 1);
        assert_eq!(stage("master.m3u8"), 2);
        assert_eq!(stage("manifest.mpd"), 2);
    }

    #[tokio::test]
    async fn lists_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("360p")).unwrap();
        std::fs::write(dir.path().join("master.m3u8"), "x").unwrap();
        std::fs::write(dir.path().join("360p/init.mp4"), "x").unwrap();
        let files = list_files(dir.path()).await.unwrap();
        let rels: Vec<_> = files.iter().map(|(r, _)| r.as_str()).collect();
        assert_eq!(rels, ["360p/init.mp4", "master.m3u8"]);
    }
}
