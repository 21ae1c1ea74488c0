//! `Cookie` and `Authorization` headers at the edge (session and playback cookies, bearer
//! tokens): what is found is a piece of what was sent.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    let (auth, cookie) = data.split_at(cut);
    streamgate_proxy::fuzz::cookies(cookie, auth);
});
