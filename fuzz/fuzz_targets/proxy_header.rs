//! PROXY protocol v1/v2 headers, as the edge's PROXY listeners read them before HTTP or TLS:
//! a header never claims more bytes than it was given and its prefixes are incomplete.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    streamgate_proxy::fuzz::proxy_header(data);
});
