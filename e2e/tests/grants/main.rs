//! Playback grants end to end: real ERC-721/1155/20 holdings on anvil (`playback`), keys of
//! encrypted packages through the gate (`encryption`),
//! invalidations (`invalidation`), RPC and Redis outages (`outages`), one chain check for a
//! burst (`singleflight`), SPL holdings on Surfnet (`solana`).

mod encryption;
mod invalidation;
mod outages;
mod playback;
mod singleflight;
mod solana;
