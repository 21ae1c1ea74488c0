//! `GET /v1/playback/{id}`: the playback grant. A signed-in viewer asks; the edge verifies the
//! session offline (origin's JWKS), fetches the content's policy from origin (cached), checks
//! the viewer's entitlement (entitlement cache over the chains) and mints a playback token.
//!
//! ```text
//! Bearer / cookie ─► RemoteVerifier (JWKS, no I/O per request) ─► 401
//!                 ─► policy: origin GET /v1/contents/{id} (moka, policy-ttl) ─► 404
//!                 ─► owner? yes ─► allowed (decided here, never cached: the verdict cache is
//!                    shared by every content with the same policy)
//!                 ─► EntitlementCache (L1 moka → L2 Redis → evaluate over the chains) ─► 403 / 503
//!                 ─► mint /p/{token}/{id}/… ─► 200 {"hls","dash","token","expires_at"} or 302
//!                    (+ "encryption","license" when the package is encrypted)
//! ```

use std::{net::IpAddr, sync::Arc, time::Duration};

use moka::future::Cache;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::Deserialize;
use serde_json::Value;
use streamgate_auth::{JwksFuture, JwksSource, RemoteVerifier, SessionError};
use streamgate_config::{
    EntitlementsConfig, SessionSection,
    contract::{Encryption, keys, layout, paths},
};
use streamgate_entitlements::{
    AlloyEvmReader, BlockChoice, CacheConfig, EntitlementCache, EvmChains, EvmReader, Policy,
    SolanaChain, SolanaClusters, SolanaReader, SolanaRpcReader, Tier, evaluate, is_owner,
};
use tokio::sync::OnceCell;

use crate::{
    metrics::EdgeMetrics,
    reply,
    route::Playlist,
    tokens::{Minted, TokenPolicy},
};
use pingora::proxy::Session;

