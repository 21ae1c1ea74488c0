//! The cache lock that coalesces concurrent misses, closed against a late miss.
//!
//! Pingora looks a key up and, on a miss, takes the key's lock: the first request fetches
//! (write permit), the others wait (read lock) and look up again once it is done. The two steps
//! are separate, and the fetching request releases its lock as soon as the object is stored.
//! A request that missed just before the store and asks for the lock just after the release
//! finds no lock, becomes a writer and fetches the object a second time (seen as 2 origin
//! fetches for 200 concurrent misses; the same race is upstream's cloudflare/pingora#110). The
//! window was widened by our lookup, which awaits L2 after an L1 miss.
//!
//! [`CoalescingLock`] closes it: a write permit for a fresh miss is only handed out if the
//! object is still not in L1. If it is, the permit is released at once and the request gets a
//! read lock that is already done, so it looks the key up again and is served from L1.

use std::time::Duration;

use pingora::cache::{
    CacheKey,
    lock::{CacheKeyLock, CacheLock, LockStatus, Locked, WritePermit},
};

use super::storage::TieredStorage;

/// Pingora's [`CacheLock`], asked again about L1 before it makes a writer.
pub(crate) struct CoalescingLock {
    inner: CacheLock,
    storage: &'static TieredStorage,
    age: Duration,
}

impl CoalescingLock {
    /// A lock over `storage` whose writers are presumed stuck after `age`.
    pub(crate) fn new(storage: &'static TieredStorage, age: Duration) -> Self {
        Self {
            inner: CacheLock::new(age),
            storage,
            age,
        }
    }
}

impl CacheKeyLock for CoalescingLock {
    fn lock(&self, key: &CacheKey, stale_writer: bool) -> Locked {
        match self.inner.lock(key, stale_writer) {
            Locked::Write(permit) if !stale_writer && self.storage.in_l1(key) => {
                // The fetch this request missed has finished: no second fetch.
                self.inner.release(key, permit, LockStatus::Done);
                let (mut done, stub) = WritePermit::new(self.age, false, http::Extensions::new());
                done.unlock(LockStatus::Done);
                Locked::Read(stub.read_lock())
            }
            other => other,
        }
    }

    fn release(&self, key: &CacheKey, permit: WritePermit, reason: LockStatus) {
        self.inner.release(key, permit, reason);
    }

    fn custom_lock_status(&self, custom_no_cache: &'static str) -> LockStatus {
        self.inner.custom_lock_status(custom_no_cache)
    }
}
