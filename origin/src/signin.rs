//! Wallet sign-in and sessions at origin: nonces, SIWE and SIWS verification (the checks live
//! in `streamgate-auth`), session JWTs with the JWKS edges verify them with, logout
//! (revocation), and the [`Authed`] extractor that guards creator routes.
//!
//! ```text
//!  POST /v1/auth/nonce ─► Redis sg:nonce:{n} (TTL)
//!  POST /v1/auth/siwe|siws ─► rate limit ─► parse + fields + signature (auth crate)
//!                          ─► SIWE by a contract wallet: EIP-1271/6492 over RPC (contract_wallet)
//!                          ─► GETDEL nonce (single use) ─► session JWT (EdDSA, kid)
//!  GET /.well-known/jwks.json ─► public keys of every live session key
//!  POST /v1/auth/logout ─► sg:revoked:{jti} until exp ─► PUBLISH sg:invalidate
//! ```

use std::{net::SocketAddr, time::Duration};

use axum::{
    Json,
    extract::{ConnectInfo, FromRequestParts, State},
    http::{HeaderMap, HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use redis::AsyncCommands;
use serde::Deserialize;
use serde_json::json;
use streamgate_auth::{
    SessionClaims, SessionError, SessionKeys, SessionVerifier, SignInError, SignInRules,
    SolanaCluster, VerifiedSignIn, verify_siwe, verify_siws,
};
use streamgate_config::{
    AuthConfig,
    contract::{INVALIDATE_CHANNEL, Invalidation, invalidation_log, revoked_session_key},
};
use streamgate_entitlements::KnownChains;

use crate::{
    AppError, AppState, StartError, contract_wallet::ContractWallets, error::AppResult,
    metrics::METRICS, nonce, ratelimit,
};

/// Sign-in rules and session keys, built once from `[auth]`.
pub(crate) struct Auth {
    pub(crate) cfg: AuthConfig,
    rules: SignInRules,
    keys: SessionKeys,
    verifier: SessionVerifier,
    /// RPC endpoints per chain for contract-wallet (EIP-1271/6492) sign-in.
    contract_wallets: ContractWallets,
    /// The chains content policies may name: those accepted for sign-in (`eip155:{id}` for
    /// each of `evm-chain-ids`, `solana:{name}` for each of `solana-chains`).
    pub(crate) policy_chains: KnownChains,
}

impl Auth {
    /// Builds the rules and keys; fails start-up on anything unusable.
    pub(crate) fn from_conf(cfg: &AuthConfig) -> Result<Self, StartError> {
        let bad = |e: &dyn std::fmt::Display| StartError::Auth(e.to_string());
        let mut clusters = Vec::new();
        for name in &cfg.solana_chains {
            clusters.push(match name.as_str() {
                "mainnet" => SolanaCluster::mainnet(),
                "devnet" => SolanaCluster::devnet(),
                "testnet" => SolanaCluster::testnet(),
                other => SolanaCluster::new(other, other).map_err(|e| bad(&e))?,
            });
        }
        let rules = SignInRules::new(cfg.domain.clone(), cfg.allowed_uris.clone())
            .map_err(|e| bad(&e))?
            .with_chain_ids(cfg.evm_chain_ids.clone())
            .with_solana_clusters(clusters)
            .with_max_skew(cfg.max_clock_skew)
            .with_max_age(cfg.max_message_age);
        let hex_keys: Vec<(String, String)> = cfg
            .keys
            .iter()
            .map(|(kid, s)| (kid.clone(), s.expose().to_owned()))
            .collect();
        let keys = SessionKeys::from_hex(&hex_keys, &cfg.signing_key, &cfg.issuer, &cfg.audience)
            .map_err(|e| bad(&e))?;
        let verifier = keys.verifier().with_skew(cfg.max_clock_skew);
        Ok(Self {
            cfg: cfg.clone(),
            rules,
            keys,
            verifier,
            contract_wallets: ContractWallets::from_conf(cfg)?,
            policy_chains: policy_chains(cfg).map_err(|e| bad(&e))?,
        })
    }
}

/// The chains policies may name. Sign-in chains, deliberately: a typo'd chain id in a policy
/// is refused with a 400 naming the field instead of making the edge answer 503 later, and an
/// operator who gates content on another chain lists it in `auth.evm-chain-ids` (harmless: an
/// EVM account is the same on every chain, and edges read whichever chain a rule names).
fn policy_chains(cfg: &AuthConfig) -> Result<KnownChains, streamgate_entitlements::PolicyError> {
    let evm = cfg.evm_chain_ids.iter().map(|id| format!("eip155:{id}"));
    let solana = cfg
        .solana_chains
        .iter()
        .map(|name| format!("solana:{name}"));
    KnownChains::parse(evm.chain(solana))
}

fn now() -> i64 {
    (crate::now_ms() / 1000) as i64
}

fn rfc3339(unix: i64) -> String {
    let t = std::time::UNIX_EPOCH + Duration::from_secs(unix.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// `POST /v1/auth/nonce` → `{"nonce", "expires_at"}`.
pub(crate) async fn issue_nonce(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> AppResult<Json<serde_json::Value>> {
    let auth = &app.auth;
    ratelimit::check(
        &app.redis,
        "nonce",
        crate::client_ip(&app, peer, &headers),
        auth.cfg.rate_limit.nonces_per_minute,
    )
    .await?;
    let n = nonce::issue(&app.redis, auth.cfg.nonce_ttl).await?;
    let exp = now() + auth.cfg.nonce_ttl.as_secs() as i64;
    Ok(Json(json!({ "nonce": n, "expires_at": rfc3339(exp) })))
}

/// Body of `POST /v1/auth/siwe`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SiweBody {
    message: String,
    signature: String,
}

/// Body of `POST /v1/auth/siws`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SiwsBody {
    message: String,
    signature: String,
    public_key: String,
}

/// Counts a refusal of `method` and turns it into its 401.
pub(crate) fn refused(method: &'static str, e: &SignInError) -> AppError {
    METRICS
        .sign_ins
        .with_label_values(&[method, e.code()])
        .inc();
    AppError::Unauthorized(e.code(), e.to_string())
}

type JsonBody<T> = Result<Json<T>, axum::extract::rejection::JsonRejection>;

/// What both sign-in endpoints do first: count the attempt against the client's rate limit,
/// then accept the JSON body (400 with serde's reason otherwise).
async fn admit<T>(
    app: &AppState,
    peer: SocketAddr,
    headers: &HeaderMap,
    body: JsonBody<T>,
) -> AppResult<T> {
    ratelimit::check(
        &app.redis,
        "sign_in",
        crate::client_ip(app, peer, headers),
        app.auth.cfg.rate_limit.sign_ins_per_minute,
    )
    .await?;
    let Json(b) = body.map_err(|e| AppError::BadRequest(e.body_text()))?;
    Ok(b)
}

/// `POST /v1/auth/siwe` → `{"token", "subject", "expires_at"}`.
pub(crate) async fn siwe(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: JsonBody<SiweBody>,
) -> AppResult<Json<serde_json::Value>> {
    let b = admit(&app, peer, &headers, body).await?;
    let auth = &app.auth;
    let now = now();
    match verify_siwe(&b.message, &b.signature, &auth.rules, now) {
        Ok(verified) => finish("siwe", &app, verified).await,
        // Not the address's EOA signature: the address may be a contract wallet, which only
        // the chain can answer for (EIP-1271/6492, see `contract_wallet`).
        Err(e) if e.may_be_contract_wallet() => {
            let check =
                streamgate_auth::prepare_contract_check(&b.message, &b.signature, &auth.rules, now)
                    .map_err(|e| refused("siwe", &e))?;
            // RPC calls cost; a message whose nonce is dead could never sign in anyway, so it
            // costs one Redis read here, not a round of calls (the nonce is consumed later).
            if !nonce::is_live(&app.redis, check.nonce()).await? {
                return Err(bad_nonce("siwe_1271"));
            }
            let verified = auth.contract_wallets.sign_in(check, &b.message, e).await?;
            finish("siwe_1271", &app, verified).await
        }
        Err(e) => Err(refused("siwe", &e)),
    }
}

/// `POST /v1/auth/siws` → `{"token", "subject", "expires_at"}`.
pub(crate) async fn siws(
    State(app): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: JsonBody<SiwsBody>,
) -> AppResult<Json<serde_json::Value>> {
    let b = admit(&app, peer, &headers, body).await?;
    let auth = &app.auth;
    let verified = verify_siws(&b.message, &b.signature, &b.public_key, &auth.rules, now())
        .map_err(|e| refused("siws", &e))?;
    finish("siws", &app, verified).await
}

/// Counts a refusal of `method` for a dead nonce and turns it into its 401.
fn bad_nonce(method: &'static str) -> AppError {
    METRICS
        .sign_ins
        .with_label_values(&[method, "bad_nonce"])
        .inc();
    AppError::Unauthorized(
        "bad_nonce",
        "nonce unknown, expired or already used; ask for a new one".into(),
    )
}

/// Consumes the nonce (last, after every check that changes nothing) and issues the session,
/// never outliving the message's own expiration time.
async fn finish(
    method: &'static str,
    app: &AppState,
    v: VerifiedSignIn,
) -> AppResult<Json<serde_json::Value>> {
    if !nonce::consume(&app.redis, &v.nonce).await? {
        return Err(bad_nonce(method));
    }
    let now = now();
    let mut ttl = app.auth.cfg.session_ttl;
    if let Some(exp) = v.expires_at {
        ttl = ttl.min(Duration::from_secs((exp - now).max(1) as u64));
    }
    let issued = app.auth.keys.issue(&v.subject, ttl, now);
    METRICS.sign_ins.with_label_values(&[method, "ok"]).inc();
    tracing::info!(method, jti = %issued.claims.jti, "signed in");
    Ok(Json(json!({
        "token": issued.token,
        "subject": issued.claims.sub,
        "expires_at": rfc3339(issued.claims.exp),
    })))
}

/// `GET /.well-known/jwks.json`.
pub(crate) async fn jwks(State(app): State<AppState>) -> Response {
    let mut resp = Json(app.auth.keys.jwks()).into_response();
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    resp
}

/// `POST /v1/auth/logout`: revokes the presented session until its expiry, everywhere.
pub(crate) async fn logout(
    State(app): State<AppState>,
    Authed(claims): Authed,
) -> AppResult<StatusCode> {
    let ttl = (claims.exp - now()).max(1) as u64;
    let mut con = app.redis.clone();
    let _: () = con.set_ex(revoked_session_key(&claims.jti), 1, ttl).await?;
    app.auth.verifier.forget(&claims.jti);
    let msg = Invalidation::SessionRevoked {
        jti: claims.jti.clone(),
        exp: claims.exp,
    };
    publish(&app, &msg).await?;
    tracing::info!(jti = %claims.jti, "session revoked");
    Ok(StatusCode::NO_CONTENT)
}

/// Publishes an invalidation for edges.
pub(crate) async fn publish(app: &AppState, msg: &Invalidation) -> AppResult<()> {
    let json = serde_json::to_string(msg)
        .map_err(|e| AppError::Internal(format!("serialize invalidation: {e}")))?;
    let mut con = app.redis.clone();
    // Numbered and logged with the message, so an edge that was away can replay what it missed.
    let _: i64 = redis::Script::new(invalidation_log::PUBLISH_SCRIPT)
        .key(invalidation_log::STATE_KEY)
        .key(invalidation_log::LOG_KEY)
        .arg(json)
        .arg(invalidation_log::LOG_LEN)
        .arg(INVALIDATE_CHANNEL)
        .invoke_async(&mut con)
        .await?;
    Ok(())
}

/// A request carrying a valid, unrevoked session: `Authorization: Bearer <jwt>`.
pub(crate) struct Authed(pub(crate) SessionClaims);

impl FromRequestParts<AppState> for Authed {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, AppError> {
        let raw = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                AppError::Unauthorized(
                    "no_session",
                    "sign in first: Authorization: Bearer <session token>".into(),
                )
            })?;
        session(app, raw).await.map(Authed)
    }
}

/// A request that may carry a session: `None` without an `Authorization` header; a header that
/// is there but refused is a 401, never silently anonymous.
pub(crate) struct MaybeAuthed(pub(crate) Option<SessionClaims>);

impl FromRequestParts<AppState> for MaybeAuthed {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, AppError> {
        match parts.headers.get(header::AUTHORIZATION) {
            None => Ok(MaybeAuthed(None)),
            Some(v) => {
                let raw = v.to_str().map_err(|_| {
                    AppError::Unauthorized("no_session", "Authorization is not ASCII".into())
                })?;
                session(app, raw).await.map(|c| MaybeAuthed(Some(c)))
            }
        }
    }
}

/// Verifies an `Authorization` value (`Bearer <jwt>`) and that the session is not revoked.
async fn session(app: &AppState, raw: &str) -> Result<SessionClaims, AppError> {
    let token = raw
        .strip_prefix("Bearer ")
        .or_else(|| raw.strip_prefix("bearer "))
        .map(str::trim)
        .ok_or_else(|| {
            AppError::Unauthorized("no_session", "Authorization must be a Bearer token".into())
        })?;
    let claims = app
        .auth
        .verifier
        .verify(token, now())
        .map_err(|e: SessionError| AppError::Unauthorized(e.code(), e.to_string()))?;
    let mut con = app.redis.clone();
    let revoked: bool = con.exists(revoked_session_key(&claims.jti)).await?;
    if revoked {
        return Err(AppError::Unauthorized("revoked", "session revoked".into()));
    }
    Ok(claims)
}
