//! tus headers at origin (`Upload-Metadata`, `Upload-Offset`/`Upload-Length`): keys are clean,
//! numbers are exactly the decimal text.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cut = data
        .first()
        .map_or(0, |b| usize::from(*b) % 32)
        .min(data.len());
    let (number, rest) = data.split_at(cut);
    if let Ok(meta) = std::str::from_utf8(rest) {
        streamgate_origin::fuzz::tus_headers(meta, number);
    }
});
