//! Configuration files (TOML) of the three services: any text is either accepted or refused
//! with an error naming a key (or the syntax), never a panic.
#![no_main]

use std::{collections::HashMap, path::Path};

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let env: HashMap<String, String> = HashMap::new();
    let source = Path::new("fuzz.toml");
    for e in [
        streamgate_config::parse_proxy(text, source, &env).err(),
        streamgate_config::parse_origin(text, source, &env).err(),
        streamgate_config::parse_transcoder(text, source, &env).err(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(!e.to_string().is_empty());
    }
});
