//! Liveness (`/healthz`) and readiness (`/readyz`) for load balancers and Kubernetes.
//!
//! Liveness is unconditional: if the process answers, it is alive. Readiness is a list of
//! conditions. Configuration and token keys need no check of their own: an edge cannot be built
//! without them, so once it answers they are loaded. What can make a running edge not ready:
//! - the process is draining (graceful shutdown or upgrade), so balancers stop sending players;
//! - with playback grants, origin's JWKS is not loaded yet (`jwks_not_loaded`): the edge
//!   fetches it at start-up and retries every second until it has it;
//! - any other registered [`ReadyCheck`].

use serde::Serialize;

/// Body of a healthy `/healthz`.
pub(crate) const HEALTHY: Status<'static> = Status {
    status: "ok",
    reason: None,
};

/// One readiness condition beyond the built-in ones.
pub(crate) trait ReadyCheck: Send + Sync {
    /// `Ok` when this condition allows traffic, else a short snake_case reason.
    fn ready(&self) -> Result<(), &'static str>;
}

/// Body of `/healthz` and `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Status<'a> {
    /// `ok`, `ready` or `not_ready`.
    pub(crate) status: &'a str,
    /// Why not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) reason: Option<&'a str>,
}

/// The readiness conditions of an edge.
#[derive(Default)]
pub(crate) struct Readiness {
    checks: Vec<Box<dyn ReadyCheck>>,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness")
            .field("checks", &self.checks.len())
            .finish()
    }
}

impl Readiness {
    /// Adds a condition.
    pub(crate) fn add(&mut self, check: Box<dyn ReadyCheck>) {
        self.checks.push(check);
    }

    /// Evaluates every condition, the built-in ones first.
    ///
    /// # Returns
    /// `Ok(body)` for a 200 answer, `Err(body)` for a 503 one.
    pub(crate) fn check(&self, draining: bool) -> Result<Status<'static>, Status<'static>> {
        let not_ready = |reason| Status {
            status: "not_ready",
            reason: Some(reason),
        };
        if draining {
            return Err(not_ready("shutting_down"));
        }
        for c in &self.checks {
            c.ready().map_err(not_ready)?;
        }
        Ok(Status {
            status: "ready",
            reason: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed(Result<(), &'static str>);
    impl ReadyCheck for Fixed {
        fn ready(&self) -> Result<(), &'static str> {
            self.0
        }
    }

    #[test]
    fn ready_by_default_and_not_while_draining() {
        let r = Readiness::default();
        assert_eq!(r.check(false).unwrap().status, "ready");
        assert_eq!(r.check(true).unwrap_err().reason, Some("shutting_down"));
    }

    #[test]
    fn registered_checks_are_consulted() {
        let mut r = Readiness::default();
        r.add(Box::new(Fixed(Ok(()))));
        assert!(r.check(false).is_ok());
        r.add(Box::new(Fixed(Err("l2_unreachable"))));
        assert_eq!(r.check(false).unwrap_err().reason, Some("l2_unreachable"));
    }
}
