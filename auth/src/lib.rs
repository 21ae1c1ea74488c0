//! StreamGate's auth library: what the edge and origin need to decide who may fetch what,
//! with no HTTP framework inside (callers adapt it).
//!
//! # Layout
//! - [`playback`]: playback tokens, carried in the URL path (`/p/{token}/{id}/…`), minted by
//!   the edge after an entitlement check and verified on every request: HMAC-SHA256 under a
//!   rotating [`KeySet`], binding content id, expiry, a subject hash and optionally the client's
//!   IP prefix. Verification is a decode, one HMAC and a constant-time compare: about a
//!   microsecond, no I/O, no shared mutable state.
//!
//! Wallet sign-in (SIWE/SIWS), session JWTs and entitlement policies join this crate with their
//! own modules.
//!
//! # Example
//! ```
//! use streamgate_auth::playback::{Grant, KeySet};
//! let keys = KeySet::new(vec![("k1".into(), vec![7u8; 32])], "k1").unwrap();
//! let grant = Grant { content_id: "c1", subject: "eip155:1:0xabc", expires_at: 2_000_000_000, client_ip: None };
//! let token = keys.mint(&grant);
//! let ok = keys.verify(&token, "c1", None, 1_900_000_000).unwrap();
//! assert_eq!(ok.expires_at, 2_000_000_000);
//! assert!(keys.verify(&token, "c2", None, 1_900_000_000).is_err());
//! ```

pub mod playback;

pub use playback::{Grant, IpBinding, KeySet, KeySetError, TokenError, Verified};
