//! A transcoder killed mid-job: its job is reclaimed and finished by another worker, and the
//! content is never `ready` with partial output. Runs in its own test binary because it kills
//! and replaces the stack's transcoder.

mod utils;

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use utils::{Stack, make_clip, metric};

#[tokio::test]
async fn a_killed_workers_job_is_finished_by_another() {
    let st = Stack::load().await;
    let pid_file = st.stack_dir.join("run").join("transcoder.pid");
    let old_pid: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();

    // Long enough (and big enough) that the worker is still encoding when we kill it.
    let clip = make_clip(1280, 720, 24, true);
    let id = st.upload("failover", &clip, 4 << 20).await;

    // Wait until the worker has taken the job and reported progress.
    let start = Instant::now();
    loop {
        let rec = st.content(&id).await;
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
    let killed = Command::new("kill")
        .args(["-KILL", &old_pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    // Let the dead worker's ffmpeg child go too, as a crashed host would.
    let _ = Command::new("pkill")
        .args(["-KILL", "-f", &format!("sg-job-{id}-")])
        .status();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(st.content(&id).await["status"], "processing");

    // A replacement worker (same config, so the same metrics port) joins the group; the stack's
    // pid file points at it so `make down` stops it.
    let log = std::fs::OpenOptions::new()
        .append(true)
        .open(st.stack_dir.join("logs").join("transcoder.log"))
        .unwrap();
    // Not waited for on purpose: the worker outlives this test as part of the stack, which
    // stops it by the pid written below.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(st.bin_dir.join("streamgate-transcoder"))
        .arg("--config")
        .arg(st.config_dir.join("transcoder.toml"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    std::fs::write(&pid_file, child.id().to_string()).unwrap();

    // The stack reclaims after 20 s of silence; then the transcode itself.
    let rec = st.wait_done(&id, Duration::from_secs(180)).await;
    assert_eq!(rec["status"], "ready", "{rec}");
    assert_eq!(rec["renditions"].as_array().unwrap().len(), 3);

    let page = st.metrics_page("TRANSCODER_METRICS_URL").await;
    assert!(
        metric(&page, "streamgate_transcoder_jobs_reclaimed_total") >= 1.0,
        "the new worker reclaimed the job:\n{page}"
    );

    // The package is complete: every rendition playlist and its last segment are served.
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
