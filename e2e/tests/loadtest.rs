//! The `streamgate-loadtest` binary against the real stack: players at full speed and at
//! real-time pace, and concurrent tus creators; the JSON reports must account for every request.

use std::{process::Command, time::Duration};

use serde_json::Value;
use streamgate_testkit::{Stack, make_clip};

fn loadtest(st: &Stack, args: &[&str]) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.json");
    let out = Command::new(st.bin_dir.join("streamgate-loadtest"))
        .args(args)
        .arg("--quiet")
        .arg("--report")
        .arg(&report)
        .output()
        .expect("streamgate-loadtest (cargo build --workspace --bins)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("segment"));
    serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap()
}

#[tokio::test]
async fn players_and_creators_are_measured() {
    let st = Stack::load().await;
    let clip = make_clip(640, 360, 8, true);
    let id = st.upload("loadtest", &clip, 1 << 20).await;
    assert_eq!(
        st.wait_done(&id, Duration::from_secs(120)).await["status"],
        "ready"
    );
    let url = format!("{}/p/{}/{id}/master.m3u8", st.edge, st.mint(&id, "1h"));

    // As fast as possible: every kind fetched, no errors, the cache serves repeats.
    let r = loadtest(
        &st,
        &[
            "players",
            "--url",
            &url,
            "--players",
            "20",
            "--duration",
            "2s",
            "--ramp-up",
            "500ms",
            "--pace",
            "max",
        ],
    );
    assert_eq!(r["errors"], 0, "{r}");
    for kind in ["master", "playlist", "init", "segment"] {
        assert!(
            r["kinds"][kind]["requests"].as_u64().unwrap() > 0,
            "{kind}: {r}"
        );
        assert!(r["kinds"][kind]["latency_ms"]["p99"].as_f64().unwrap() > 0.0);
    }
    assert!(r["cache_tiers"]["HIT-L1"].as_u64().unwrap() > 0, "{r}");
    assert!(r["time_to_first_segment_ms"]["p50"].as_f64().unwrap() > 0.0);
    let total: u64 = ["master", "playlist", "init", "segment"]
        .iter()
        .map(|k| r["kinds"][k]["requests"].as_u64().unwrap())
        .sum();
    assert_eq!(r["requests"].as_u64().unwrap(), total);

    // Real-time pace: 4 s segments over a 3 s run: at most one segment (the first is due at
    // once) per player — pacing holds players back.
    let r = loadtest(
        &st,
        &[
            "players",
            "--url",
            &url,
            "--players",
            "5",
            "--duration",
            "3s",
            "--ramp-up",
            "100ms",
            "--pace",
            "realtime",
        ],
    );
    assert_eq!(r["errors"], 0, "{r}");
    let segments = r["kinds"]["segment"]["requests"].as_u64().unwrap();
    assert!((5..=5).contains(&segments), "{segments} segments: {r}");

    // Creators: two concurrent tus uploads in 1 MiB PATCHes, every byte accounted for.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.mp4");
    std::fs::write(&file, &clip).unwrap();
    let session = dir.path().join("session");
    std::fs::write(&session, &st.session).unwrap();
    let r = loadtest(
        &st,
        &[
            "creators",
            "--origin",
            &st.origin,
            "--session-file",
            session.to_str().unwrap(),
            "--file",
            file.to_str().unwrap(),
            "--creators",
            "2",
            "--chunk",
            "1048576",
        ],
    );
    assert_eq!(r["errors"], 0, "{r}");
    assert_eq!(r["bytes"].as_u64().unwrap(), 2 * clip.len() as u64, "{r}");

    // Bad input: a clear message and exit status 2.
    let out = Command::new(st.bin_dir.join("streamgate-loadtest"))
        .args(["players", "--players", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no stream"));
}
