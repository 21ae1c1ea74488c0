//! Loads every sample file in `assets/` and checks that bad values are reported by key.

use std::{collections::HashMap, path::PathBuf, time::Duration};

use super::*;

fn asset(name: &str) -> PathBuf {
    PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("assets")
        .join(name)
}

fn env() -> HashMap<String, String> {
    [
        ("STREAMGATE_TOKEN_KEY_K1".to_owned(), "ab".repeat(32)),
        ("STREAMGATE_S3_ACCESS_KEY".to_owned(), "ak".to_owned()),
        ("STREAMGATE_S3_SECRET_KEY".to_owned(), "sk".to_owned()),
        ("STREAMGATE_SESSION_KEY_S1".to_owned(), "cd".repeat(32)),
        (
            "STREAMGATE_RPC_ETHEREUM".to_owned(),
            "https://rpc.example/key123".to_owned(),
        ),
        (
            "STREAMGATE_EVM_RPC_1".to_owned(),
            "https://eth.example/v2/apikey".to_owned(),
        ),
        (
            "STREAMGATE_EDGE_KEY".to_owned(),
            "edge-key-0123456789abcdef".to_owned(),
        ),
        ("STREAMGATE_KEK_1".to_owned(), "ef".repeat(32)),
    ]
    .into()
}

fn with(extra: &[(&str, &str)]) -> HashMap<String, String> {
    let mut e = env();
    for (k, v) in extra {
        e.insert((*k).to_owned(), (*v).to_owned());
    }
    e
}

#[test]
fn sample_proxy_config_loads() {
    let c = load_proxy(&asset("proxy.toml"), &env()).unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8080");
    assert_eq!(c.server.metrics_listen.to_string(), "127.0.0.1:9180");
    assert_eq!(c.upstream.origin, "127.0.0.1:8082");
    assert_eq!(
        c.edge_key.as_ref().map(Secret::expose),
        Some("edge-key-0123456789abcdef")
    );
    assert!(c.child_keys.is_empty());
    assert_eq!(c.tokens.signing_key, "k1");
    assert_eq!(c.tokens.default_ttl, Duration::from_secs(3600));
    assert_eq!(c.tokens.keys.len(), 1);
    assert_eq!(c.tokens.keys[0].1.expose(), "ab".repeat(32));
    let enc = c.encryption.as_ref().expect("[encryption]");
    assert_eq!(enc.wrapping_key, "kek1");
    assert_eq!(enc.keys[0].1.expose(), "ef".repeat(32));
    assert_eq!(c.license.requests_per_minute, 60);
}

#[test]
fn sample_origin_config_loads() {
    let c = load_origin(&asset("origin.toml"), &env()).unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:8081");
    assert_eq!(c.server.internal_listen.to_string(), "127.0.0.1:8082");
    assert_eq!(c.edge_keys.len(), 1);
    assert_eq!(c.s3.bucket, "streamgate");
    assert_eq!(c.s3.secret_key.expose(), "sk");
    assert_eq!(c.uploads.part_size, 8 << 20);
    assert_eq!(c.uploads.max_size, 20 << 30);
    assert_eq!(c.redis.url, "redis://127.0.0.1:16379");
}

#[test]
fn sample_transcoder_config_loads() {
    let c = load_transcoder(&asset("transcoder.toml"), &env()).unwrap();
    assert_eq!(c.ladder, default_ladder());
    assert_eq!(c.ffmpeg.segment_seconds, 4);
    assert_eq!(c.worker.max_attempts, 3);
    assert_eq!(c.metrics.listen.to_string(), "127.0.0.1:9181");
    assert_eq!(c.encryption.expect("[encryption]").wrapping_key, "kek1");
}

#[test]
fn env_overrides_win_over_the_file() {
    let e = with(&[
        ("STREAMGATE__SERVER__LISTEN", "127.0.0.1:18080"),
        ("STREAMGATE__TOKENS__DEFAULT_TTL", "30m"),
    ]);
    let c = load_proxy(&asset("proxy.toml"), &e).unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:18080");
    assert_eq!(c.tokens.default_ttl, Duration::from_secs(1800));
}

