//! A transcoder killed mid-job: its job is reclaimed and finished by another worker, and the
//! content is never `ready` with partial output. The whole pipeline is this test's own — a
//! private origin with its own Redis (so its jobs reach only its own workers) and two private
//! transcoders — over the stack's bucket; nothing of the stack is stopped or replaced.

use std::time::{Duration, Instant};

use streamgate_testkit::{PrivateOrigin, PrivateTranscoder, Stack, make_clip, metric};

#[tokio::test]
async fn a_killed_workers_job_is_finished_by_another() {
    let st = Stack::load().await;
    let origin = PrivateOrigin::start(&st, "", "nonces-per-minute = 60").await;
    let mut first = PrivateTranscoder::start(&st, &origin.redis_url, "worker-a").await;
    // The creator, signed in at the stack's origin (same session keys), uploads to this one.
    let via = st.at_origin(&origin.url);

    // Long enough (and big enough) that the worker is still encoding when it is killed.
    let clip = make_clip(1280, 720, 24, true);
    let id = via.upload("failover", &clip, 4 << 20).await;

    // Wait until the worker has taken the job and reported progress.
    let start = Instant::now();
    loop {
        let rec = via.content(&id).await;
        assert_ne!(
            rec["status"], "ready",
            "finished before it could be killed: make the clip longer"
        );
        if rec["status"] == "processing" && rec["progress"].as_f64().unwrap_or(0.0) > 0.0 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "job never started: {rec}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Kill the worker and its FFmpeg (its process group), as a crashed host would; once it is
    // reaped, the content is still processing, never ready with partial output.
    first.proc.kill_group();
    assert_eq!(via.content(&id).await["status"], "processing");

    // A replacement worker joins the group; it reclaims the job once it has been silent for
    // `worker.reclaim-idle` (20 s in the stack's config), then transcodes it.
    let second = PrivateTranscoder::start(&st, &origin.redis_url, "worker-b").await;
    let rec = via.wait_done(&id, Duration::from_secs(180)).await;
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(rec["renditions"].as_array().unwrap().len(), 3);
    let page = st.page(&format!("{}/metrics", second.metrics_url)).await;
    assert!(
        metric(&page, "streamgate_transcoder_jobs_reclaimed_total") >= 1.0,
        "the new worker reclaimed the job:\n{page}"
    );

    // The package is complete: the stack's edge serves every rendition playlist and its last
    // segment (the catalog and the package are in the shared bucket).
    let token = st.mint(&id, "5m");
    for r in rec["renditions"].as_array().unwrap() {
        let name = r["name"].as_str().unwrap();
        let url = format!("{}/p/{token}/{id}/{name}/index.m3u8", st.edge);
        let pl = st.http.get(&url).send().await.unwrap();
        assert_eq!(pl.status(), 200, "{url}");
        let text = pl.text().await.unwrap();
        let last = text
            .lines()
            .rfind(|l| !l.starts_with('#') && !l.is_empty())
            .unwrap();
        let seg = st
            .http
            .get(format!("{}/p/{token}/{id}/{name}/{last}", st.edge))
            .send()
            .await
            .unwrap();
        assert_eq!(seg.status(), 200);
    }
}
