//! Zero-downtime operations under real-time players (the `loadtest` crate's): the edge is
//! upgraded in place (Pingora's listening-socket hand-over to a new process, `--upgrade` +
//! SIGQUIT, as `scripts/stack.sh upgrade edge` and the systemd unit do it) and origin is
//! restarted, both while players watch. Not one request may fail.

use std::time::Duration;

use reqwest::Url;
use streamgate_loadtest::{Config, Mode, Pace, player::Source};
use streamgate_testkit::{PrivateEdge, PrivateOrigin, Stack, eventually, metric};

use crate::packaged;

fn served(page: &str) -> f64 {
    page.lines()
        .filter(|l| l.starts_with("streamgate_edge_requests_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn players_keep_playing_through_an_edge_upgrade_and_an_origin_restart() {
    let st = Stack::load().await;
    let (id, _, _) = packaged(&st, "upgrade-under-load").await;
    let mut origin = PrivateOrigin::start(&st, "", "").await;
    let internal = origin.internal_url.trim_start_matches("http://").to_owned();
    let mut edge = PrivateEdge::start_with_origin(
        &st,
        &internal,
        "[entitlements]\nstandalone = true\n[cache]\nmemory = \"64MiB\"\n",
    )
    .await;
    let token = edge.mint(&st, &id);
    let master = Url::parse(&format!("{}/p/{token}/{id}/master.m3u8", edge.url)).unwrap();

    // 24 viewers at real-time pace for the whole exercise.
    let load = tokio::spawn(streamgate_loadtest::run(Config {
        mode: Mode::Players {
            sources: vec![Source::Url(master)],
            pace: Pace::Realtime,
        },
        count: 24,
        duration: Duration::from_secs(24),
        ramp_up: Duration::from_secs(2),
        timeout: Duration::from_secs(10),
        progress: false,
    }));
    eventually("players are watching", Duration::from_secs(20), || async {
        served(&edge.metrics_page(&st).await) >= 48.0
    })
    .await;

    // The edge upgrade: a new process takes the sockets, the old one drains and exits.
    let old_pid = edge.proc.id();
    let mut old = edge.upgrade(&st).await;
    assert_ne!(edge.proc.id(), old_pid);
    assert!(
        old.wait_exit(Duration::from_secs(30)).await,
        "the old edge drained and exited"
    );
    let after_upgrade = served(&edge.metrics_page(&st).await);
    eventually(
        "the new edge serves the players",
        Duration::from_secs(20),
        || async { served(&edge.metrics_page(&st).await) >= after_upgrade + 24.0 },
    )
    .await;

    // Origin restarts (drain, then the current binary): players are served from the edge's
    // cache meanwhile, then from the new origin.
    origin.restart(&st).await;

    let report = load.await.unwrap().unwrap();
    assert!(report.requests >= 200, "{}", report.table());
    assert_eq!(report.errors, 0, "{}", report.table());
    let log = std::fs::read_to_string(&edge.log).unwrap();
    assert!(
        log.contains("listener sockets sent"),
        "the old edge handed over its sockets"
    );
    assert_eq!(
        metric(
            &edge.metrics_page(&st).await,
            "streamgate_edge_upstream_errors_total"
        ),
        0.0
    );
}

/// A daemon's pid from its pid file, if written.
fn pid_in(file: &std::path::Path) -> Option<i32> {
    std::fs::read_to_string(file).ok()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// Kills the daemons a test started if it ends early (they are not its children).
struct Daemons(std::path::PathBuf, Vec<i32>);

impl Drop for Daemons {
    fn drop(&mut self) {
        for pid in self.1.iter().copied().chain(pid_in(&self.0)) {
            if pid > 1 {
                let _ = streamgate_testkit::signal_pid(pid, streamgate_testkit::Signal::SIGKILL);
            }
        }
    }
}

/// The systemd unit's way (deploy/systemd/streamgate-edge.service): `--daemon` with a pid
/// file (`Type=forking`), and `systemctl reload` = SIGQUIT to `$MAINPID`, then the new binary
/// with `--daemon --upgrade`. Requests keep succeeding; the pid file names the new process; the
/// old one drains and exits.
#[tokio::test]
async fn the_daemon_upgrades_the_way_the_systemd_unit_reloads_it() {
    let st = Stack::load().await;
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("edge.pid");
    let error_log = dir.path().join("edge.log");
    let mut edge = PrivateEdge::start_custom(
        &st,
        &format!(
            "pid-file = \"{}\"\nerror-log = \"{}\"",
            pid_file.display(),
            error_log.display()
        ),
        &format!("origin = \"{}\"", st.origin_internal_addr()),
        "",
        "[entitlements]\nstandalone = true\n",
    )
    .await;
    // Keep the ports, stop the foreground edge: the daemon takes over the same config.
    let _ports = edge.proc.take_ports();
    edge.proc.terminate();
    assert!(edge.proc.wait_exit(Duration::from_secs(30)).await);
    let bin = st.bin_dir.join("streamgate-proxy");
    let mut guard = Daemons(pid_file.clone(), Vec::new());

    // ExecStart: the parent exits once the daemon runs.
    // (What the daemon logs before it forks goes to the test's output otherwise.)
    let started = std::process::Command::new(&bin)
        .args(["--daemon", "--config"])
        .arg(&edge.conf)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(started.success());
    eventually("the daemon wrote its pid", Duration::from_secs(10), || {
        let ok = pid_in(&pid_file).is_some_and(alive);
        async move { ok }
    })
    .await;
    let first = pid_in(&pid_file).unwrap();
    guard.1.push(first);
    eventually("the daemon serves", Duration::from_secs(10), || async {
        st.http
            .get(format!("{}/readyz", edge.url))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;

    // Requests all along the reload.
    let url = format!("{}/healthz", edge.url);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = {
        let stop = stop.clone();
        tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // A fresh connection each time: every accept goes to whichever process holds
                // the listening socket at that moment.
                let c = reqwest::Client::builder()
                    .pool_max_idle_per_host(0)
                    .build()
                    .unwrap();
                match c.get(&url).send().await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    Ok(r) => failed.push(r.status().to_string()),
                    Err(e) => failed.push(e.to_string()),
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            (ok, failed)
        })
    };
    // ExecReload: SIGQUIT to the main pid, then the new binary upgrading from it.
    streamgate_testkit::signal_pid(first, streamgate_testkit::Signal::SIGQUIT).unwrap();
    let reloaded = std::process::Command::new(&bin)
        .args(["--daemon", "--upgrade", "--config"])
        .arg(&edge.conf)
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(reloaded.success());
    eventually(
        "the pid file names the new daemon",
        Duration::from_secs(15),
        || {
            let now = pid_in(&pid_file);
            async move { now.is_some_and(|p| p != first && alive(p)) }
        },
    )
    .await;
    let second = pid_in(&pid_file).unwrap();
    guard.1.push(second);
    eventually(
        "the old daemon drained and exited",
        Duration::from_secs(30),
        || async move { !alive(first) },
    )
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, failed) = prober.await.unwrap();
    assert!(ok > 50, "{ok} requests");
    assert!(failed.is_empty(), "{failed:?}");
    let log = std::fs::read_to_string(&error_log).unwrap();
    assert!(log.contains("listener sockets sent"), "{log}");

    // ExecStop: SIGTERM drains and exits.
    streamgate_testkit::signal_pid(second, streamgate_testkit::Signal::SIGTERM).unwrap();
    eventually(
        "the daemon stopped",
        Duration::from_secs(30),
        || async move { !alive(second) },
    )
    .await;
}
