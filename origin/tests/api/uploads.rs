//! tus uploads against the real origin, Redis and S3 server of the local stack: resuming after
//! a broken connection loses no byte, protocol errors get the right status, and a file that is
//! not a video ends `failed` with a reason.

use std::time::Duration;

use serde_json::Value;
use streamgate_testkit::{Stack, noise};
use tokio::io::AsyncWriteExt;

const MIB: usize = 1 << 20;

/// Sends a PATCH whose body stops after `sent` of `declared` bytes, then drops the connection.
async fn broken_patch(url: &str, bearer: &str, offset: u64, declared: usize, sent: &[u8]) {
    let u = url.strip_prefix("http://").unwrap();
    let (hostport, path) = u.split_at(u.find('/').unwrap());
    let mut s = tokio::net::TcpStream::connect(hostport).await.unwrap();
    let head = format!(
        "PATCH {path} HTTP/1.1\r\nHost: {hostport}\r\nAuthorization: {bearer}\r\nTus-Resumable: 1.0.0\r\n\
         Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n\
         Content-Length: {declared}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).await.unwrap();
    s.write_all(sent).await.unwrap();
    s.flush().await.unwrap();
    s.shutdown().await.unwrap();
    drop(s);
}

#[tokio::test]
async fn options_advertises_tus() {
    let st = Stack::load().await;
    let r = st
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/uploads", st.origin),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["tus-version"], "1.0.0");
    assert_eq!(r.headers()["tus-resumable"], "1.0.0");
    let ext: Vec<&str> = r.headers()["tus-extension"]
        .to_str()
        .unwrap()
        .split(',')
        .collect();
    for e in [
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "termination",
        "expiration",
        "checksum",
    ] {
        assert!(ext.contains(&e), "{ext:?} lacks {e}");
    }
    assert_eq!(r.headers()["tus-checksum-algorithm"], "sha1,sha256");
    assert!(
        r.headers()["tus-max-size"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn resumes_after_a_broken_connection_without_losing_bytes() {
    let st = Stack::load().await;
    // 12 MiB + a bit: with the stack's 5 MiB parts this spans three parts and a partial object.
    let data = noise(12 * MIB + 12345, 7);
    let id = st.create_content("resume").await;
    let url = st.tus_create(&id, data.len() as u64).await;
    assert_eq!(st.tus_offset(&url).await, 0);

    // First request breaks off after 7 MiB (one part written, 2 MiB buffered).
    let cut = 7 * MIB;
    broken_patch(&url, &st.bearer(), 0, data.len(), &data[..cut]).await;
    let mut offset = 0;
    for _ in 0..100 {
        offset = st.tus_offset(&url).await;
        if offset == cut as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        offset, cut as u64,
        "every byte received before the break is durable"
    );
    assert_eq!(st.content(&id).await["status"], "uploading");

    // A PATCH at the wrong offset is refused, and changes nothing.
    let r = st.tus_patch(&url, 0, data[..10].to_vec()).await;
    assert_eq!(r.status(), 409);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "conflict");
    assert_eq!(st.tus_offset(&url).await, cut as u64);

    // Resume in two more requests: a small one that only grows the partial object, then the rest.
    let mid = cut + 1000;
    let r = st
        .tus_patch(&url, cut as u64, data[cut..mid].to_vec())
        .await;
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["upload-offset"], mid.to_string().as_str());
    let r = st.tus_patch(&url, mid as u64, data[mid..].to_vec()).await;
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    assert_eq!(
        r.headers()["upload-offset"],
        data.len().to_string().as_str()
    );

    // The source in S3 is byte-for-byte what was sent.
    let stored = st.stored_source(&id).await.expect("the source is stored");
    assert_eq!(stored.len(), data.len());
    assert!(stored == data, "stored source differs from the upload");

    // No partial objects are left behind.
    let listed = st
        .s3()
        .list_objects_v2()
        .bucket(&st.bucket)
        .prefix(format!("uploads/{id}/"))
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys, vec![format!("uploads/{id}/source").as_str()]);

    // Noise is not a video: the content fails with a reason, synchronously at the last PATCH.
    let rec = st.content(&id).await;
    assert_eq!(rec["status"], "failed", "{rec}");
    let err = rec["error"].as_str().unwrap();
    assert!(err.starts_with("not a media file"), "{err}");
}

#[tokio::test]
async fn protocol_errors_have_their_own_status() {
    let st = Stack::load().await;
    let id = st.create_content("errors").await;
    let url = st.tus_create(&id, 100).await;

    // no Tus-Resumable
    let r = st
        .http
        .patch(&url)
        .header("authorization", st.bearer())
        .header("upload-offset", "0")
        .header("content-type", "application/offset+octet-stream")
        .body(vec![0u8; 10])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 412);
    // wrong content type
    let r = st
        .http
        .patch(&url)
        .header("authorization", st.bearer())
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", "0")
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    // body beyond Upload-Length
    let r = st.tus_patch(&url, 0, vec![0u8; 101]).await;
    assert_eq!(r.status(), 413);
    assert_eq!(st.tus_offset(&url).await, 0);
    // malformed offset
    let r = st
        .http
        .patch(&url)
        .header("authorization", st.bearer())
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", "-5")
        .header("content-type", "application/offset+octet-stream")
        .body(vec![0u8; 1])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(
        v["message"].as_str().unwrap().contains("Upload-Offset"),
        "{v}"
    );
    // unknown upload
    let r = st
        .tus_patch(
            &format!("{}/v1/uploads/nosuchupload", st.origin),
            0,
            vec![1],
        )
        .await;
    assert_eq!(r.status(), 404);

    // creation errors
    let post = |len: &str, meta: &str| {
        st.http
            .post(format!("{}/v1/uploads", st.origin))
            .header("authorization", st.bearer())
            .header("tus-resumable", "1.0.0")
            .header("upload-length", len)
            .header("upload-metadata", meta)
            .send()
    };
    let r = post("10", "filename eA==").await.unwrap();
    assert_eq!(r.status(), 400, "content_id is required");
    let r = post("10", "content_id bm9zdWNo").await.unwrap(); // "nosuch"
    assert_eq!(r.status(), 404);
    let r = post("999999999999999", &format!("content_id {}", base64_of(&id)))
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    // termination frees the upload and the content takes a new one
    let r = st
        .http
        .delete(&url)
        .header("authorization", st.bearer())
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = st
        .http
        .head(&url)
        .header("authorization", st.bearer())
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(st.content(&id).await["status"], "awaiting_upload");
}

#[tokio::test]
async fn content_api_validates_input() {
    let st = Stack::load().await;
    let r = st
        .http
        .post(format!("{}/v1/contents", st.origin))
        .header("authorization", st.bearer())
        .json(&serde_json::json!({ "title": "" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "bad_request");
    let r = st
        .http
        .post(format!("{}/v1/contents", st.origin))
        .header("authorization", st.bearer())
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = st
        .http
        .get(format!("{}/v1/contents/does-not-exist", st.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = st
        .internal_get("/v/x/../../etc/passwd")
        .send()
        .await
        .unwrap();
    assert!(r.status() == 400 || r.status() == 404, "{}", r.status());
    let id = st.create_content("fresh").await;
    let rec = st.content(&id).await;
    for k in [
        "id",
        "title",
        "owner",
        "status",
        "progress",
        "policy",
        "renditions",
        "duration_s",
        "error",
    ] {
        assert!(rec.get(k).is_some(), "record lacks {k}: {rec}");
    }
    assert_eq!(rec["status"], "awaiting_upload");
    // packaged files of a content that is not ready are not served, even to edges
    let r = st
        .internal_get(&format!("/v/{id}/master.m3u8"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}
