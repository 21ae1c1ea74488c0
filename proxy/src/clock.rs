//! The edge's one clock: Unix seconds, read from the system clock. Token expiry, grant times,
//! cookie lifetimes and revocations all use it, so they agree.

/// Unix seconds now (0 if the system clock is before 1970).
pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// [`unix_now`] as an unsigned count (what playback tokens carry).
pub(crate) fn unix_secs() -> u64 {
    u64::try_from(unix_now()).unwrap_or(0)
}