/// Why the grant service could not be built from `[session]` and `[entitlements]`.
#[derive(Debug, thiserror::Error)]
pub enum GrantsError {
    /// The HTTP client (JWKS, policies) cannot be built.
    #[error("http client: {0}")]
    Http(#[source] reqwest::Error),
    /// `entitlements.redis-url` is not a Redis URL.
    #[error("entitlements.redis-url: {0}")]
    RedisUrl(#[source] redis::RedisError),
    /// `[entitlements.evm-rpc]` is unusable.
    #[error("entitlements.evm-rpc: {0}")]
    Evm(#[source] streamgate_entitlements::EvmConfigError),
    /// A key of `[entitlements.solana-rpc]` is not a cluster.
    #[error("entitlements.solana-rpc.{name}: {message}")]
    SolanaCluster {
        /// The key.
        name: String,
        /// Why.
        message: String,
    },
    /// `[entitlements.solana-rpc]` is unusable.
    #[error("entitlements.solana-rpc: {0}")]
    Solana(#[source] streamgate_entitlements::SolanaConfigError),
}

/// Why a grant was refused; each maps to a status and a stable `error` code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GrantError {
    /// No session presented.
    #[error("sign in first: send Authorization: Bearer <session token>")]
    NoSession,
    /// The session token was refused.
    #[error("session refused: {0}")]
    BadSession(&'static str),
    /// Unknown content, or not ready.
    #[error("no such content, or not ready")]
    UnknownContent,
    /// The policy does not allow this viewer.
    #[error("not entitled: {0}")]
    NotEntitled(String),
    /// The entitlement could not be decided (chains down, nothing cached): fail closed.
    #[error("entitlement undecidable, retry later: {0}")]
    Undecidable(String),
    /// Origin (policy or JWKS) could not be reached.
    #[error("origin unavailable: {0}")]
    Origin(String),
    /// Minting failed (a configuration problem).
    #[error("cannot mint: {0}")]
    Mint(String),
}

impl GrantError {
    /// HTTP status and `error` code of the JSON body.
    pub(crate) fn status_code(&self) -> (u16, &'static str) {
        match self {
            GrantError::NoSession => (401, "no_session"),
            GrantError::BadSession(code) => (401, code),
            GrantError::UnknownContent => (404, "not_found"),
            GrantError::NotEntitled(_) => (403, "not_entitled"),
            GrantError::Undecidable(_) => (503, "entitlement_unavailable"),
            GrantError::Origin(_) => (503, "origin_unavailable"),
            GrantError::Mint(_) => (500, "internal"),
        }
    }
}

/// How an entitlement was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Basis {
    /// The viewer owns the content: decided from the content record, outside every cache.
    Owner,
    /// The policy, through the entitlement cache (which tier answered).
    Policy(Tier),
}

/// A routed grant request (`GET /v1/playback/{id}`).
#[derive(Debug, Clone)]
pub(crate) struct GrantRequest {
    /// The content.
    pub(crate) content_id: String,
    /// `?redirect=hls|dash`.
    pub(crate) redirect: Option<Playlist>,
    /// `?mode=cookie`.
    pub(crate) cookie_mode: bool,
}

/// A granted playback.
#[derive(Debug, Clone)]
pub(crate) struct Granted {
    pub(crate) minted: Minted,
    pub(crate) basis: Basis,
    /// How the content's package is encrypted (the grant then names the license URL).
    pub(crate) encryption: Encryption,
}

/// What origin says about a content (the part of `GET /v1/contents/{id}` a grant needs).
#[derive(Debug, Clone, Deserialize)]
struct ContentInfo {
    status: String,
    owner: Option<String>,
    policy: Value,
    #[serde(default)]
    encryption: Encryption,
}

/// A content's parsed policy, cached for `policy-ttl`.
struct ContentPolicy {
    owner: Option<String>,
    encryption: Encryption,
    policy: Policy,
    hash: [u8; 32],
}

/// JWKS over HTTP from origin.
struct HttpJwks {
    http: reqwest::Client,
    url: String,
}

impl JwksSource for HttpJwks {
    fn fetch(&self) -> JwksFuture<'_> {
        Box::pin(async move {
            let r = self
                .http
                .get(&self.url)
                .send()
                .await
                .map_err(|e| e.to_string())?;
            if !r.status().is_success() {
                return Err(format!("jwks: status {}", r.status()));
            }
            r.json().await.map_err(|e| e.to_string())
        })
    }
}

/// Everything the grant endpoint needs. Built at start-up without I/O; the JWKS is fetched on
/// the first grant and refetched on unknown `kid`s.
pub(crate) struct Grants {
    session: SessionSection,
    verifier: OnceCell<RemoteVerifier<HttpJwks>>,
    http: reqwest::Client,
    origin_base: String,
    /// Presented to origin's internal listener with every content lookup.
    edge_key: Option<streamgate_config::Secret>,
    policies: Cache<String, Arc<ContentPolicy>>,
    /// The entitlement cache and the chain reader, built on first use: their connections
    /// must be made inside the worker runtime, which does not exist yet at start-up.
    checker: OnceCell<Checker>,
    cache_cfg: CacheConfig,
    redis: Option<redis::Client>,
    chains: EvmChains,
    /// Solana clusters; none configured: Solana rules cannot be met (fail closed).
    clusters: Option<SolanaClusters>,
    tokens: Arc<TokenPolicy>,
    metrics: Arc<EdgeMetrics>,
    /// Subject of each granted token's subject hash (playback tokens carry only the hash),
    /// kept here and in Redis (`sg:subj:{hash}`) so playlist re-checks work on every edge.
    subjects: Cache<[u8; 8], String>,
    /// Sessions revoked (logout), by `jti`, each kept until its token's expiry; consulted on
    /// every verification, filled from `sg:invalidate` and `sg:revoked:*`.
    revoked: Arc<moka::sync::Cache<String, i64>>,
}

/// Keeps a revoked `jti` until its token expires (at most a day: sessions live shorter).
struct UntilExp;

impl moka::Expiry<String, i64> for UntilExp {
    fn expire_after_create(
        &self,
        _key: &String,
        exp: &i64,
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        let left = exp
            .saturating_sub(crate::clock::unix_now())
            .clamp(1, 86_400);
        Some(Duration::from_secs(left as u64))
    }
}

/// The entitlement cache and the reader behind it.
struct Checker {
    cache: EntitlementCache,
    evm: Arc<dyn EvmReader>,
    solana: Option<Arc<dyn SolanaReader>>,
    /// The shared Redis, also used to find a token's subject on any edge.
    l2: Option<ConnectionManager>,
}

impl Grants {
    /// Builds the grant service from `[session]` and `[entitlements]`.
    pub(crate) fn from_conf(
        session: &SessionSection,
        ent: &EntitlementsConfig,
        origin_base: String,
        edge_key: Option<streamgate_config::Secret>,
        tokens: Arc<TokenPolicy>,
        metrics: Arc<EdgeMetrics>,
    ) -> Result<Self, GrantsError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(GrantsError::Http)?;
        let redis = ent
            .redis_url
            .as_deref()
            .map(redis::Client::open)
            .transpose()
            .map_err(GrantsError::RedisUrl)?;
        let chains = EvmChains {
            chains: ent
                .evm_rpc
                .iter()
                .map(|(id, urls)| (*id, urls.iter().map(|u| u.expose().to_owned()).collect()))
                .collect(),
            timeout: ent.rpc_timeout,
            block: if ent.confirmations == 0 {
                BlockChoice::Latest
            } else {
                BlockChoice::LatestMinus(ent.confirmations)
            },
        };
        // Validate now (fail at start-up), build again on first use inside the runtime.
        AlloyEvmReader::new(chains.clone()).map_err(GrantsError::Evm)?;
        let clusters = if ent.solana_rpc.is_empty() {
            None
        } else {
            let mut map = std::collections::HashMap::new();
            for (name, urls) in &ent.solana_rpc {
                let chain = SolanaChain::parse(name).map_err(|e| GrantsError::SolanaCluster {
                    name: name.clone(),
                    message: e.to_string(),
                })?;
                map.insert(chain, urls.iter().map(|u| u.expose().to_owned()).collect());
            }
            let clusters = SolanaClusters {
                clusters: map,
                timeout: ent.rpc_timeout,
            };
            SolanaRpcReader::new(clusters.clone()).map_err(GrantsError::Solana)?;
            Some(clusters)
        };
        Ok(Self {
            session: session.clone(),
            verifier: OnceCell::new(),
            http,
            origin_base,
            edge_key,
            policies: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(ent.policy_ttl)
                .build(),
            checker: OnceCell::new(),
            cache_cfg: CacheConfig {
                ttl_allow: ent.ttl_allow,
                ttl_deny: ent.ttl_deny,
                max_stale: ent.max_stale,
                capacity: ent.capacity,
            },
            redis,
            chains,
            clusters,
            subjects: Cache::builder()
                .max_capacity(1_000_000)
                .time_to_live(tokens.max_ttl())
                .build(),
            tokens,
            metrics,
            revoked: Arc::new(
                moka::sync::Cache::builder()
                    .max_capacity(1_000_000)
                    .expire_after(UntilExp)
                    .build(),
            ),
        })
    }

    /// Forgets a content's cached policy (its policy changed, or it was deleted). Verdicts
    /// need no purge: they are keyed by the policy's hash, so a new policy is checked afresh.
    pub(crate) async fn forget_content(&self, content_id: &str) {
        self.policies.invalidate(content_id).await;
    }

    /// Forgets every cached policy (after a gap in the invalidation feed).
    pub(crate) fn forget_all_contents(&self) {
        self.policies.invalidate_all();
    }

    /// Loads origin's JWKS (the session verifier) now; `true` once it is loaded.
    pub(crate) async fn warm_up(&self) -> bool {
        match self.verifier().await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(cause = %e, "jwks not loaded yet");
                false
            }
        }
    }

    /// Whether origin's JWKS is loaded.
    pub(crate) fn jwks_loaded(&self) -> bool {
        self.verifier.initialized()
    }

    /// Refuses the session `jti` from now until `exp`.
    pub(crate) fn revoke_session(&self, jti: &str, exp: i64) {
        self.revoked.insert(jti.to_owned(), exp);
        if let Some(v) = self.verifier.get() {
            v.verifier().forget(jti);
        }
    }

    /// The session cookie name.
    pub(crate) fn cookie_name(&self) -> &str {
        &self.session.cookie
    }

    async fn checker(&self) -> Result<&Checker, GrantError> {
        self.checker
            .get_or_try_init(|| async {
                let l2 = match &self.redis {
                    Some(client) => {
                        let cfg = ConnectionManagerConfig::new()
                            .set_connection_timeout(Some(Duration::from_millis(500)))
                            .set_response_timeout(Some(Duration::from_millis(500)))
                            .set_number_of_retries(1);
                        // Lazy: no connection is made here, so a Redis outage costs nothing now.
                        ConnectionManager::new_lazy_with_config(client.clone(), cfg)
                            .map_err(|e| tracing::warn!(cause = %e, "entitlement l2 disabled"))
                            .ok()
                    }
                    None => None,
                };
                let evm = AlloyEvmReader::new(self.chains.clone())
                    .map_err(|e| GrantError::Undecidable(e.to_string()))?;
                let solana = match &self.clusters {
                    Some(c) => Some(Arc::new(
                        SolanaRpcReader::new(c.clone())
                            .map_err(|e| GrantError::Undecidable(e.to_string()))?,
                    ) as Arc<dyn SolanaReader>),
                    None => None,
                };
                Ok(Checker {
                    cache: EntitlementCache::new(self.cache_cfg, l2.clone()),
                    evm: Arc::new(evm),
                    solana,
                    l2,
                })
            })
            .await
    }

    async fn verifier(&self) -> Result<&RemoteVerifier<HttpJwks>, GrantError> {
        self.verifier
            .get_or_try_init(|| async {
                let source = HttpJwks {
                    http: self.http.clone(),
                    url: self.session.jwks_url.clone(),
                };
                let revoked = self.revoked.clone();
                let v = RemoteVerifier::connect(
                    source,
                    &self.session.issuer,
                    &self.session.audience,
                    self.session.jwks_min_refresh,
                )
                .await
                .map_err(|e| GrantError::Origin(e.to_string()))?;
                Ok(v.with_revocation(Arc::new(move |jti: &str| revoked.contains_key(jti))))
            })
            .await
    }

    async fn content(&self, id: &str) -> Result<Arc<ContentPolicy>, GrantError> {
        if let Some(p) = self.policies.get(id).await {
            return Ok(p);
        }
        let url = format!("{}/v1/contents/{id}", self.origin_base);
        let mut req = self.http.get(&url);
        if let Some(key) = &self.edge_key {
            req = req.header(streamgate_config::contract::EDGE_KEY_HEADER, key.expose());
        }
        let r = req
            .send()
            .await
            .map_err(|e| GrantError::Origin(e.to_string()))?;
        match r.status().as_u16() {
            200 => {}
            404 | 400 => return Err(GrantError::UnknownContent),
            s => return Err(GrantError::Origin(format!("contents: status {s}"))),
        }
        let info: ContentInfo = r
            .json()
            .await
            .map_err(|e| GrantError::Origin(e.to_string()))?;
        if info.status != "ready" {
            return Err(GrantError::UnknownContent);
        }
        // Origin validated the policy when it was set; a policy this edge cannot read denies.
        let policy = Policy::parse(&info.policy)
            .map_err(|e| GrantError::NotEntitled(format!("unreadable policy: {e}")))?;
        let cp = Arc::new(ContentPolicy {
            owner: info.owner,
            encryption: info.encryption,
            hash: policy.hash(),
            policy,
        });
        self.policies.insert(id.to_owned(), cp.clone()).await;
        Ok(cp)
    }

    /// Whether `subject` may watch `content`: the owner always may (decided here, from the
    /// content record: the verdict cache below is keyed by (subject, policy hash) and shared
    /// by every content with that policy, so an owner's right must never enter it); anyone
    /// else by the policy, through the entitlement cache.
    async fn entitled(
        &self,
        content: &Arc<ContentPolicy>,
        subject: &str,
        now: i64,
    ) -> Result<Basis, GrantError> {
        if is_owner(subject, content.owner.as_deref()) {
            return Ok(Basis::Owner);
        }
        let checker = self.checker().await?;
        let check = {
            let (content, evm) = (content.clone(), checker.evm.clone());
            let solana = checker.solana.clone();
            let (subject, metrics) = (subject.to_owned(), self.metrics.clone());
            async move {
                metrics.entitlement_check();
                evaluate(&content.policy, &subject, evm.as_ref(), solana.as_deref())
                    .await
                    .map(|d| (d.allowed, d.reason))
            }
        };
        let cached = checker
            .cache
            .decide(subject, &content.hash, now, check)
            .await
            .map_err(|e| GrantError::Undecidable(e.0))?;
        if cached.verdict.allowed {
            Ok(Basis::Policy(cached.tier))
        } else {
            Err(GrantError::NotEntitled(cached.verdict.reason))
        }
    }

    async fn remember_subject(&self, subject: &str) {
        let hash = streamgate_auth::playback::subject_hash(subject);
        self.subjects.insert(hash, subject.to_owned()).await;
        if let Ok(checker) = self.checker().await
            && let Some(mut con) = checker.l2.clone()
        {
            let key = keys::viewer(&hex::encode(hash));
            let ttl = self.tokens.max_ttl().as_secs().max(1);
            let r: redis::RedisResult<()> =
                redis::AsyncCommands::set_ex(&mut con, key, subject, ttl).await;
            if let Err(e) = r {
                tracing::debug!(cause = %e, "subject not shared in l2");
            }
        }
    }

    /// The subject behind a token's subject hash: this edge's memory, else the shared Redis.
    /// `Ok(None)`: nobody recorded it; `Err`: Redis could not be asked (fail closed).
    async fn subject_of(&self, hash: &[u8; 8]) -> Result<Option<String>, GrantError> {
        if let Some(s) = self.subjects.get(hash).await {
            return Ok(Some(s));
        }
        let Some(mut con) = self.checker().await?.l2.clone() else {
            return Ok(None);
        };
        let key = keys::viewer(&hex::encode(hash));
        let s: Option<String> = redis::AsyncCommands::get(&mut con, key)
            .await
            .map_err(|e| GrantError::Undecidable(format!("viewer record unreadable: {e}")))?;
        if let Some(s) = &s {
            self.subjects.insert(*hash, s.clone()).await;
        }
        Ok(s)
    }

    /// Re-checks, for a playlist request with a valid token, that the token's viewer is still
    /// entitled (cached). Fails closed: a grant token whose viewer cannot be found is refused
    /// (403 `not_entitled`: ask for a new grant), and one whose record cannot be read (Redis
    /// down) gets 503. Operator tokens (`token mint`) were never bound to an entitlement and
    /// are not re-checked.
    pub(crate) async fn recheck(
        &self,
        content_id: &str,
        token: &streamgate_auth::Verified,
        now: i64,
    ) -> Result<(), GrantError> {
        if !token.entitlement_bound {
            return Ok(());
        }
        let Some(subject) = self.subject_of(&token.subject_hash).await? else {
            return Err(GrantError::NotEntitled(
                "this playback grant's viewer is unknown here; ask for a new grant".into(),
            ));
        };
        let content = self.content(content_id).await?;
        self.entitled(&content, &subject, now).await.map(drop)
    }

    /// Grants playback of `content_id` to the holder of `session_token`, or says why not.
    pub(crate) async fn grant(
        &self,
        content_id: &str,
        session_token: Option<&str>,
        client_ip: Option<IpAddr>,
        now: i64,
    ) -> Result<Granted, GrantError> {
        let token = session_token.ok_or(GrantError::NoSession)?;
        let claims = self
            .verifier()
            .await?
            .verify(token, now)
            .await
            .map_err(|e: SessionError| GrantError::BadSession(e.code()))?;
        let content = self.content(content_id).await?;
        let subject = claims.sub.clone();
        let basis = self.entitled(&content, &subject, now).await?;
        let bind = if self.tokens.bind_ip() {
            client_ip
        } else {
            None
        };
        let minted = self
            .tokens
            .mint(content_id, &subject, None, bind, now.max(0) as u64, true)
            .map_err(|e| GrantError::Mint(e.to_string()))?;
        self.remember_subject(&subject).await;
        Ok(Granted {
            minted,
            basis,
            encryption: content.encryption,
        })
    }
}

