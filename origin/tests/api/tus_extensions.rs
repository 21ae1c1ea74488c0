//! tus `checksum`, `creation-defer-length` and `concatenation` at the protocol level, against the stack's real
//! origin, Redis and S3 server: a body whose digest does not match is refused with 460 and
//! leaves nothing behind (not even the S3 part it spanned), and an upload whose length is
//! stated late completes byte for byte.

use base64::{Engine, engine::general_purpose::STANDARD};
use serde_json::Value;
use sha2::Digest;
use streamgate_testkit::{Stack, Wallet, metric, noise};

const MIB: usize = 1 << 20;

/// `Upload-Checksum` of `body` with `algo` (`sha1`/`sha256`), one bit flipped when `wrong`.
fn checksum(algo: &str, body: &[u8], wrong: bool) -> String {
    let mut d = match algo {
        "sha1" => sha1::Sha1::digest(body).to_vec(),
        _ => sha2::Sha256::digest(body).to_vec(),
    };
    if wrong {
        d[0] ^= 1;
    }
    format!("{algo} {}", STANDARD.encode(d))
}

/// A PATCH with extra headers.
async fn patch(
    st: &Stack,
    url: &str,
    offset: usize,
    body: &[u8],
    extra: &[(&str, String)],
) -> reqwest::Response {
    let mut req = st
        .http
        .patch(url)
        .header("authorization", st.bearer())
        .header("tus-resumable", "1.0.0")
        .header("upload-offset", offset.to_string())
        .header("content-type", "application/offset+octet-stream");
    for (k, v) in extra {
        req = req.header(*k, v);
    }
    req.body(body.to_vec()).send().await.unwrap()
}