fn err_proxy(extra: &[(&str, &str)]) -> String {
    load_proxy(&asset("proxy.toml"), &with(extra))
        .unwrap_err()
        .to_string()
}

#[test]
fn errors_name_the_key_and_the_value() {
    let e = err_proxy(&[("STREAMGATE__SERVER__THREADS", "0")]);
    assert!(e.contains("server.threads") && e.contains('0'), "{e}");

    // The slowest reader allowed: off, or a sane rate.
    let e = err_proxy(&[("STREAMGATE__SERVER__MIN_SEND_RATE", "100")]);
    assert!(
        e.contains("server.min-send-rate") && e.contains("100"),
        "{e}"
    );
    let rate = |v: &str| {
        load_proxy(
            &asset("proxy.toml"),
            &with(&[("STREAMGATE__SERVER__MIN_SEND_RATE", v)]),
        )
        .unwrap()
        .server
        .min_send_rate
    };
    assert_eq!(rate("0"), 0);
    assert_eq!(rate("1MiB"), 1 << 20);

    let e = err_proxy(&[("STREAMGATE__TOKENS__SIGNING_KEY", "k9")]);
    assert!(e.contains("tokens.signing-key") && e.contains("k9"), "{e}");

    let e = err_proxy(&[("STREAMGATE__UPSTREAM__ORIGIN", "nowhere")]);
    assert!(
        e.contains("upstream.origin") && e.contains("nowhere"),
        "{e}"
    );

    let e = err_proxy(&[("STREAMGATE__SERVER__LISTEN", "not-an-address")]);
    assert!(e.contains("server.listen"), "{e}");

    let e = err_proxy(&[("STREAMGATE__UPSTREAM__READ_TIMEOUT", "forever")]);
    assert!(
        e.contains("upstream.read-timeout") && e.contains("forever"),
        "{e}"
    );

    let e = err_proxy(&[("STREAMGATE__SERVER__BOGUS", "1")]);
    assert!(e.contains("bogus"), "{e}");
}

#[test]
fn short_or_missing_token_keys_are_rejected_without_echoing_them() {
    let e = err_proxy(&[("STREAMGATE_TOKEN_KEY_K1", "abcd")]);
    assert!(
        e.contains("tokens.keys[0].secret") && !e.contains("abcd"),
        "{e}"
    );
    let mut env = env();
    env.remove("STREAMGATE_TOKEN_KEY_K1");
    let e = load_proxy(&asset("proxy.toml"), &env)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("STREAMGATE_TOKEN_KEY_K1") && e.contains("not set"),
        "{e}"
    );
}

