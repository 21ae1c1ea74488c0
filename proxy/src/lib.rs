//! StreamGate's edge: a [Pingora](https://github.com/cloudflare/pingora) server that checks the
//! playback token of every player request and serves the object from its cache tiers (moka,
//! Redis, parent edges) or origin. See docs/architecture.md ("Token model", "Cache tiers").
//!
//! # Routes (player port, `server.listen`)
//! - `GET|HEAD /p/{token}/{content_id}/{path}`: the object, fetched from origin's
//!   `/v/{content_id}/{path}` with the token removed; `x-cache` says which tier served it.
//!   A malformed path answers 400, a refused token 403, both with a JSON reason.
//! - `GET /v1/playback/{content_id}` (with `[session]` and `[entitlements]`): the playback
//!   grant — session verified offline, policy from origin, entitlement checked (cached), a
//!   playback token minted: `{"hls","dash","token","expires_at"}`, or 302 with `?redirect=`.
//! - `GET /healthz` (alive), `GET /readyz` (ready for traffic; 503 while draining).
//! - anything else: 404 JSON; other methods on known routes: 405 JSON.
//!
//! Prometheus metrics are served on `server.metrics-listen` at `/metrics`.
//!
//! # Layout
//! - `server`: [`build_server`] and [`run`], turning a [`ProxyConfig`] into a pingora `Server`.
//! - `admin`: the admin API (purge) on the metrics listener.
//! - `cache`: the object cache (moka L1 over Redis L2), its freshness rules and `x-cache`.
//! - `cors`: CORS headers and preflights for browser players.
//! - `ranges`: byte ranges from the cache (Pingora's, empty ranges made unsatisfiable).
//! - `route`: what a request asks for (health, ready, grant, a player's object by token or
//!   cookie, a child edge's object), read once from method and path.
//! - `edge`: the `ProxyHttp` implementation and its per-request context, hooks in phase order
//!   (the request path is drawn there); `clock`: the one clock.
//! - `token_gate`: parsing `/p/…` paths and checking tokens (hot path, no allocation).
//! - `tokens`: [`TokenPolicy`], the key set and minting rules of `[tokens]`.
//! - `grant`: the playback-grant service (sessions, policies, entitlement cache).
//! - `invalidate`: the `sg:invalidate` subscriber (policy changes, deletions, logouts).
//! - `upstream`: the origin peer, the upstream rewrite and the cache key.
//! - `metrics`, `health`, `reply`: metric families, readiness conditions, JSON answers.
//! - `tls`: certificates by SNI for `[server.tls]`; `reload`: `SIGHUP` and certificate-file
//!   reloads (token keys, certificates) without a restart.
//! - `proxy_protocol`: PROXY v1/v2 headers from trusted load balancers (the viewer's address).
//! - `trace`: W3C `traceparent` to origin and parents; the access log is in `edge`.
//! - `fuzz` (hidden): the parsers of untrusted bytes with their invariants, for `fuzz/`.
//!
//! The binary (`src/main.rs`) adds the command line: `--config`, `--check-config` and
//! `token mint`. Integration tests that run a real edge against a mock origin are in
//! `proxy/tests/edge.rs`.
//!
//! [`ProxyConfig`]: streamgate_config::ProxyConfig

mod admin;
mod cache;
mod clock;
mod cors;
mod edge;
#[doc(hidden)]
pub mod fuzz;
mod grant;
mod health;
mod invalidate;
mod license;
mod manifest;
mod metrics;
mod proxy_protocol;
mod ranges;
mod reload;
mod reply;
mod route;
mod server;
mod shed;
mod tls;
mod token_gate;
mod tokens;
mod trace;
mod upstream;

pub use cache::CacheError;
pub use grant::GrantsError;
pub use manifest::{ManifestKind, ManifestRewriter, rewrite_all};
pub use server::{RunOptions, StartError, build_server, check, run};
pub use tokens::{KeyError, MintError, Minted, TokenPolicy};
pub use upstream::UpstreamError;

/// The cache key of an object and the hash the tiers store it under (for benchmarks).
#[doc(hidden)]
pub fn object_cache_hash(content_id: &str, path: &str) -> [u8; 16] {
    use pingora::cache::key::CacheHashKey;
    upstream::cache_key(content_id, path).combined_bin()
}