/// A tus creation with the given length headers; returns the response.
async fn create(st: &Stack, content_id: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = st
        .http
        .post(format!("{}/v1/uploads", st.origin))
        .header("authorization", st.bearer())
        .header("tus-resumable", "1.0.0")
        .header(
            "upload-metadata",
            format!("content_id {}", STANDARD.encode(content_id)),
        );
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn location(r: &reqwest::Response) -> String {
    r.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_mismatched_checksum_is_460_and_stores_nothing() {
    let st = Stack::load().await;
    let metrics = format!("{}/metrics", st.origin);
    let failures = |p: &str| metric(p, "streamgate_origin_upload_checksum_failures_total");
    let before = failures(&st.page(&metrics).await);
    // 6 MiB then the rest: the first body spans a whole 5 MiB part of the stack's config.
    let data = noise(9 * MIB + 77, 31);
    let split = 6 * MIB;
    let id = st.create_content("checksums").await;
    let url = st.tus_create(&id, data.len() as u64).await;

    // A wrong sha1 over the first 6 MiB: 460, and the offset stays 0 even though a part was
    // written to S3 while the body streamed in.
    let (first, rest) = data.split_at(split);
    let r = patch(
        &st,
        &url,
        0,
        first,
        &[("upload-checksum", checksum("sha1", first, true))],
    )
    .await;
    assert_eq!(r.status().as_u16(), 460, "{:?}", r.text().await);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "checksum_mismatch");
    assert_eq!(st.tus_offset(&url).await, 0);
    // (other tests may refuse bodies meanwhile: at least this one is counted)
    assert!(failures(&st.page(&metrics).await) >= before + 1.0);

    // Malformed checksums are 400s (an algorithm not listed, a digest of the wrong length, not
    // base64, no digest), and change nothing either. (Small bodies: the 400 comes before the
    // body is read, and a client still sending megabytes would see the connection close.)
    for bad in [
        format!("md5 {}", STANDARD.encode([0u8; 16])),
        format!("sha1 {}", STANDARD.encode([0u8; 32])),
        "sha256 !!!".to_owned(),
        "sha256".to_owned(),
    ] {
        let r = patch(&st, &url, 0, b"x", &[("upload-checksum", bad.clone())]).await;
        assert_eq!(r.status(), 400, "{bad}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["message"].as_str().unwrap().contains("Upload-Checksum"),
            "{v}"
        );
    }
    assert_eq!(st.tus_offset(&url).await, 0);

    // The right sha1: stored.
    let r = patch(
        &st,
        &url,
        0,
        first,
        &[("upload-checksum", checksum("sha1", first, false))],
    )
    .await;
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    assert_eq!(r.headers()["upload-offset"], split.to_string().as_str());

    // The last bytes with a wrong sha256: refused, the 6 MiB already stored stay.
    let r = patch(
        &st,
        &url,
        split,
        rest,
        &[("upload-checksum", checksum("sha256", rest, true))],
    )
    .await;
    assert_eq!(r.status().as_u16(), 460);
    assert_eq!(st.tus_offset(&url).await, split as u64);
    assert_eq!(st.content(&id).await["status"], "uploading");
    assert!(st.stored_source(&id).await.is_none(), "nothing assembled");

    // With the right sha256 the upload completes, and S3 holds exactly the sent bytes: the
    // parts written for refused bodies were replaced, not assembled.
    let r = patch(
        &st,
        &url,
        split,
        rest,
        &[("upload-checksum", checksum("sha256", rest, false))],
    )
    .await;
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    let stored = st.stored_source(&id).await.expect("source stored");
    assert!(stored == data, "stored source differs from the upload");
}

#[tokio::test]
async fn a_deferred_length_is_stated_by_a_later_patch() {
    let st = Stack::load().await;
    let data = noise(6 * MIB + 5, 32);
    let id = st.create_content("deferred").await;

    // Length and deferral together, or a deferral that is not 1: refused.
    let r = create(
        &st,
        &id,
        &[("upload-length", "10"), ("upload-defer-length", "1")],
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = create(&st, &id, &[("upload-defer-length", "2")]).await;
    assert_eq!(r.status(), 400);
    let r = create(&st, &id, &[]).await;
    assert_eq!(r.status(), 400);

    let r = create(&st, &id, &[("upload-defer-length", "1")]).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let url = location(&r);
    let h = head(&st, &url).await;
    assert_eq!(h.headers()["upload-defer-length"], "1");
    assert!(h.headers().get("upload-length").is_none());

    // 2 MiB without a length, then a length below what is stored (refused), then the rest
    // with the length.
    let r = patch(&st, &url, 0, &data[..2 * MIB], &[]).await;
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    let r = patch(
        &st,
        &url,
        2 * MIB,
        &[],
        &[("upload-length", (MIB).to_string())],
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = patch(
        &st,
        &url,
        2 * MIB,
        &data[2 * MIB..],
        &[("upload-length", data.len().to_string())],
    )
    .await;
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    assert_eq!(
        r.headers()["upload-offset"],
        data.len().to_string().as_str()
    );
    let h = head(&st, &url).await;
    assert_eq!(
        h.headers()["upload-length"],
        data.len().to_string().as_str()
    );
    let stored = st.stored_source(&id).await.expect("source stored");
    assert!(stored == data, "stored source differs from the upload");

    // Once stated, the length cannot change; and a deferred upload is still bounded by the
    // server's maximum.
    let id2 = st.create_content("deferred-2").await;
    let r = create(&st, &id2, &[("upload-defer-length", "1")]).await;
    let url2 = location(&r);
    let r = patch(&st, &url2, 0, b"abc", &[("upload-length", "10".into())]).await;
    assert_eq!(r.status(), 204);
    let r = patch(&st, &url2, 3, b"d", &[("upload-length", "11".into())]).await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    assert!(v["message"].as_str().unwrap().contains("already 10"), "{v}");
    let id3 = st.create_content("deferred-3").await;
    let r = create(&st, &id3, &[("upload-defer-length", "1")]).await;
    let url3 = location(&r);
    let r = patch(
        &st,
        &url3,
        0,
        b"",
        &[("upload-length", u64::MAX.to_string())],
    )
    .await;
    assert_eq!(r.status(), 413);
}

/// HEAD of an upload as `st`'s creator.
async fn head(st: &Stack, url: &str) -> reqwest::Response {
    st.http
        .head(url)
        .header("authorization", st.bearer())
        .header("tus-resumable", "1.0.0")
        .send()
        .await
        .unwrap()
}

/// A partial upload of `len` bytes holding `data` so far; its URL.
async fn partial(st: &Stack, len: usize, data: &[u8]) -> String {
    let len = len.to_string();
    let r = create(
        st,
        "",
        &[("upload-concat", "partial"), ("upload-length", &len)],
    )
    .await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let url = location(&r);
    let r = patch(st, &url, 0, data, &[]).await;
    assert_eq!(r.status(), 204);
    url
}

#[tokio::test]
async fn final_uploads_take_only_their_creators_complete_partials() {
    let st = Stack::load().await;
    let other = st.as_creator(st.sign_in(&Wallet::fresh()).await);
    let a = partial(&st, 3, b"abc").await;
    let b = partial(&st, 5, b"de").await; // incomplete
    let theirs = partial(&other, 3, b"xyz").await;
    let h = head(&st, &a).await;
    assert_eq!(h.headers()["upload-concat"], "partial");
    assert!(
        h.headers().contains_key("upload-expires"),
        "an unused partial expires"
    );
    let id = st.create_content("concatenated").await;
    let fin = |urls: String| {
        let st = &st;
        let id = id.clone();
        async move {
            let v = format!("final;{urls}");
            create(st, &id, &[("upload-concat", v.as_str())]).await
        }
    };
    for (urls, why) in [
        (format!("{a} {theirs}"), "is not a partial upload of yours"),
        (format!("{a} {b}"), "is not complete"),
        (format!("{a} {a}"), "named twice"),
        (
            "https://elsewhere.example/x".to_owned(),
            "not an upload URL",
        ),
        (String::new(), "name 1 to 100"),
    ] {
        let r = fin(urls.clone()).await;
        assert_eq!(r.status(), 400, "{urls}");
        let v: Value = r.json().await.unwrap();
        assert!(v["message"].as_str().unwrap().contains(why), "{urls}: {v}");
    }
    // Refused finals consumed nothing: the other creator's partial is still theirs.
    assert_eq!(head(&other, &theirs).await.status(), 200);
    assert_eq!(
        head(&st, &theirs).await.status(),
        404,
        "not visible to others"
    );

    let r = patch(&st, &b, 2, b"fgh", &[]).await;
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    let r = fin(format!("{a} {b}")).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let final_url = location(&r);
    let h = head(&st, &final_url).await;
    assert_eq!(h.headers()["upload-offset"], "8");
    assert_eq!(
        h.headers()["upload-concat"].to_str().unwrap(),
        format!("final;{a} {b}")
    );
    assert_eq!(
        st.stored_source(&id).await.as_deref(),
        Some(&b"abcdefgh"[..])
    );
    // A final upload takes no PATCH; its partials are consumed.
    let r = patch(&st, &final_url, 8, b"x", &[]).await;
    assert_eq!(r.status(), 403);
    assert_eq!(head(&st, &a).await.status(), 404);
    assert_eq!(head(&st, &b).await.status(), 404);
}