#[test]
fn origin_part_size_must_fit_s3() {
    let e = load_origin(
        &asset("origin.toml"),
        &with(&[("STREAMGATE__UPLOADS__PART_SIZE", "1MiB")]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("uploads.part-size") && e.contains("1048576"),
        "{e}"
    );
    let e = load_origin(
        &asset("origin.toml"),
        &with(&[("STREAMGATE__S3__BUCKET", "Bad_Bucket")]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("s3.bucket") && e.contains("Bad_Bucket"), "{e}");
}

#[test]
fn transcoder_ladder_and_worker_are_checked() {
    let e = load_transcoder(
        &asset("transcoder.toml"),
        &with(&[("STREAMGATE__FFMPEG__PRESET", "warp")]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("ffmpeg.preset") && e.contains("warp"), "{e}");
    let e = load_transcoder(
        &asset("transcoder.toml"),
        &with(&[("STREAMGATE__WORKER__HEARTBEAT", "50s")]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("worker.heartbeat"), "{e}");
}

#[test]
fn syntax_errors_name_the_file() {
    let e = parse_str::<ProxyFile>("[server\n", std::path::Path::new("x.toml"), &env())
        .unwrap_err()
        .to_string();
    assert!(e.contains("x.toml") && e.contains("TOML"), "{e}");
}

#[test]
fn log_filter_is_validated() {
    let e = err_proxy(&[("STREAMGATE__LOG__FILTER", "info,[[[")]);
    assert!(e.contains("log.filter"), "{e}");
    let mut env = env();
    env.insert("RUST_LOG".into(), "  ".into());
    let c = load_proxy(&asset("proxy.toml"), &env).unwrap();
    assert_eq!(
        c.log.effective_filter(&env),
        "info",
        "blank RUST_LOG is ignored"
    );
    env.insert("RUST_LOG".into(), "debug".into());
    assert_eq!(c.log.effective_filter(&env), "debug");
}

#[test]
fn a_missing_log_section_defaults_to_info() {
    let path = std::env::temp_dir().join(format!("sg-nolog-{}.toml", std::process::id()));
    let text = std::fs::read_to_string(asset("origin.toml")).unwrap();
    let cut = text.find("[log]").unwrap();
    std::fs::write(&path, &text[..cut]).unwrap();
    let c = load_origin(&path, &env()).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(c.log.filter, "info");
    assert_eq!(c.log.format, LogFormat::Text);
}

#[test]
fn origin_auth_section_is_required_and_checked() {
    let c = load_origin(&asset("origin.toml"), &env()).unwrap();
    assert_eq!(c.auth.domain, "127.0.0.1:8081");
    assert_eq!(c.auth.keys[0].0, "s1");
    assert_eq!(c.auth.evm_chain_ids, vec![1, 137, 31337]);

    let err = |k: &str, v: &str| {
        load_origin(&asset("origin.toml"), &with(&[(k, v)]))
            .unwrap_err()
            .to_string()
    };
    let e = err("STREAMGATE__AUTH__DOMAIN", "\"\"");
    assert!(
        e.contains("auth.domain") && e.contains("does not start"),
        "{e}"
    );
    let e = err("STREAMGATE__AUTH__ALLOWED_URIS", "[\"ftp://x\"]");
    assert!(
        e.contains("auth.allowed-uris[0]") && e.contains("ftp://x"),
        "{e}"
    );
    let e = err("STREAMGATE__AUTH__SOLANA_CHAINS", "[\"moon\"]");
    assert!(
        e.contains("auth.solana-chains[0]") && e.contains("moon"),
        "{e}"
    );
    let e = err("STREAMGATE_SESSION_KEY_S1", &"ab".repeat(33));
    assert!(
        e.contains("auth.keys[0].secret") && e.contains("exactly 32 bytes"),
        "{e}"
    );

    let path = std::env::temp_dir().join(format!("sg-noauth-{}.toml", std::process::id()));
    let text = std::fs::read_to_string(asset("origin.toml")).unwrap();
    let (a, b) = (text.find("[auth]").unwrap(), text.find("[log]").unwrap());
    std::fs::write(&path, format!("{}{}", &text[..a], &text[b..])).unwrap();
    let e = load_origin(&path, &env()).unwrap_err().to_string();
    std::fs::remove_file(&path).unwrap();
    assert!(e.contains("auth"), "{e}");
}

#[test]
fn origin_evm_rpc_map_is_checked() {
    let c = load_origin(&asset("origin.toml"), &env()).unwrap();
    assert_eq!(c.auth.rpc_timeout, Duration::from_secs(3));
    let urls = |id: u64| -> Vec<&str> { c.auth.evm_rpc[&id].iter().map(|s| s.expose()).collect() };
    assert_eq!(urls(1), ["https://eth.example/v2/apikey"]);
    assert_eq!(urls(31337), ["http://127.0.0.1:18545"]);
    assert!(
        !c.auth.evm_rpc.contains_key(&137),
        "no RPC: EOA sign-in only"
    );

    let err = |extra: &[(&str, &str)]| {
        load_origin(&asset("origin.toml"), &with(extra))
            .unwrap_err()
            .to_string()
    };
    let e = err(&[("STREAMGATE__AUTH__EVM_RPC__31337", "[\"ws://127.0.0.1:1\"]")]);
    assert!(
        e.contains("auth.evm-rpc.31337[0]") && e.contains("ws://"),
        "{e}"
    );
    let e = err(&[("STREAMGATE__AUTH__EVM_RPC__31337", "[]")]);
    assert!(
        e.contains("auth.evm-rpc.31337") && e.contains("at least one"),
        "{e}"
    );
    let e = err(&[("STREAMGATE__AUTH__EVM_RPC__5", "[\"http://x\"]")]);
    assert!(e.contains("auth.evm-rpc") && e.contains("\"5\""), "{e}");
    let e = err(&[("STREAMGATE__AUTH__RPC_TIMEOUT", "0s")]);
    assert!(e.contains("auth.rpc-timeout"), "{e}");
    // A URL from the environment is a secret: a bad one is reported without its value.
    let e = err(&[("STREAMGATE_EVM_RPC_1", "ftp://key@host")]);
    assert!(
        e.contains("auth.evm-rpc.1[0]") && !e.contains("key@host"),
        "{e}"
    );
    // An override may replace the list, e.g. to point at another node.
    let c = load_origin(
        &asset("origin.toml"),
        &with(&[(
            "STREAMGATE__AUTH__EVM_RPC__31337",
            "[\"http://10.0.0.1:8545\", \"https://b.example\"]",
        )]),
    )
    .unwrap();
    assert_eq!(c.auth.evm_rpc[&31337].len(), 2);
}

#[test]
fn proxy_grant_sections_load_and_are_checked() {
    let c = load_proxy(&asset("proxy.toml"), &env()).unwrap();
    let s = c.session.as_ref().unwrap();
    assert_eq!(s.issuer, "http://127.0.0.1:8081");
    assert_eq!(s.cookie, "sg_session");
    let e = c.entitlements.as_ref().unwrap();
    assert_eq!(e.ttl_allow, Duration::from_secs(300));
    assert_eq!(e.evm_rpc[&1][0].expose(), "https://rpc.example/key123");
    assert_eq!(
        e.solana_rpc["mainnet"][0].expose(),
        "https://api.mainnet-beta.solana.com"
    );

    let e = err_proxy(&[(
        "STREAMGATE__ENTITLEMENTS__SOLANA_RPC__MOONNET",
        "[\"http://x\"]",
    )]);
    assert!(
        e.contains("entitlements.solana-rpc") && e.contains("moonnet"),
        "{e}"
    );
    let e = err_proxy(&[(
        "STREAMGATE__ENTITLEMENTS__SOLANA_RPC__LOCALNET",
        "[\"ws://x\"]",
    )]);
    assert!(e.contains("entitlements.solana-rpc.localnet[0]"), "{e}");

    let e = err_proxy(&[("STREAMGATE__SESSION__JWKS_URL", "ftp://x")]);
    assert!(e.contains("session.jwks-url"), "{e}");
    let e = err_proxy(&[("STREAMGATE__ENTITLEMENTS__REDIS_URL", "http://x")]);
    assert!(e.contains("entitlements.redis-url"), "{e}");
    let e = err_proxy(&[("STREAMGATE_RPC_ETHEREUM", "not a url")]);
    assert!(
        e.contains("entitlements.evm-rpc.1[0]") && !e.contains("not a url"),
        "{e}"
    );
}

#[test]
fn proxy_cache_l2_is_one_redis_or_a_cluster() {
    let c = load_proxy(
        &asset("proxy.toml"),
        &with(&[(
            "STREAMGATE__CACHE__REDIS_CLUSTER",
            "[\"redis://10.0.0.1:7000\", \"redis://10.0.0.2:7000\"]",
        )]),
    )
    .unwrap();
    assert_eq!(c.cache.redis_cluster.len(), 2);
    let e = err_proxy(&[
        (
            "STREAMGATE__CACHE__REDIS_CLUSTER",
            "[\"redis://10.0.0.1:7000\"]",
        ),
        ("STREAMGATE__CACHE__REDIS_URL", "redis://10.0.0.3:6379"),
    ]);
    assert!(
        e.contains("cache.redis-cluster") && e.contains("not both"),
        "{e}"
    );
    let e = err_proxy(&[("STREAMGATE__CACHE__REDIS_CLUSTER", "[\"http://x:1\"]")]);
    assert!(e.contains("cache.redis-cluster[0]"), "{e}");
    let e = err_proxy(&[("STREAMGATE__CACHE__MAX_OBJECT", "0")]);
    assert!(e.contains("cache.max-object"), "{e}");
    let e = err_proxy(&[(
        "STREAMGATE__CORS__ALLOWED_ORIGINS",
        "[\"https://a.example/\"]",
    )]);
    assert!(e.contains("cors.allowed-origins[0]"), "{e}");
    let e = err_proxy(&[("STREAMGATE__UPSTREAM__PARENTS", "[\"edge-2\"]")]);
    assert!(e.contains("upstream.parents[0]"), "{e}");
}

fn err_origin(extra: &[(&str, &str)]) -> String {
    load_origin(&asset("origin.toml"), &with(extra))
        .unwrap_err()
        .to_string()
}

#[test]
fn origin_media_listener_is_internal_and_keyed() {
    let e = err_origin(&[("STREAMGATE__SERVER__INTERNAL_LISTEN", "127.0.0.1:8081")]);
    assert!(e.contains("server.internal-listen"), "{e}");
    // A non-loopback internal listener without keys is refused…
    let e = err_origin(&[
        ("STREAMGATE__SERVER__INTERNAL_LISTEN", "0.0.0.0:8082"),
        ("STREAMGATE__SERVER__EDGE_KEYS", "[]"),
    ]);
    assert!(
        e.contains("server.edge-keys") && e.contains("loopback"),
        "{e}"
    );
    // …and short keys too, without echoing them.
    let e = err_origin(&[("STREAMGATE_EDGE_KEY", "short")]);
    assert!(
        e.contains("server.edge-keys[0]") && !e.contains("short"),
        "{e}"
    );
    let c = load_origin(
        &asset("origin.toml"),
        &with(&[(
            "STREAMGATE__SERVER__TRUSTED_PROXIES",
            "[\"10.0.0.0/8\", \"2001:db8::/32\"]",
        )]),
    )
    .unwrap();
    assert!(c.trusted_proxies.trusts("10.1.1.1".parse().unwrap()));
    assert!(!c.trusted_proxies.trusts("192.0.2.1".parse().unwrap()));
    let e = err_origin(&[("STREAMGATE__SERVER__TRUSTED_PROXIES", "[\"10.0.0.1/8\"]")]);
    assert!(
        e.contains("server.trusted-proxies") && e.contains("host bits"),
        "{e}"
    );
}

#[test]
fn proxy_security_pairs_are_refused() {
    // CORS `*` with credentials: any site could read viewers' grants.
    let e = err_proxy(&[
        ("STREAMGATE__CORS__ALLOWED_ORIGINS", "[\"*\"]"),
        ("STREAMGATE__CORS__ALLOW_CREDENTIALS", "true"),
    ]);
    assert!(
        e.contains("cors.allowed-origins") && e.contains("credentials"),
        "{e}"
    );
    let c = load_proxy(
        &asset("proxy.toml"),
        &with(&[
            (
                "STREAMGATE__CORS__ALLOWED_ORIGINS",
                "[\"https://app.example\"]",
            ),
            ("STREAMGATE__CORS__ALLOW_CREDENTIALS", "true"),
        ]),
    )
    .unwrap();
    assert!(c.cors.allow_credentials);
    // Grants without any Redis get no invalidations: refused unless asked for.
    let sample = std::fs::read_to_string(asset("proxy.toml")).unwrap();
    let no_redis = sample.replace("redis-url = \"redis://127.0.0.1:16379\"\n", "");
    assert_ne!(no_redis, sample);
    let e = proxy_from_text(&no_redis, &[]).unwrap_err().to_string();
    assert!(
        e.contains("entitlements.redis-url") && e.contains("standalone"),
        "{e}"
    );
    let standalone = proxy_from_text(
        &no_redis,
        &[("STREAMGATE__ENTITLEMENTS__STANDALONE", "true")],
    )
    .unwrap();
    assert!(standalone.entitlements.unwrap().standalone);
    // Parents need a key to present.
    let no_key = sample.replace("edge-key = { env = \"STREAMGATE_EDGE_KEY\" }", "");
    assert_ne!(no_key, sample);
    let e = proxy_from_text(
        &no_key,
        &[("STREAMGATE__UPSTREAM__PARENTS", "[\"127.0.0.1:9000\"]")],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("upstream.edge-key"), "{e}");
}

/// Loads a proxy config written out from `text`.
fn proxy_from_text(text: &str, extra: &[(&str, &str)]) -> Result<ProxyConfig, ConfigError> {
    let dir = std::env::temp_dir().join(format!(
        "sg-config-test-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("proxy.toml");
    std::fs::write(&path, text).unwrap();
    let out = load_proxy(&path, &with(extra));
    std::fs::remove_dir_all(&dir).unwrap();
    out
}

#[test]
fn edge_tls_and_proxy_protocol_are_checked_at_load() {
    // A PROXY header is believed only from listed balancers: none listed is an error.
    let e = err_proxy(&[("STREAMGATE__SERVER__PROXY_PROTOCOL", "true")]);
    assert!(
        e.contains("server.proxy-protocol") && e.contains("server.trusted-proxies"),
        "{e}"
    );
    let c = load_proxy(
        &asset("proxy.toml"),
        &with(&[
            ("STREAMGATE__SERVER__PROXY_PROTOCOL", "true"),
            ("STREAMGATE__SERVER__TRUSTED_PROXIES", "[\"10.0.0.0/8\"]"),
        ]),
    )
    .unwrap();
    assert!(c.trusted_proxies.trusts("10.2.3.4".parse().unwrap()));
    let e = err_proxy(&[(
        "STREAMGATE__SERVER__TLS",
        "{ listen = \"127.0.0.1:8443\", proxy-protocol = true, certificates = [{ cert = \"Cargo.toml\", key = \"Cargo.toml\" }] }",
    )]);
    assert!(e.contains("server.tls.proxy-protocol"), "{e}");

    // The TLS listener needs its own address and readable certificate files.
    let e = err_proxy(&[(
        "STREAMGATE__SERVER__TLS",
        "{ listen = \"127.0.0.1:8080\", certificates = [{ cert = \"Cargo.toml\", key = \"Cargo.toml\" }] }",
    )]);
    assert!(e.contains("server.tls.listen") && e.contains("8080"), "{e}");
    let e = err_proxy(&[(
        "STREAMGATE__SERVER__TLS",
        "{ listen = \"127.0.0.1:8443\", certificates = [] }",
    )]);
    assert!(e.contains("server.tls.certificates"), "{e}");
    let e = err_proxy(&[(
        "STREAMGATE__SERVER__TLS",
        "{ listen = \"127.0.0.1:8443\", certificates = [{ cert = \"/nonexistent/edge.pem\", key = \"Cargo.toml\" }] }",
    )]);
    assert!(
        e.contains("server.tls.certificates[0].cert") && e.contains("/nonexistent/edge.pem"),
        "{e}"
    );
    let e = err_proxy(&[(
        "STREAMGATE__SERVER__TLS",
        "{ listen = \"127.0.0.1:8443\", certificates = [{ cert = \"Cargo.toml\", key = \"Cargo.toml\" }], reload-interval = \"soon\" }",
    )]);
    assert!(e.contains("reload-interval") || e.contains("soon"), "{e}");
}