impl Grants {
    /// Answers a grant request on `session`: the grant JSON, a 302 to a tokenized manifest with
    /// `?redirect=`, the playback cookie with `?mode=cookie`, or the refusal as JSON.
    pub(crate) async fn answer(
        &self,
        session: &mut Session,
        request: &GrantRequest,
        client_ip: Option<IpAddr>,
        cors: &[(http::HeaderName, &str)],
        cross_site_cookie: bool,
    ) -> pingora::Result<()> {
        let content_id = request.content_id.as_str();
        let req = session.req_header();
        let token = session_token(req, self.cookie_name()).map(str::to_owned);
        match self
            .grant(
                content_id,
                token.as_deref(),
                client_ip,
                crate::clock::unix_now(),
            )
            .await
        {
            Ok(g) => {
                self.metrics.grant(basis_label(g.basis));
                let body = if request.cookie_mode {
                    GrantBody::cookie(content_id, &g.minted)
                } else {
                    GrantBody::new(content_id, &g.minted)
                }
                .encrypted(content_id, g.encryption, request.cookie_mode);
                let cookie = request
                    .cookie_mode
                    .then(|| play_cookie(content_id, &g.minted, cross_site_cookie));
                let mut extra: Vec<(http::HeaderName, &str)> = cors.to_vec();
                if let Some(c) = &cookie {
                    extra.push((http::header::SET_COOKIE, c.as_str()));
                }
                match request.redirect {
                    Some(playlist) => {
                        let location = match playlist {
                            Playlist::Hls => body.hls.clone(),
                            Playlist::Dash => body.dash.clone(),
                        };
                        let mut resp = reply::empty_header(http::StatusCode::FOUND, &extra)?;
                        resp.insert_header(http::header::LOCATION, location)?;
                        resp.insert_header(http::header::CONTENT_LENGTH, "0")?;
                        session.write_response_header(Box::new(resp), true).await
                    }
                    None => reply::send_json(session, http::StatusCode::OK, &body, &extra).await,
                }
            }
            Err(e) => {
                let (status, code) = e.status_code();
                self.metrics.grant(code);
                tracing::debug!(content_id, code, "grant refused");
                let message = e.to_string();
                let body = reply::ErrorBody::new(code, &message);
                let status = http::StatusCode::from_u16(status)
                    .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
                reply::send_json(session, status, &body, cors).await
            }
        }
    }
}

