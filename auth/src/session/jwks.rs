//! Keeping a [`SessionVerifier`] in step with origin's JWKS: fetched once at start, and again
//! when a token names a `kid` the verifier does not know (origin rotated keys), at most once
//! per `min_refresh` so a flood of forged `kid`s cannot turn into a flood of fetches.
//!
//! Refreshes are single-flight: one fetch at a time, and every caller that asked while it was
//! under way waits for it and retries with its keys (a burst of tokens under a freshly rotated
//! key costs one fetch, and none of them is refused for arriving a moment too early).
//!
//! The fetching itself is the caller's ([`JwksSource`]): this crate does no network I/O, and
//! the hot path ([`RemoteVerifier::verify`] with a known `kid`) never awaits anything.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use serde_json::Value;

use super::{RevocationCheck, SessionClaims, SessionError, SessionKeyError, SessionVerifier};

/// A boxed future of a fetched JWKS document.
pub type JwksFuture<'a> = Pin<Box<dyn Future<Output = Result<Value, String>> + Send + 'a>>;

/// Where the JWKS comes from (origin's `/.well-known/jwks.json` over the caller's HTTP client).
pub trait JwksSource: Send + Sync {
    /// Fetches the current document.
    fn fetch(&self) -> JwksFuture<'_>;
}

/// Why the JWKS could not be (re)loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The fetch failed.
    #[error("jwks fetch failed: {0}")]
    Fetch(String),
    /// The document has no usable key.
    #[error("jwks rejected: {0}")]
    Keys(#[from] SessionKeyError),
}

/// A session verifier that refreshes its keys from a [`JwksSource`].
pub struct RemoteVerifier<S> {
    verifier: SessionVerifier,
    source: S,
    min_refresh: Duration,
    /// When the last fetch was started; guards the refresh rate.
    last_fetch: Mutex<Instant>,
    /// Held for the length of a fetch: refreshes run one at a time.
    fetching: futures_util::lock::Mutex<()>,
    /// Successful refreshes so far: a caller that waited for someone else's fetch sees it move.
    generation: AtomicU64,
}

impl<S: JwksSource> RemoteVerifier<S> {
    /// Fetches the JWKS and builds the verifier for tokens of `iss` and `aud`.
    ///
    /// # Errors
    /// The first fetch fails or yields no usable key.
    pub async fn connect(
        source: S,
        iss: &str,
        aud: &str,
        min_refresh: Duration,
    ) -> Result<Self, JwksError> {
        let doc = source.fetch().await.map_err(JwksError::Fetch)?;
        let verifier = SessionVerifier::from_jwks(&doc, iss, aud)?;
        Ok(Self {
            verifier,
            source,
            min_refresh,
            last_fetch: Mutex::new(Instant::now()),
            fetching: futures_util::lock::Mutex::new(()),
            generation: AtomicU64::new(0),
        })
    }

    /// Installs a revocation hook on the underlying verifier (see
    /// [`SessionVerifier::with_revocation`]).
    #[must_use]
    pub fn with_revocation(mut self, hook: Arc<dyn RevocationCheck>) -> Self {
        self.verifier = self.verifier.with_revocation(hook);
        self
    }

    /// The underlying verifier (to configure revocation, forget a `jti`, …).
    pub fn verifier(&self) -> &SessionVerifier {
        &self.verifier
    }

    /// Verifies `token`; an unknown `kid` triggers one refresh (rate-limited) and a retry.
    ///
    /// # Errors
    /// As [`SessionVerifier::verify`]; `unknown_kid` when the refresh is not allowed yet or
    /// does not bring the key.
    pub async fn verify(&self, token: &str, now: i64) -> Result<SessionClaims, SessionError> {
        match self.verifier.verify(token, now) {
            Err(e) if e.is_unknown_kid() => {
                if self.refresh_if_due().await {
                    self.verifier.verify(token, now)
                } else {
                    Err(e)
                }
            }
            other => other,
        }
    }

    /// Refetches now, whatever the rate limit (an operator's or an invalidation's request).
    ///
    /// # Errors
    /// The fetch fails or the document is unusable; the previous keys stay in force.
    pub async fn refresh(&self) -> Result<(), JwksError> {
        let _one = self.fetching.lock().await;
        self.fetch_locked().await
    }

