//! `Range` headers: at the edge (served from the cache, single and multi-range) every range
//! lies inside the object; at origin only one well-formed `bytes=` range reaches S3.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) % (64 << 20);
    let header = &data[4..];
    streamgate_proxy::fuzz::range(header, len);
    streamgate_origin::fuzz::range(header);
});