/// The JSON of a granted playback (docs/architecture.md, the API in README).
#[derive(Debug, serde::Serialize)]
pub(crate) struct GrantBody {
    pub(crate) hls: String,
    pub(crate) dash: String,
    token: String,
    expires_at: String,
    /// The package's encryption scheme; absent for clear content.
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption: Option<Encryption>,
    /// The ClearKey license URL (`POST`, W3C ClearKey JSON) of an encrypted content.
    #[serde(skip_serializing_if = "Option::is_none")]
    license: Option<String>,
}

impl GrantBody {
    pub(crate) fn new(content_id: &str, m: &Minted) -> Self {
        let exp = std::time::UNIX_EPOCH + Duration::from_secs(m.expires_at);
        Self {
            hls: paths::gated(&m.token, content_id, layout::HLS_MASTER),
            dash: paths::gated(&m.token, content_id, layout::DASH_MANIFEST),
            token: m.token.clone(),
            expires_at: humantime::format_rfc3339_seconds(exp).to_string(),
            encryption: None,
            license: None,
        }
    }

    /// Names the scheme and the license URL (token path, or `/c/{id}/` in cookie mode) when
    /// the content is encrypted.
    pub(crate) fn encrypted(mut self, content_id: &str, e: Encryption, cookie_mode: bool) -> Self {
        if e.is_encrypted() {
            self.encryption = Some(e);
            self.license = Some(if cookie_mode {
                paths::cookie_mode(content_id, layout::LICENSE)
            } else {
                paths::gated(&self.token, content_id, layout::LICENSE)
            });
        }
        self
    }
}