    /// Fetches and installs the JWKS; the caller holds `fetching`.
    async fn fetch_locked(&self) -> Result<(), JwksError> {
        self.mark_fetch();
        let doc = self.source.fetch().await.map_err(JwksError::Fetch)?;
        self.verifier.update_jwks(&doc)?;
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Refreshes for an unknown `kid`, single-flight and rate-limited; `true` when keys newer
    /// than the caller's first attempt are in place (its fetch, or one it waited for).
    async fn refresh_if_due(&self) -> bool {
        let seen = self.generation.load(Ordering::Acquire);
        let _one = self.fetching.lock().await;
        if self.generation.load(Ordering::Acquire) != seen {
            return true; // someone else's fetch finished while this caller waited
        }
        {
            // A poisoned lock only means another refresher panicked; the Instant is still valid.
            let last = self.last_fetch.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() < self.min_refresh {
                return false;
            }
        }
        self.fetch_locked().await.is_ok()
    }

    fn mark_fetch(&self) {
        *self.last_fetch.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use super::*;
    use crate::SessionKeys;

    /// Serves whatever JWKS the test put in, counting fetches.
    struct Published {
        doc: Mutex<Value>,
        fetches: AtomicUsize,
    }

    impl JwksSource for Arc<Published> {
        fn fetch(&self) -> JwksFuture<'_> {
            self.fetches.fetch_add(1, Ordering::SeqCst);
            let doc = self.doc.lock().unwrap().clone();
            Box::pin(async move { Ok(doc) })
        }
    }

    fn keys(ids: &[(&str, u8)], signing: &str) -> SessionKeys {
        let list = ids
            .iter()
            .map(|(k, b)| ((*k).to_owned(), [*b; 32]))
            .collect();
        SessionKeys::new(list, signing, "https://origin", "streamgate").unwrap()
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        // The futures here never pend: a no-op waker is enough.
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        loop {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    #[test]
    fn rotation_is_picked_up_once_per_interval() {
        let now = 1_800_000_000;
        let old = keys(&[("a", 1)], "a");
        let published = Arc::new(Published {
            doc: Mutex::new(old.jwks()),
            fetches: AtomicUsize::new(0),
        });
        let remote = block_on(RemoteVerifier::connect(
            published.clone(),
            "https://origin",
            "streamgate",
            Duration::from_secs(3600),
        ))
        .unwrap();
        let t_old = old
            .issue("eip155:1:0xA", Duration::from_secs(600), now)
            .token;
        assert!(block_on(remote.verify(&t_old, now)).is_ok());
        assert_eq!(published.fetches.load(Ordering::SeqCst), 1);

        // Origin rotates to key b; tokens under b name an unknown kid…
        let new = keys(&[("a", 1), ("b", 2)], "b");
        *published.doc.lock().unwrap() = new.jwks();
        let t_new = new
            .issue("eip155:1:0xB", Duration::from_secs(600), now)
            .token;
        // …and the refresh is not due yet (connect just fetched): refused, no fetch.
        let e = block_on(remote.verify(&t_new, now)).unwrap_err();
        assert!(e.is_unknown_kid());
        assert_eq!(published.fetches.load(Ordering::SeqCst), 1);
        // Once due, one fetch brings the key in; old tokens keep verifying.
        let quick = block_on(RemoteVerifier::connect(
            published.clone(),
            "https://origin",
            "streamgate",
            Duration::ZERO,
        ))
        .unwrap();
        *published.doc.lock().unwrap() = old.jwks();
        block_on(quick.refresh()).unwrap();
        *published.doc.lock().unwrap() = new.jwks();
        let before = published.fetches.load(Ordering::SeqCst);
        assert!(block_on(quick.verify(&t_new, now)).is_ok());
        assert_eq!(published.fetches.load(Ordering::SeqCst), before + 1);
        assert!(block_on(quick.verify(&t_old, now)).is_ok());
        // A forged kid costs at most one fetch per interval on the rate-limited verifier.
        let forged = t_new.replacen('e', "f", 1);
        let _ = block_on(remote.verify(&forged, now));
        assert!(published.fetches.load(Ordering::SeqCst) <= before + 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_of_unknown_kids_costs_one_fetch_and_all_wait_for_it() {
        /// Serves the new JWKS once the test opens the gate, counting fetches.
        struct Gated {
            doc: Value,
            gate: tokio::sync::Semaphore,
            fetches: AtomicUsize,
        }
        impl JwksSource for Arc<Gated> {
            fn fetch(&self) -> JwksFuture<'_> {
                self.fetches.fetch_add(1, Ordering::SeqCst);
                Box::pin(async move {
                    let _open = self.gate.acquire().await.map_err(|e| e.to_string())?;
                    Ok(self.doc.clone())
                })
            }
        }
        let now = 1_800_000_000;
        let old = keys(&[("a", 1)], "a");
        let new = keys(&[("a", 1), ("b", 2)], "b");
        let source = Arc::new(Gated {
            doc: new.jwks(),
            gate: tokio::sync::Semaphore::new(1),
            fetches: AtomicUsize::new(0),
        });
        // A verifier holding the old keys, with no rate limit: only single-flight stands
        // between a burst and a storm of fetches. The gate is closed: the fetch will hang.
        let held = source.gate.acquire().await.unwrap();
        let remote = Arc::new(RemoteVerifier {
            verifier: SessionVerifier::from_jwks(&old.jwks(), "https://origin", "streamgate")
                .unwrap(),
            source: source.clone(),
            min_refresh: Duration::ZERO,
            last_fetch: Mutex::new(Instant::now()),
            fetching: futures_util::lock::Mutex::new(()),
            generation: AtomicU64::new(0),
        });
        let token = new
            .issue("eip155:1:0xB", Duration::from_secs(600), now)
            .token;
        let burst: Vec<_> = (0..50)
            .map(|_| {
                let (remote, token) = (remote.clone(), token.clone());
                tokio::spawn(async move { remote.verify(&token, now).await })
            })
            .collect();
        // Let the burst pile up behind the one fetch, then let the fetch finish.
        while source.fetches.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
        drop(held);
        for r in burst {
            assert!(
                r.await.unwrap().is_ok(),
                "a caller was refused while the key was being fetched"
            );
        }
        assert_eq!(
            source.fetches.load(Ordering::SeqCst),
            1,
            "one fetch for the whole burst"
        );
    }

    #[test]
    fn a_failed_refresh_keeps_the_old_keys() {
        struct Down;
        impl JwksSource for Down {
            fn fetch(&self) -> JwksFuture<'_> {
                Box::pin(async { Err("connection refused".to_owned()) })
            }
        }
        let e = block_on(RemoteVerifier::connect(Down, "i", "a", Duration::ZERO));
        assert!(matches!(e, Err(JwksError::Fetch(_))));
    }
}
