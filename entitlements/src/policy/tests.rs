//! Policy parsing, errors by path, limits and the canonical hash.

use serde_json::{Value, json};

use super::*;

const C1: &str = "0xab5801a7d398351b8be11c439e05c5b3259aec9b";
const C1_EIP55: &str = "0xAb5801a7D398351b8bE11C439e05C5B3259aeC9B";
const C2: &str = "0x000000000000000000000000000000000000dEaD";

fn key(n: u8) -> String {
    bs58::encode([n; 32]).into_string()
}

fn err_of(v: Value) -> String {
    Policy::parse(&v).expect_err("must be refused").to_string()
}

#[test]
fn every_rule_kind_parses_to_its_canonical_form() {
    let v = json!({"any": [
        {"erc721": {"chain": "eip155:137", "contract": C1}},
        {"erc721": {"contract": C1, "chain": "eip155:1", "token_ids": ["42", 1, "0042"]}},
        {"erc1155": {"chain": "eip155:1", "contract": C2, "token_id": "7"}},
        {"erc1155": {"chain": "eip155:1", "contract": C2, "token_id": 7, "min_balance": 3}},
        {"erc20": {"chain": "eip155:1", "contract": C1, "min_balance": "1000000000000000000"}},
        {"spl": {"cluster": "solana:mainnet", "mint": key(1)}},
        {"spl": {"cluster": "solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1", "mint": key(1), "min_balance": "5"}},
        {"metaplex_collection": {"cluster": "solana:localnet", "collection": key(2)}},
        {"allow": [format!("eip155:1:{C2}"), format!("eip155:1:{}", C1.to_uppercase().replace("0X", "0x")),
                   format!("solana:mainnet:{}", key(3)), format!("eip155:1:{C2}")]},
        {"all": [{"public": true}, {"public": false}]}
    ]});
    let p = Policy::parse(&v).unwrap();
    let Rule::Any(rules) = p.root() else {
        panic!("any")
    };
    assert_eq!(rules.len(), 10);
    let expected = json!({"any": [
        {"erc721": {"chain": "eip155:137", "contract": C1_EIP55}},
        {"erc721": {"chain": "eip155:1", "contract": C1_EIP55, "token_ids": ["1", "42"]}},
        {"erc1155": {"chain": "eip155:1", "contract": C2, "min_balance": "1", "token_id": "7"}},
        {"erc1155": {"chain": "eip155:1", "contract": C2, "min_balance": "3", "token_id": "7"}},
        {"erc20": {"chain": "eip155:1", "contract": C1_EIP55, "min_balance": "1000000000000000000"}},
        {"spl": {"cluster": "solana:mainnet", "min_balance": "1", "mint": key(1)}},
        {"spl": {"cluster": "solana:devnet", "min_balance": "5", "mint": key(1)}},
        {"metaplex_collection": {"cluster": "solana:localnet", "collection": key(2)}},
        {"allow": [format!("eip155:1:{C2}"), format!("eip155:1:{C1_EIP55}"), format!("solana:mainnet:{}", key(3))]},
        {"all": [{"public": true}, {"public": false}]}
    ]});
    assert_eq!(p.to_value(), expected);
    // The canonical text is sorted-key compact JSON, and parses back to the same policy.
    assert_eq!(
        p.canonical_json(),
        serde_json::to_string(&expected).unwrap()
    );
    assert_eq!(Policy::parse(&p.to_value()).unwrap(), p);
    let via_serde: Policy = serde_json::from_value(v).unwrap();
    assert_eq!(via_serde, p);
    assert_eq!(Policy::public().canonical_json(), r#"{"public":true}"#);
}

#[test]
fn errors_name_the_field_by_json_path() {
    let cases: Vec<(Value, &str)> = vec![
        (json!([]), "policy: expected an object with exactly one of"),
        (json!({}), "policy: expected an object with exactly one of"),
        (
            json!({"public": true, "any": []}),
            "policy: expected an object with exactly one of",
        ),
        (json!({"everyone": true}), "policy.everyone: unknown rule"),
        (
            json!({"public": "yes"}),
            "policy.public: expected true or false",
        ),
        (json!({"any": {}}), "policy.any: expected an array"),
        (json!({"any": []}), "policy.any: must not be empty"),
        (
            json!({"all": [{"public": true}, 3]}),
            "policy.all[1]: expected an object",
        ),
        (
            json!({"any": [{"erc721": {"chain": "eip155:1"}}]}),
            "policy.any[0].erc721.contract: missing",
        ),
        (
            json!({"any": [{"erc721": {"contract": C1}}]}),
            "policy.any[0].erc721.chain: missing",
        ),
        (
            json!({"any": [{"erc721": {"chain": "eip155:1", "contract": "0x12"}}]}),
            "policy.any[0].erc721.contract: not an EVM address",
        ),
        (
            json!({"erc721": {"chain": "eip155:1", "contract": C1.replace('a', "g")}}),
            "policy.erc721.contract: not an EVM address",
        ),
        (
            json!({"erc721": {"chain": "eip155:1", "contract": 5}}),
            "policy.erc721.contract: expected a string",
        ),
        (
            json!({"erc721": {"chain": "eip155:1", "contract": C1, "token_id": "1"}}),
            "policy.erc721.token_id: unknown field (expected chain, contract, token_ids)",
        ),
        (
            json!({"erc721": {"chain": "eip155:1", "contract": C1, "token_ids": []}}),
            "policy.erc721.token_ids: must not be empty",
        ),
        (
            json!({"erc721": {"chain": "eip155:1", "contract": C1, "token_ids": ["1", "x"]}}),
            "policy.erc721.token_ids[1]: not a uint256",
        ),
        (
            json!({"erc721": {"chain": "eip155:01", "contract": C1}}),
            "policy.erc721.chain: not a CAIP-2 chain id",
        ),
        (
            json!({"erc721": {"chain": "ethereum", "contract": C1}}),
            "policy.erc721.chain: not a CAIP-2 chain id",
        ),
        (
            json!({"erc721": {"chain": "solana:mainnet", "contract": C1}}),
            "policy.erc721.chain: not an EVM chain",
        ),
        (json!({"erc721": "x"}), "policy.erc721: expected an object"),
        (
            json!({"any": [{"public": true}, {"public": true}, {"erc1155": {"chain": "eip155:1", "contract": C1, "token_id": "-7"}}]}),
            "policy.any[2].erc1155.token_id: not a uint256",
        ),
        (
            json!({"erc1155": {"chain": "eip155:1", "contract": C1, "token_id": 1.5}}),
            "policy.erc1155.token_id: not a uint256",
        ),
        (
            json!({"erc1155": {"chain": "eip155:1", "contract": C1}}),
            "policy.erc1155.token_id: missing",
        ),
        (
            json!({"erc1155": {"chain": "eip155:1", "contract": C1, "token_id": "1", "min_balance": "0"}}),
            "policy.erc1155.min_balance: must be at least 1",
        ),
        (
            json!({"erc20": {"chain": "eip155:1", "contract": C1}}),
            "policy.erc20.min_balance: missing",
        ),
        (
            json!({"erc20": {"chain": "eip155:1", "contract": C1, "min_balance": -1}}),
            "policy.erc20.min_balance: not a uint256",
        ),
        (
            json!({"spl": {"cluster": "eip155:1", "mint": key(1)}}),
            "policy.spl.cluster: not a Solana cluster",
        ),
        (
            json!({"spl": {"cluster": "solana:moon", "mint": key(1)}}),
            "policy.spl.cluster: not a Solana cluster",
        ),
        (
            json!({"spl": {"cluster": "solana:mainnet", "mint": "0OIl"}}),
            "policy.spl.mint: not a base58 32-byte Solana key",
        ),
        (
            json!({"spl": {"cluster": "solana:mainnet", "mint": key(1), "min_balance": "18446744073709551616"}}),
            "policy.spl.min_balance: not a u64",
        ),
        (
            json!({"spl": {"cluster": "solana:mainnet", "mint": key(1), "min_balance": 0}}),
            "policy.spl.min_balance: must be at least 1",
        ),
        (
            json!({"spl": {"cluster": "solana:mainnet"}}),
            "policy.spl.mint: missing",
        ),
        (
            json!({"metaplex_collection": {"cluster": "solana:mainnet", "mint": key(1)}}),
            "policy.metaplex_collection.mint: unknown field (expected cluster, collection)",
        ),
        (json!({"allow": []}), "policy.allow: must not be empty"),
        (
            json!({"allow": [format!("eip155:1:{C1}"), 3]}),
            "policy.allow[1]: expected a string",
        ),
        (
            json!({"allow": [format!("eip155:1:{C1}"), C1]}),
            "policy.allow[1]: not a CAIP-10 account",
        ),
        (
            json!({"allow": ["eip155:1:0x1234"]}),
            "policy.allow[0]: not an EVM address",
        ),
        (
            json!({"allow": ["solana:mainnet:nope0"]}),
            "policy.allow[0]: not a base58 32-byte Solana key",
        ),
    ];
    for (v, want) in cases {
        let got = err_of(v.clone());
        assert!(got.starts_with(want), "{v}\n  got:  {got}\n  want: {want}…");
    }
}

#[test]
fn unknown_chains_are_refused_with_the_known_ones_listed() {
    let known = KnownChains::parse([
        "eip155:1",
        "eip155:31337",
        "solana:mainnet",
        "solana:localnet",
    ])
    .unwrap();
    let ok = json!({"any": [
        {"erc721": {"chain": "eip155:31337", "contract": C1}},
        {"spl": {"cluster": "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "mint": key(1)}},
        {"allow": [format!("solana:localnet:{}", key(1))]},
    ]});
    Policy::parse_with(&ok, &known).unwrap();
    let e = Policy::parse_with(
        &json!({"any": [{"public": true}, {"erc721": {"chain": "eip155:137", "contract": C1}}]}),
        &known,
    )
    .unwrap_err();
    assert_eq!(e.path, "policy.any[1].erc721.chain");
    assert_eq!(e.kind.code(), "unknown_chain");
    assert_eq!(
        e.to_string(),
        "policy.any[1].erc721.chain: unknown chain eip155:137 (known: eip155:1, eip155:31337, solana:mainnet, solana:localnet)"
    );
    let e = Policy::parse_with(
        &json!({"spl": {"cluster": "solana:devnet", "mint": key(1)}}),
        &known,
    )
    .unwrap_err();
    assert_eq!(e.path, "policy.spl.cluster");
    let e = Policy::parse_with(&json!({"allow": [format!("eip155:5:{C1}")]}), &known).unwrap_err();
    assert_eq!(e.path, "policy.allow[0]");
    assert!(e.to_string().contains("unknown chain eip155:5"));
    // Nothing known: every chain refused; `any` takes them all.
    let none = KnownChains::parse(Vec::<String>::new()).unwrap();
    assert!(
        Policy::parse_with(&ok, &none)
            .unwrap_err()
            .to_string()
            .contains("(known: none)")
    );
    assert!(KnownChains::any().contains(&Chain::Evm(424242)));
    assert_eq!(
        KnownChains::parse(["eip155:1", "bitcoin:x"])
            .unwrap_err()
            .path,
        "known_chains[1]"
    );
}

fn nested(depth: usize) -> Value {
    let mut v = json!({"public": true});
    for _ in 1..depth {
        v = json!({"any": [v]});
    }
    v
}

#[test]
fn limits_depth_rules_lists_and_reads() {
    Policy::parse(&nested(MAX_DEPTH)).unwrap();
    let e = Policy::parse(&nested(MAX_DEPTH + 1)).unwrap_err();
    assert_eq!(e.kind, PolicyErrorKind::TooDeep(MAX_DEPTH));
    assert_eq!(e.path, format!("policy{}", ".any[0]".repeat(MAX_DEPTH)));

    let leaves = |n: usize| json!({"any": vec![json!({"public": false}); n]});
    Policy::parse(&leaves(MAX_RULES - 1)).unwrap();
    let e = Policy::parse(&leaves(MAX_RULES)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "policy.any[63]: the policy has more than 64 rules"
    );
    let e = Policy::parse(&leaves(MAX_RULES + 1)).unwrap_err();
    assert_eq!(e.to_string(), "policy.any: more than 64 entries");

    let many: Vec<String> = (0..=MAX_ALLOW)
        .map(|i| format!("eip155:1:0x{i:040x}"))
        .collect();
    Policy::parse(&json!({"allow": many[..MAX_ALLOW]})).unwrap();
    assert_eq!(
        err_of(json!({"allow": many})),
        "policy.allow: more than 1024 entries"
    );

    let ids = |n: usize| (0..n).map(|i| i.to_string()).collect::<Vec<_>>();
    let rule =
        |n: usize| json!({"erc721": {"chain": "eip155:1", "contract": C1, "token_ids": ids(n)}});
    Policy::parse(&rule(MAX_READS)).unwrap();
    let e = Policy::parse(&json!({"any": [rule(MAX_READS), {"erc20": {"chain": "eip155:1", "contract": C1, "min_balance": 1}}]}))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "policy.any[1].erc20: the policy needs more than 256 chain reads"
    );
    // Duplicate ids are one read.
    Policy::parse(&json!({"any": [rule(MAX_READS - 1), {"erc721": {"chain": "eip155:1", "contract": C1, "token_ids": ["1", "1"]}}]}))
        .unwrap();
    let dup = json!({"erc721": {"chain": "eip155:1", "contract": C1, "token_ids": vec!["7"; 300]}});
    assert_eq!(
        err_of(dup),
        "policy.erc721.token_ids: more than 256 entries"
    );
}

#[test]
fn hash_is_stable_under_key_order_case_and_spelling() {
    let a = json!({"any": [
        {"erc1155": {"chain": "eip155:1", "contract": C1, "token_id": "7"}},
        {"allow": [format!("eip155:1:{C1}"), format!("eip155:1:{C2}")]},
        {"spl": {"cluster": "solana:mainnet", "mint": key(1)}},
    ]});
    let b_text = format!(
        r#"{{"any":[{{"erc1155":{{"token_id":7,"min_balance":"01","contract":"{}","chain":"eip155:1"}}}},
            {{"allow":["eip155:1:{}","eip155:1:{}","eip155:1:{C1}"]}},
            {{"spl":{{"mint":"{}","min_balance":1,"cluster":"solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp"}}}}]}}"#,
        C1.to_uppercase().replace("0X", "0x"),
        C2.to_lowercase(),
        C1_EIP55,
        key(1)
    );
    let b: Value = serde_json::from_str(&b_text).unwrap();
    let (pa, pb) = (Policy::parse(&a).unwrap(), Policy::parse(&b).unwrap());
    assert_eq!(pa, pb);
    assert_eq!(pa.hash(), pb.hash());
    assert_eq!(
        pa.hash(),
        <[u8; 32]>::from(Sha256::digest(pa.canonical_json().as_bytes()))
    );
    // A pinned value: the hash is a cache key shared across edges and releases.
    assert_eq!(
        hex::encode(Policy::public().hash()),
        hex::encode(Sha256::digest(br#"{"public":true}"#))
    );
    // Meaning differs → hash differs (min balance, order of `any` is kept as written).
    let c = json!({"any": [
        {"erc1155": {"chain": "eip155:1", "contract": C1, "token_id": "7", "min_balance": "2"}},
        {"allow": [format!("eip155:1:{C1}"), format!("eip155:1:{C2}")]},
        {"spl": {"cluster": "solana:mainnet", "mint": key(1)}},
    ]});
    assert_ne!(Policy::parse(&c).unwrap().hash(), pa.hash());
    let Value::Object(mut m) = a.clone() else {
        unreachable!()
    };
    m["any"].as_array_mut().unwrap().reverse();
    assert_ne!(Policy::parse(&Value::Object(m)).unwrap().hash(), pa.hash());
}
