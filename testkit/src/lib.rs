//! StreamGate's test kit: what every test suite shares, so a suite reads as the behaviour it
//! checks.
//!
//! - [`stack`]: the running local stack (`scripts/stack.sh up` writes `$STACK_DIR/env`):
//!   [`Stack`] with sign-in, contents, tus uploads (through `streamgate-loadtest`'s
//!   [`TusClient`](streamgate_loadtest::tus::TusClient)), token minting, S3 and metrics.
//! - [`private`]: processes a test owns — [`PrivateEdge`], [`PrivateOrigin`],
//!   [`PrivateTranscoder`], [`PrivateRedis`], [`PersistentRedis`], [`RedisCluster`], [`Anvil`], [`PrivateS3`],
//!   [`Forwarder`], [`CuttingForwarder`], [`Balancer`] — killed on drop, never the stack's own.
//! - [`ports`]: loopback ports that cannot race (reserved below the ephemeral range, held by a
//!   lock file while in use).
//! - [`proc`]: [`Proc`] (a child killed with its process group on drop), waiting for ports and
//!   for conditions with a deadline ([`eventually`]).
//! - [`tls`]: [`TestCa`], a throwaway CA issuing leaf certificates (openssl).
//! - [`media`]: generated clips; [`wallet`]: EVM and Solana test wallets and sign-in messages;
//!   [`chain`]: the EVM and Solana fixture scripts; [`metrics`]: reading Prometheus pages.
//!
//! No fixed sleeps: wait for an observable event, or poll with a deadline.

pub mod chain;
pub mod media;
pub mod metrics;
pub mod ports;
pub mod private;
pub mod proc;
pub mod stack;
pub mod tls;
pub mod wallet;

pub use chain::{Chain, Surfnet, deploy, node};
pub use media::{
    decode_frames, make_audio, make_clip, make_clip_at, make_multi_audio_clip, noise, probe_video,
    video_psnr,
};
pub use metrics::metric;
pub use nix::sys::signal::Signal;
pub use ports::{Ports, reserve};
pub use private::{
    Anvil, Balancer, CuttingForwarder, Forwarder, PersistentRedis, PrivateEdge, PrivateOrigin,
    PrivateRedis, PrivateS3, PrivateTranscoder, RedisCluster, dead_port,
};
pub use proc::{Proc, eventually, signal_pid, wait_answers, wait_tcp};
pub use stack::{Stack, grant, repo_root};
pub use tls::{Leaf, TestCa};
pub use wallet::{Wallet, siwe_message, siws_message, siws_sign_in, solana_address};