impl GrantBody {
    /// The body of a cookie-mode grant: token-free URLs under `/c/{id}/`.
    pub(crate) fn cookie(content_id: &str, m: &Minted) -> Self {
        let mut b = Self::new(content_id, m);
        b.hls = paths::cookie_mode(content_id, layout::HLS_MASTER);
        b.dash = paths::cookie_mode(content_id, layout::DASH_MANIFEST);
        b
    }
}

/// `Set-Cookie` value for a cookie-mode grant: scoped to `/c/{id}/`, `HttpOnly`, living as long
/// as the token.
pub(crate) fn play_cookie(content_id: &str, m: &Minted, cross_site: bool) -> String {
    let now = crate::clock::unix_now().max(0) as u64;
    let max_age = m.expires_at.saturating_sub(now);
    let same_site = if cross_site {
        "SameSite=None; Secure"
    } else {
        "SameSite=Lax"
    };
    format!(
        "{}={}; Path={}{content_id}/; Max-Age={max_age}; HttpOnly; {same_site}",
        paths::play_cookie(content_id),
        m.token,
        paths::COOKIE_PREFIX
    )
}

/// The playback token of `content_id` from the request's cookie, if any.
pub(crate) fn play_cookie_value<'a>(
    req: &'a pingora::http::RequestHeader,
    content_id: &str,
) -> Option<&'a str> {
    cookie_value(req, &paths::play_cookie(content_id))
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie_value<'a>(req: &'a pingora::http::RequestHeader, name: &str) -> Option<&'a str> {
    req.headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The `outcome` label of a granted request.
