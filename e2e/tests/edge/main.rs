//! The edge as a CDN, against the running stack: the cache tiers (`cache`), coalescing of
//! concurrent misses (`coalescing`), parent edges (`parents`) and graceful drain (`drain`).

mod cache;
mod coalescing;
mod drain;
mod parents;
