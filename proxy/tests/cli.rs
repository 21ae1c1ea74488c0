//! The `streamgate-proxy` command line: `--check-config` and `token mint`, run as a child
//! process against the sample config (the key is passed in the child's environment only).

use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_streamgate-proxy");
/// The sample config, found at run time (a test binary may be reused from another checkout).
fn sample() -> String {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    format!("{dir}/../config/assets/proxy.toml")
}

fn run(args: &[&str], extra_env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env("STREAMGATE_TOKEN_KEY_K1", "6b31".repeat(16))
        .env("STREAMGATE_KEK_1", "4b".repeat(32))
        .env("STREAMGATE_RPC_ETHEREUM", "https://rpc.example/v1/test-key")
        .env("STREAMGATE_EDGE_KEY", "cli-test-edge-key-0123")
        .env_remove("RUST_LOG");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.output().expect("run streamgate-proxy")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn check_config_accepts_the_sample() {
    let out = run(&["--config", &sample(), "--check-config"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "config ok\n");
}

#[test]
fn check_config_names_the_bad_key() {
    let out = run(
        &["--config", &sample(), "--check-config"],
        &[("STREAMGATE__UPSTREAM__ORIGIN", "no-port")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("upstream.origin"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn check_config_refuses_cors_star_with_credentials() {
    // Any site could read a viewer's grant with the viewer's cookies.
    let out = run(
        &["--config", &sample(), "--check-config"],
        &[
            ("STREAMGATE__CORS__ALLOWED_ORIGINS", "[\"*\"]"),
            ("STREAMGATE__CORS__ALLOW_CREDENTIALS", "true"),
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(err.contains("cors.allowed-origins"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn mint_prints_only_the_token() {
    let out = run(
        &[
            "token",
            "mint",
            "--config",
            &sample(),
            "--content",
            "c1",
            "--ttl",
            "10m",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let token = stdout.strip_suffix('\n').expect("one line");
    assert!(
        !token.is_empty() && !token.contains(char::is_whitespace),
        "{stdout:?}"
    );
    assert!(
        token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    );
}

#[test]
fn mint_refuses_a_ttl_above_max() {
    let out = run(
        &[
            "token",
            "mint",
            "--config",
            &sample(),
            "--content",
            "c1",
            "--ttl",
            "48h",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("tokens.max-ttl"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}
