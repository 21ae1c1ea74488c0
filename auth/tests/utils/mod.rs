//! Helpers shared by the sign-in vector tests: loading `vectors/*.json` and building the rules
//! each vector names.

use std::time::Duration;

use serde_json::Value;
use streamgate_auth::{SignInRules, SolanaCluster};

/// The vectors file `name` under `tests/vectors/`, parsed.
pub(crate) fn load(name: &str) -> Value {
    let path = format!(
        "{}/tests/vectors/{name}",
        std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A string field of a vector.
pub(crate) fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} missing in {}", v["name"]))
}

/// The vector's `now`.
pub(crate) fn now(v: &Value) -> i64 {
    v["now"].as_i64().expect("now")
}

/// The [`SignInRules`] recorded in a vector (`rules` object).
pub(crate) fn rules(v: &Value) -> SignInRules {
    let r = &v["rules"];
    let origins = r["allowed_uri_origins"]
        .as_array()
        .expect("origins")
        .iter()
        .map(|o| o.as_str().expect("origin").to_owned())
        .collect();
    let mut rules = SignInRules::new(s(r, "domain"), origins)
        .expect("vector rules are valid")
        .with_max_skew(Duration::from_secs(r["max_skew_s"].as_u64().expect("skew")))
        .with_max_age(Duration::from_secs(r["max_age_s"].as_u64().expect("age")));
    if let Some(ids) = r["chain_ids"].as_array() {
        rules = rules.with_chain_ids(ids.iter().map(|i| i.as_u64().expect("id")).collect());
    }
    if let Some(cs) = r["clusters"].as_array() {
        let clusters = cs
            .iter()
            .map(|c| SolanaCluster::new(s(c, "name"), s(c, "reference")).expect("cluster"))
            .collect();
        rules = rules.with_solana_clusters(clusters);
    }
    rules
}

/// The vectors under `key` (`accept` or `reject`).
pub(crate) fn list<'a>(file: &'a Value, key: &str) -> &'a Vec<Value> {
    file[key].as_array().expect("vector list")
}
