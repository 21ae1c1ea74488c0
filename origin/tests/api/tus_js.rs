//! tus as creators' apps speak it: the real `tus-js-client` (npm, run by Node through
//! `scripts/clients/tus.mjs`) uploads to the stack's origin — with a checksum on every PATCH,
//! with a length it only learns at the end, with a wrong checksum (refused, 460, nothing
//! stored), as parallel partial uploads concatenated by a final one, and through a connection
//! cut mid-PATCH (it resumes from the durable offset, not from zero).

use serde_json::{Value, json};
use streamgate_testkit::{CuttingForwarder, PrivateOrigin, Stack, noise, repo_root};

const MIB: usize = 1 << 20;

/// Runs the tus-js-client driver with `opts`; its JSON report (with its stderr as `log`). Async (not `std::process`):
/// a forwarder in this runtime must keep running meanwhile.
async fn tus_js(opts: Value) -> Value {
    let run = tokio::process::Command::new("node")
        .arg(repo_root().join("scripts/clients/tus.mjs"))
        .arg(opts.to_string())
        .kill_on_drop(true)
        .output();
    // A client that hangs fails the test instead of the suite.
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), run)
        .await
        .expect("tus.mjs finished within 2 minutes")
        .expect("node scripts/clients/tus.mjs (run make setup)");
    assert!(
        out.status.success(),
        "tus.mjs: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "tus.mjs printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    // The requests it made, as its stderr tells them: shown with any failed assertion.
    report["log"] = String::from_utf8_lossy(&out.stderr).into();
    report
}

/// Writes `data` to a temporary file the driver reads.
fn file_of(data: &[u8]) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), data).unwrap();
    f
}

#[tokio::test]
async fn checksummed_chunks_and_a_deferred_length_upload_byte_for_byte() {
    let st = Stack::load().await;
    for (i, (algo, defer)) in [("sha1", false), ("sha256", true)].into_iter().enumerate() {
        let data = noise(7 * MIB + 999, 40 + i as u64);
        let file = file_of(&data);
        let id = st.create_content(&format!("tus-js-{algo}")).await;
        let report = tus_js(json!({
            "endpoint": format!("{}/v1/uploads", st.origin),
            "token": st.session,
            "contentId": id,
            "file": file.path(),
            "chunkSize": 3 * MIB,
            "checksum": algo,
            "deferLength": defer,
        }))
        .await;
        assert_eq!(report["ok"], true, "{report}");
        let patches: Vec<&Value> = report["requests"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == "PATCH")
            .collect();
        assert_eq!(patches.len(), 3, "three 3 MiB chunks: {report}");
        assert!(patches.iter().all(|p| p["status"] == 204), "{report}");
        let stored = st.stored_source(&id).await.expect("source stored");
        assert!(
            stored == data,
            "{algo}: stored source differs from the upload"
        );
    }
}

#[tokio::test]
async fn a_wrong_checksum_fails_the_upload_with_460() {
    let st = Stack::load().await;
    let data = noise(2 * MIB, 43);
    let file = file_of(&data);
    let id = st.create_content("tus-js-wrong").await;
    let report = tus_js(json!({
        "endpoint": format!("{}/v1/uploads", st.origin),
        "token": st.session,
        "contentId": id,
        "file": file.path(),
        "checksum": "wrong-sha256",
    }))
    .await;
    assert_eq!(report["ok"], false, "{report}");
    assert_eq!(report["status"], 460, "{report}");
    // 460 is not retried (a 4xx other than 409/423): one PATCH, refused.
    assert_eq!(report["retries"], json!([460]), "{report}");
    let url = report["url"].as_str().unwrap();
    assert_eq!(st.tus_offset(url).await, 0, "nothing of the body was kept");
    assert!(st.stored_source(&id).await.is_none());
    assert_eq!(st.content(&id).await["status"], "uploading");
}