pub(crate) fn basis_label(b: Basis) -> &'static str {
    match b {
        Basis::Owner => "granted_owner",
        Basis::Policy(Tier::L1) => "granted_l1",
        Basis::Policy(Tier::L2) => "granted_l2",
        Basis::Policy(Tier::Checked) => "granted_checked",
        Basis::Policy(Tier::Stale) => "granted_stale",
    }
}

/// The session token of a request: `Authorization: Bearer …`, else the session cookie.
pub(crate) fn session_token<'a>(
    req: &'a pingora::http::RequestHeader,
    cookie: &str,
) -> Option<&'a str> {
    if let Some(v) = req
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        return v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .map(str::trim);
    }
    cookie_value(req, cookie)
}

/// Readiness: an edge that grants playback is ready once it holds origin's JWKS.
pub(crate) struct JwksReady(pub(crate) Arc<Grants>);

impl crate::health::ReadyCheck for JwksReady {
    fn ready(&self) -> Result<(), &'static str> {
        if self.0.jwks_loaded() {
            Ok(())
        } else {
            Err("jwks_not_loaded")
        }
    }
}

/// Start-up task: fetches the JWKS until it has it (then readiness flips to ready).
pub(crate) struct JwksWarmUp(pub(crate) Arc<Grants>);

#[async_trait::async_trait]
impl pingora::services::background::BackgroundService for JwksWarmUp {
    async fn start(&self, mut shutdown: pingora::server::ShutdownWatch) {
        loop {
            if self.0.warm_up().await {
                return;
            }
            tokio::select! {
                _ = shutdown.changed() => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }
}
