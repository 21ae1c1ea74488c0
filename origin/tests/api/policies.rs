//! Content policies through the real origin API: good policies of every rule kind are stored
//! in canonical form; bad ones are refused with a 400 whose message names the field by JSON
//! path, on `POST /v1/contents` and on `PUT /v1/contents/{id}/policy` alike. The stack accepts
//! sign-in on `eip155:1`, `eip155:31337` and Solana mainnet, devnet and localnet, so those are
//! the chains policies may name.

use serde_json::{Value, json};
use streamgate_testkit::Stack;

const NFT: &str = "0xab5801a7d398351b8be11c439e05c5b3259aec9b";
const NFT_EIP55: &str = "0xAb5801a7D398351b8bE11C439e05C5B3259aeC9B";

fn key(n: u8) -> String {
    bs58::encode([n; 32]).into_string()
}

async fn post(st: &Stack, policy: Value) -> reqwest::Response {
    st.http
        .post(format!("{}/v1/contents", st.origin))
        .header("authorization", st.bearer())
        .json(&json!({ "title": "gated", "policy": policy }))
        .send()
        .await
        .unwrap()
}

async fn put(st: &Stack, id: &str, policy: Value) -> reqwest::Response {
    st.http
        .put(format!("{}/v1/contents/{id}/policy", st.origin))
        .header("authorization", st.bearer())
        .json(&json!({ "policy": policy }))
        .send()
        .await
        .unwrap()
}

/// Asserts a 400 `bad_request` whose message starts with `want`; returns the message.
async fn refused(r: reqwest::Response, want: &str) -> String {
    assert_eq!(r.status(), 400, "{want}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "bad_request", "{v}");
    let msg = v["message"].as_str().unwrap().to_owned();
    assert!(
        msg.starts_with(want),
        "message {msg:?} should start with {want:?}"
    );
    msg
}

#[tokio::test]
async fn good_policies_are_stored_canonical() {
    let st = Stack::load().await;
    let policy = json!({"any": [
        {"erc721": {"contract": NFT.to_uppercase().replace("0X", "0x"), "chain": "eip155:31337"}},
        {"erc1155": {"chain": "eip155:1", "contract": NFT, "token_id": 7}},
        {"erc20": {"chain": "eip155:31337", "contract": NFT, "min_balance": "1000000000000000000"}},
        {"spl": {"cluster": "solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp", "mint": key(1)}},
        {"all": [
            {"metaplex_collection": {"cluster": "solana:localnet", "collection": key(2)}},
            {"allow": [format!("eip155:31337:{NFT}"), format!("solana:devnet:{}", key(3))]}
        ]}
    ]});
    let r = post(&st, policy).await;
    assert_eq!(r.status(), 201, "{:?}", r.text().await);
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let canonical = json!({"any": [
        {"erc721": {"chain": "eip155:31337", "contract": NFT_EIP55}},
        {"erc1155": {"chain": "eip155:1", "contract": NFT_EIP55, "min_balance": "1", "token_id": "7"}},
        {"erc20": {"chain": "eip155:31337", "contract": NFT_EIP55, "min_balance": "1000000000000000000"}},
        {"spl": {"cluster": "solana:mainnet", "min_balance": "1", "mint": key(1)}},
        {"all": [
            {"metaplex_collection": {"cluster": "solana:localnet", "collection": key(2)}},
            {"allow": [format!("eip155:31337:{NFT_EIP55}"), format!("solana:devnet:{}", key(3))]}
        ]}
    ]});
    assert_eq!(st.content(&id).await["policy"], canonical);

    // No policy: public. PUT replaces it, canonical too, and answers the record.
    let id = st.create_content("default policy").await;
    assert_eq!(st.content(&id).await["policy"], json!({"public": true}));
    let r = put(
        &st,
        &id,
        json!({"erc721": {"chain": "eip155:1", "contract": NFT, "token_ids": ["42", 1]}}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let want =
        json!({"erc721": {"chain": "eip155:1", "contract": NFT_EIP55, "token_ids": ["1", "42"]}});
    assert_eq!(r.json::<Value>().await.unwrap()["policy"], want);
    assert_eq!(st.content(&id).await["policy"], want);
}

#[tokio::test]
async fn bad_policies_are_refused_naming_the_field() {
    let st = Stack::load().await;
    let cases = [
        (
            json!({"any": [{"erc721": {"chain": "eip155:1", "contract": "0x1234"}}]}),
            "policy.any[0].erc721.contract: not an EVM address",
        ),
        (
            json!({"any": [{"public": false}, {"erc721": {"chain": "eip155:137", "contract": NFT}}]}),
            "policy.any[1].erc721.chain: unknown chain eip155:137 (known: eip155:1, eip155:31337, solana:",
        ),
        (
            json!({"erc1155": {"chain": "eip155:1", "contract": NFT, "token_id": "seven"}}),
            "policy.erc1155.token_id: not a uint256",
        ),
        (
            json!({"erc721": {"chain": "eip155:1", "contract": NFT, "colour": "red"}}),
            "policy.erc721.colour: unknown field",
        ),
        (
            json!({"spl": {"cluster": "solana:testnet", "mint": key(1)}}),
            "policy.spl.cluster: unknown chain solana:testnet",
        ),
        (json!({"allow": []}), "policy.allow: must not be empty"),
        (
            json!({"allow": ["0xab5801a7d398351b8be11c439e05c5b3259aec9b"]}),
            "policy.allow[0]: not a CAIP-10 account",
        ),
        (
            json!({"public": true, "allow": []}),
            "policy: expected an object with exactly one of",
        ),
        (json!(["not", "an", "object"]), "policy: expected an object"),
        (
            json!({"any": [{"any": [{"any": [{"any": [{"any": [{"any": [{"any": [{"any": [{"public": true}]}]}]}]}]}]}]}]}),
            "policy.any[0].any[0].any[0].any[0].any[0].any[0].any[0].any[0]: rules nested deeper than 8 levels",
        ),
    ];
    let id = st.create_content("policy target").await;
    for (policy, want) in cases {
        refused(post(&st, policy.clone()).await, want).await;
        refused(put(&st, &id, policy).await, want).await;
    }
    // Refused changes change nothing.
    assert_eq!(st.content(&id).await["policy"], json!({"public": true}));
}