#[tokio::test]
async fn a_connection_cut_mid_patch_resumes_from_the_durable_offset() {
    let st = Stack::load().await;
    // An origin whose public URL is a forwarder that cuts the first connection after 3 MiB
    // went upstream: tus-js-client follows the Location it is given, so every request of the
    // upload crosses the forwarder.
    let fwd = CuttingForwarder::start(3 * MIB as u64).await;
    let public = format!("http://127.0.0.1:{}", fwd.port);
    let origin = PrivateOrigin::start_env(
        &st,
        "",
        "",
        "",
        &[("STREAMGATE__SERVER__PUBLIC_URL", public.as_str())],
    )
    .await;
    fwd.forward_to(origin.url.trim_start_matches("http://"));
    let me = st.at_origin(&public);

    let data = noise(8 * MIB + 4321, 44);
    let file = file_of(&data);
    let id = me.create_content("tus-js-cut").await;
    // One PATCH for the whole file (no chunkSize), so the cut lands inside it.
    let report = tus_js(json!({
        "endpoint": format!("{public}/v1/uploads"),
        "token": st.session,
        "contentId": id,
        "file": file.path(),
    }))
    .await;
    assert!(fwd.has_cut(), "the forwarder cut a connection");
    assert_eq!(report["ok"], true, "{report}");
    assert!(
        report["retries"].as_array().unwrap().contains(&json!(0)),
        "the cut was a network error the client retried: {report}"
    );
    // After the cut the client asked for the offset and went on from there: a PATCH that
    // starts past zero and before the end, i.e. the bytes before the cut were not sent again.
    let resumed_at: Vec<u64> = report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "PATCH" && r["status"] == 204)
        .filter_map(|r| r["offset"].as_str()?.parse().ok())
        .collect();
    assert!(
        resumed_at.iter().any(|&o| o > 0 && o < data.len() as u64),
        "resumed from a durable offset: {report}"
    );
    let stored = st.stored_source(&id).await.expect("source stored");
    assert!(stored == data, "stored source differs from the upload");
}

#[tokio::test]
async fn parallel_partial_uploads_are_concatenated_in_order() {
    let st = Stack::load().await;
    // Three partials of ~4 MiB: below S3's 5 MiB part minimum, so origin re-reads them.
    let data = noise(12 * MIB + 321, 45);
    let file = file_of(&data);
    let id = st.create_content("tus-js-parallel").await;
    let report = tus_js(json!({
        "endpoint": format!("{}/v1/uploads", st.origin),
        "token": st.session,
        "contentId": id,
        "file": file.path(),
        "parallel": 3,
    }))
    .await;
    assert_eq!(report["ok"], true, "{report}");
    let posts: Vec<&Value> = report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST")
        .collect();
    let partials: Vec<&str> = posts
        .iter()
        .filter(|r| r["concat"] == "partial")
        .map(|r| r["location"].as_str().unwrap())
        .collect();
    assert_eq!(partials.len(), 3, "{report}");
    let finals: Vec<&&Value> = posts
        .iter()
        .filter(|r| {
            r["concat"]
                .as_str()
                .is_some_and(|c| c.starts_with("final;"))
        })
        .collect();
    assert_eq!(finals.len(), 1, "{report}");
    assert_eq!(finals[0]["status"], 201);
    let stored = st.stored_source(&id).await.expect("source stored");
    assert!(stored == data, "the partials were assembled in order");
    // The partial uploads are consumed: gone, with their objects.
    for url in partials {
        let r = st
            .http
            .head(url)
            .header("authorization", st.bearer())
            .header("tus-resumable", "1.0.0")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{url}");
        let pid = url.rsplit('/').next().unwrap();
        let listed = st
            .s3()
            .list_objects_v2()
            .bucket(&st.bucket)
            .prefix(format!("uploads/partials/{pid}"))
            .send()
            .await
            .unwrap();
        assert!(
            listed.contents().is_empty(),
            "{pid}: {:?}",
            listed.contents()
        );
    }
}
