//! Bounds on what the edge takes on. Past `server.max-connections` open client connections
//! (plain and TLS listeners together) a new connection is not served: an HTTP/1.x client gets
//! `503` with `Retry-After: 1` and a JSON reason, an HTTP/2 one a closed connection, and
//! `streamgate_edge_shed_total{reason="connections"}` counts it. What one connection costs
//! (buffers, a task) is then bounded by the cap, whatever the offered load.
//!
//! ```text
//! accept ─► ConnectionCap::admit ─ under the cap ─► serve (Admitted held until it closes)
//!                                 └ at the cap ───► read the request head (≤ 1 s), 503, close
//! ```

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use pingora::protocols::{ALPN, Stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::metrics::EdgeMetrics;

/// The body of the answer to a connection past the cap.
const OVER_CAPACITY: &str =
    "{\"error\":\"over_capacity\",\"message\":\"this edge is at its connection limit; retry\"}\n";

/// The whole answer to a connection past the cap.
fn over_capacity() -> String {
    format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\nContent-Type: application/json\r\n\
         Cache-Control: no-store\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{OVER_CAPACITY}",
        OVER_CAPACITY.len()
    )
}

/// How long a refused connection is given to send its request head before the 503.
const REFUSAL_READ: Duration = Duration::from_secs(1);

/// Counts open client connections against `server.max-connections`.
#[derive(Debug)]
pub(crate) struct ConnectionCap {
    open: AtomicUsize,
    max: usize,
    metrics: Arc<EdgeMetrics>,
}

/// One admitted connection; dropping it frees its place.
#[derive(Debug)]
pub(crate) struct Admitted(Arc<ConnectionCap>);

impl Drop for Admitted {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        self.0.metrics.open_connections().dec();
    }
}

impl ConnectionCap {
    pub(crate) fn new(max: usize, metrics: Arc<EdgeMetrics>) -> Arc<Self> {
        Arc::new(Self {
            open: AtomicUsize::new(0),
            max,
            metrics,
        })
    }

    /// A place for one more connection, or `None` at the cap.
    pub(crate) fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let admitted = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            return None;
        }
        self.metrics.open_connections().inc();
        Some(Admitted(self.clone()))
    }

    /// Refuses a connection past the cap (counted): 503 to HTTP/1.x, a close to HTTP/2.
    pub(crate) async fn refuse(&self, mut stream: Stream) {
        self.metrics.shed("connections");
        if stream.selected_alpn_proto() == Some(ALPN::H2) {
            return;
        }
        // On the heap: a stack array held across the await would be part of every
        // connection's future, refused or not (4 KiB each, measured with heaptrack).
        let mut head = vec![0u8; 4096];
        let _ = tokio::time::timeout(REFUSAL_READ, stream.read(&mut head)).await;
        let _ = tokio::time::timeout(REFUSAL_READ, async {
            stream.write_all(over_capacity().as_bytes()).await?;
            stream.flush().await
        })
        .await;
        pingora::protocols::Shutdown::shutdown(&mut *stream).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_well_formed_http() {
        let text = over_capacity();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 503 "));
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(length, body.len());
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"], "over_capacity");
    }

    #[test]
    fn places_are_taken_and_given_back() {
        let cap = ConnectionCap::new(2, Arc::new(EdgeMetrics::new().unwrap()));
        let a = cap.admit().unwrap();
        let b = cap.admit().unwrap();
        assert!(cap.admit().is_none(), "at the cap");
        drop(a);
        let c = cap.admit().expect("a place came free");
        assert_eq!(cap.metrics.open_connections().get(), 2);
        drop((b, c));
        assert_eq!(cap.metrics.open_connections().get(), 0);
    }
}
