//! Gated request paths (`/p/{token}/{id}/{path}`, a child's `/v/{id}/{path}`): whatever is
//! accepted is a valid content id and media path.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        streamgate_proxy::fuzz::gated_path(s);
        streamgate_proxy::fuzz::gated_path(&format!("/p/{s}"));
        streamgate_proxy::fuzz::gated_path(&format!("/v/{s}"));
    }
});
