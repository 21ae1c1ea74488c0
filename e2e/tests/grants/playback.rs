//! Playback grants at the real edge against real ERC-721/1155/20 contracts on the stack's
//! anvil: a holder gets a grant and plays, a non-holder gets 403, a transfer moves access
//! within the entitlement TTL, and sessions are checked (401) before anything else.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use streamgate_testkit::{Stack, Wallet, deploy, grant, make_clip, node};

/// Polls until the grant answers `want` (entitlement TTLs are seconds in the stack).
async fn eventually(st: &Stack, id: &str, session: &str, want: u16) {
    let start = Instant::now();
    loop {
        let (s, body) = grant(st, id, Some(session)).await;
        if s == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "still {s} {body}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn holders_get_grants_and_lose_them_after_a_transfer() {
    let st = Stack::load().await;
    let chain = deploy(&st);
    let (alice, bob) = (Wallet::new(21), Wallet::new(22));
    node(
        "tokens.mjs",
        &[
            "mint",
            &chain.rpc,
            "erc721",
            &chain.erc721,
            &alice.address,
            "1",
        ],
    );

    // A real, packaged video gated by the ERC-721.
    let clip = make_clip(320, 180, 2, false);
    let policy = json!({"erc721": {"chain": "eip155:31337", "contract": chain.erc721}});
    let id = st.upload_with_policy("nft-gated", &clip, policy).await;
    assert_eq!(
        st.wait_done(&id, Duration::from_secs(120)).await["status"],
        "ready"
    );

    let a = st.sign_in(&alice).await;
    let b = st.sign_in(&bob).await;

    // sessions first
    assert_eq!(grant(&st, &id, None).await.0, 401);
    assert_eq!(grant(&st, &id, Some("not.a.jwt")).await.0, 401);
    // unknown content
    assert_eq!(grant(&st, "nosuchcontent", Some(&a)).await.0, 404);

    // the holder plays
    let (s, body) = grant(&st, &id, Some(&a)).await;
    assert_eq!(s, 200, "{body}");
    let hls = body["hls"].as_str().unwrap();
    assert!(
        hls.starts_with("/p/") && hls.ends_with(&format!("/{id}/master.m3u8")),
        "{hls}"
    );
    assert!(body["dash"].as_str().unwrap().ends_with("/manifest.mpd"));
    assert!(body["token"].is_string() && body["expires_at"].is_string());
    let master_url = format!("{}{hls}", st.edge);
    let r = st.http.get(&master_url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let master = r.text().await.unwrap();
    assert!(master.starts_with("#EXTM3U"));
    // remember a segment of alice's live token, to fetch after she sells
    let variant = master.lines().find(|l| l.ends_with(".m3u8")).unwrap();
    let base = &master_url[..=master_url.rfind('/').unwrap()];
    let variant_url = format!("{base}{variant}");
    let playlist = st
        .http
        .get(&variant_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let seg = playlist.lines().rfind(|l| l.ends_with(".m4s")).unwrap();
    let seg_url = format!("{}{seg}", &variant_url[..=variant_url.rfind('/').unwrap()]);
    // ?redirect=hls answers 302 to the tokenized playlist
    let no_follow = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_follow
        .get(format!("{}/v1/playback/{id}?redirect=hls", st.edge))
        .header("authorization", format!("Bearer {a}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .ends_with("/master.m3u8")
    );

    // a non-holder is refused
    let (s, body) = grant(&st, &id, Some(&b)).await;
    assert_eq!(
        (s, body["error"].as_str()),
        (403, Some("not_entitled")),
        "{body}"
    );

    // the NFT changes hands: within the TTLs the new holder gets in, the old one is out
    node(
        "tokens.mjs",
        &[
            "transfer",
            &chain.rpc,
            "erc721",
            &chain.erc721,
            &alice.address,
            &bob.address,
            "1",
        ],
    );
    eventually(&st, &id, &b, 200).await;
    eventually(&st, &id, &a, 403).await;
    // alice's live token: playlists re-check the entitlement and refuse within the TTL…
    let start = Instant::now();
    loop {
        let r = st.http.get(&master_url).send().await.unwrap();
        if r.status() == 403 {
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["error"], "not_entitled", "{v}");
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "playlist still served"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // …while segments rely on the token alone
    assert_eq!(st.http.get(&seg_url).send().await.unwrap().status(), 200);
    // the creator (owner) is always allowed
    assert_eq!(grant(&st, &id, Some(&st.session)).await.0, 200);
}

#[tokio::test]
async fn erc1155_erc20_and_combinations() {
    let st = Stack::load().await;
    let chain = deploy(&st);
    let (carol, dave) = (Wallet::new(23), Wallet::new(24));
    node(
        "tokens.mjs",
        &[
            "mint",
            &chain.rpc,
            "erc1155",
            &chain.erc1155,
            &carol.address,
            "7",
            "2",
        ],
    );
    node(
        "tokens.mjs",
        &[
            "mint",
            &chain.rpc,
            "erc1155",
            &chain.erc1155,
            &dave.address,
            "7",
            "1",
        ],
    );
    node(
        "tokens.mjs",
        &[
            "mint",
            &chain.rpc,
            "erc20",
            &chain.erc20,
            &dave.address,
            "1000",
        ],
    );
    let c = st.sign_in(&carol).await;
    let d = st.sign_in(&dave).await;
    let clip = make_clip(320, 180, 2, false);

    let at_least_two = json!({"erc1155": {"chain": "eip155:31337", "contract": chain.erc1155, "token_id": "7", "min_balance": "2"}});
    let id = st.upload_with_policy("1155", &clip, at_least_two).await;
    let erc20_1000 =
        json!({"erc20": {"chain": "eip155:31337", "contract": chain.erc20, "min_balance": "1000"}});
    let id20 = st.upload_with_policy("erc20", &clip, erc20_1000).await;
    let both = json!({"all": [
        {"erc1155": {"chain": "eip155:31337", "contract": chain.erc1155, "token_id": "7"}},
        {"erc20": {"chain": "eip155:31337", "contract": chain.erc20, "min_balance": "1001"}}
    ]});
    let id_all = st.upload_with_policy("all", &clip, both).await;
    let either = json!({"any": [
        {"erc20": {"chain": "eip155:31337", "contract": chain.erc20, "min_balance": "1"}},
        {"allow": [format!("eip155:31337:{}", carol.address)]}
    ]});
    let id_any = st.upload_with_policy("any", &clip, either).await;
    for i in [&id, &id20, &id_all, &id_any] {
        assert_eq!(
            st.wait_done(i, Duration::from_secs(120)).await["status"],
            "ready"
        );
    }

    // min_balance boundaries: 2 passes, 1 does not
    assert_eq!(grant(&st, &id, Some(&c)).await.0, 200);
    assert_eq!(grant(&st, &id, Some(&d)).await.0, 403);
    // ERC-20: exactly the minimum passes; carol holds none
    assert_eq!(grant(&st, &id20, Some(&d)).await.0, 200);
    assert_eq!(grant(&st, &id20, Some(&c)).await.0, 403);
    // all: dave has the 1155 but only 1000 < 1001 of the ERC-20
    assert_eq!(grant(&st, &id_all, Some(&d)).await.0, 403);
    // any: dave by ERC-20, carol by the allow-list
    assert_eq!(grant(&st, &id_any, Some(&d)).await.0, 200);
    assert_eq!(grant(&st, &id_any, Some(&c)).await.0, 200);
    assert_eq!(
        grant(&st, &id_any, Some(&st.sign_in(&Wallet::new(25)).await))
            .await
            .0,
        403
    );
}
