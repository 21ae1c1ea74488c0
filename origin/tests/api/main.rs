//! Origin's own API against the running stack: listing and editing contents (`listing`), tus
//! uploads (`uploads`), their expiry (`expiration`), checksums and deferred lengths
//! (`tus_extensions`) and the real `tus-js-client` (`tus_js`), wallet sign-in (`sign_in`,
//! `sign_in_solana`, `contract_wallet`), content policies (`policies`) and the JWKS an edge
//! verifies sessions with (`remote_verifier`), and TLS on the public listener (`tls`).

mod contract_wallet;
mod expiration;
mod listing;
mod policies;
mod remote_verifier;
mod sign_in;
mod sign_in_solana;
mod tls;
mod tus_extensions;
mod tus_js;
mod uploads;
mod webhooks;
