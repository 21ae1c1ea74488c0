//! Edge credentials: the shared secrets an edge presents (`x-streamgate-edge-key`) to origin's
//! internal listener and to its parent edges, so packaged media is served to edges only.
//!
//! A presented key is hashed and compared with every live key's hash in constant time (no
//! early exit on the first byte, nor on a length mismatch): timing tells an attacker nothing
//! about how close a guess was. Several keys may be live while they rotate: add the new key to
//! every acceptor, move the edges to it, then drop the old one.

use sha2::{Digest, Sha256};
use subtle::{Choice, ConstantTimeEq};

/// The keys an origin (or a parent edge) accepts from edges.
#[derive(Clone, Default)]
pub struct EdgeKeys {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for EdgeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EdgeKeys({} live)", self.digests.len())
    }
}

fn digest(b: &[u8]) -> [u8; 32] {
    Sha256::new()
        .chain_update(b"sg-edge-key\0")
        .chain_update(b)
        .finalize()
        .into()
}

impl EdgeKeys {
    /// Accepts each of `keys`.
    pub fn new<'a>(keys: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            digests: keys.into_iter().map(|k| digest(k.as_bytes())).collect(),
        }
    }

    /// Whether no key is configured (then nothing is accepted).
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `presented` is one of the live keys. Always false without keys. Every live key
    /// is compared, in constant time.
    pub fn accepts(&self, presented: &[u8]) -> bool {
        let d = digest(presented);
        let mut ok = Choice::from(0);
        for k in &self.digests {
            ok |= k.ct_eq(&d);
        }
        bool::from(ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_only_live_keys() {
        let keys = EdgeKeys::new(["old-key-0123456789", "new-key-0123456789"]);
        assert!(keys.accepts(b"old-key-0123456789"));
        assert!(keys.accepts(b"new-key-0123456789"));
        assert!(!keys.accepts(b"new-key-012345678"));
        assert!(!keys.accepts(b"new-key-01234567890"));
        assert!(!keys.accepts(b""));
        assert!(!EdgeKeys::default().accepts(b""));
        assert!(!EdgeKeys::default().accepts(b"anything"));
        assert_eq!(format!("{keys:?}"), "EdgeKeys(2 live)");
    }
}
