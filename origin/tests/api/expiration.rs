//! tus `expiration`: an unfinished upload expires `uploads.expiry` after its last write
//! (`Upload-Expires` says when, on creation, PATCH and HEAD), is then gone for clients (404),
//! and the sweeper reclaims its storage: the S3 multipart upload aborted, the partial object
//! deleted, the content back to `awaiting_upload` with the reason. Run on a private origin
//! with a 2 s expiry.

use std::time::{Duration, SystemTime};

use streamgate_testkit::{PrivateOrigin, Stack, eventually};

/// The `Upload-Expires` of a response, as a time.
fn upload_expires(r: &reqwest::Response) -> SystemTime {
    let v = r
        .headers()
        .get("upload-expires")
        .unwrap_or_else(|| panic!("no Upload-Expires: {:?}", r.headers()))
        .to_str()
        .unwrap();
    httpdate::parse_http_date(v).unwrap_or_else(|e| panic!("{v:?}: {e}"))
}

/// Whether the S3 multipart upload still holds parts (s3s-fs answers ListParts of an aborted
/// upload with none; it implements no ListMultipartUploads), and the objects under the
/// content's upload prefix.
async fn leftovers(st: &Stack, content: &str, s3_upload: &str) -> (bool, usize) {
    let s3 = st.s3();
    let bucket = st.env_value("S3_BUCKET");
    let open = s3
        .list_parts()
        .bucket(&bucket)
        .key(format!("uploads/{content}/source"))
        .upload_id(s3_upload)
        .send()
        .await
        .is_ok_and(|o| !o.parts().is_empty());
    let objects = s3
        .list_objects_v2()
        .bucket(&bucket)
        .prefix(format!("uploads/{content}/"))
        .send()
        .await
        .unwrap();
    (open, objects.contents().len())
}

#[tokio::test]
async fn unfinished_uploads_expire_and_their_storage_is_reclaimed() {
    let st = Stack::load().await;
    let origin =
        PrivateOrigin::start_env(&st, "", "", "", &[("STREAMGATE__UPLOADS__EXPIRY", "2s")]).await;
    let s = st.at_origin(&origin.url);
    let opts = st
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/uploads", origin.url),
        )
        .send()
        .await
        .unwrap();
    assert!(
        opts.headers()["tus-extension"]
            .to_str()
            .unwrap()
            .split(',')
            .any(|e| e == "expiration"),
        "{:?}",
        opts.headers()
    );

    // One full S3 part (8 MiB) and a partial object (1 KiB) of a 20 MiB upload.
    let id = s.create_content("expiring").await;
    let url = s.tus_create(&id, 20 << 20).await;
    let before = SystemTime::now();
    let r = s.tus_patch(&url, 0, vec![7u8; (8 << 20) + 1024]).await;
    assert_eq!(r.status(), 204);
    let expires = upload_expires(&r);
    assert!(
        expires > before && expires <= SystemTime::now() + Duration::from_secs(3),
        "{expires:?}"
    );
    let head = s
        .tus()
        .head(&reqwest::Url::parse(&url).unwrap())
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert!(upload_expires(&head) >= expires - Duration::from_secs(1));
    // The S3 multipart upload behind it, from the upload's state in origin's Redis.
    let upload_id = url.rsplit('/').next().unwrap();
    let mut con = redis::Client::open(origin.redis_url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let state: String = redis::cmd("GET")
        .arg(streamgate_config::contract::keys::upload_state(upload_id))
        .query_async(&mut con)
        .await
        .unwrap();
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let s3_upload = state["s3_upload_id"].as_str().unwrap().to_owned();
    assert_eq!(
        leftovers(&st, &id, &s3_upload).await,
        (true, 1),
        "an open multipart upload and the partial object"
    );
    assert_eq!(s.content(&id).await["status"], "uploading");

    // After the expiry: gone for the client, storage reclaimed, content reset with a reason.
    eventually(
        "the sweeper reclaimed the upload",
        Duration::from_secs(20),
        // The sweeper reclaims the storage first, then resets the content: wait for both.
        || async {
            leftovers(&st, &id, &s3_upload).await == (false, 0)
                && s.content(&id).await["status"] == "awaiting_upload"
        },
    )
    .await;
    let head = s
        .tus()
        .head(&reqwest::Url::parse(&url).unwrap())
        .await
        .unwrap();
    assert_eq!(head.status(), 404);
    let r = s.tus_patch(&url, (8 << 20) + 1024, vec![7u8; 1024]).await;
    assert_eq!(r.status(), 404, "an expired upload takes no more bytes");
    let rec = s.content(&id).await;
    assert_eq!(rec["status"], "awaiting_upload", "{rec}");
    assert!(
        rec["error"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{rec}"
    );

    // The content takes a new upload.
    let again = s.tus_create(&id, 1024).await;
    assert_ne!(again, url);
}
