//! Encrypted packages end to end (`"encryption": "cenc"`): the segments in the bucket and in the
//! edge's cache are ciphertext that FFmpeg cannot decode; the key comes only from the edge's
//! ClearKey license endpoint, under the viewer's token, after the entitlement re-check, never
//! cached; a token of one content gets no key of another; tampered requests get 4xx; keys never
//! reach a log; deleting the content deletes its key.

use std::time::{Duration, Instant};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use streamgate_testkit::{
    Stack, Wallet, decode_frames, deploy, grant, make_clip, metric, node, video_psnr,
};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `POST {edge}{path}` with a raw body (what EME's ClearKey CDM sends).
async fn license(st: &Stack, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    st.http
        .post(format!("{}{path}", st.edge))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The ClearKey request for these key ids (16 bytes each).
fn clearkey_request(kids: &[&[u8]]) -> String {
    let kids: Vec<String> = kids.iter().map(|k| URL_SAFE_NO_PAD.encode(k)).collect();
    json!({"kids": kids, "type": "temporary"}).to_string()
}

/// The key id an HLS media playlist announces (`KEYID=0x…` of its `EXT-X-KEY`).
fn key_id_of(playlist: &str) -> Vec<u8> {
    let line = playlist
        .lines()
        .find(|l| l.starts_with("#EXT-X-KEY:"))
        .unwrap_or_else(|| panic!("no EXT-X-KEY in {playlist}"));
    let hexid = line.split("KEYID=0x").nth(1).expect("KEYID");
    let hexid = &hexid[..32];
    (0..16)
        .map(|i| u8::from_str_radix(&hexid[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

async fn get_ok(st: &Stack, url: &str) -> reqwest::Response {
    let r = st.http.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    r
}

async fn s3_object(st: &Stack, key: &str) -> Option<Vec<u8>> {
    let r = st
        .s3()
        .get_object()
        .bucket(&st.bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(r.body.collect().await.unwrap().into_bytes().to_vec())
}

async fn license_metric(st: &Stack, outcome: &str) -> f64 {
    metric(
        &st.metrics_page("EDGE_METRICS_URL").await,
        &format!("streamgate_edge_license_requests_total{{outcome=\"{outcome}\"}}"),
    )
}

#[tokio::test]
async fn keys_only_through_the_gate_per_viewer_never_cached() {
    let st = Stack::load().await;
    let chain = deploy(&st);
    let (alice, bob) = (Wallet::new(61), Wallet::new(62));
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
    let nft = json!({"erc721": {"chain": "eip155:31337", "contract": chain.erc721}});

    // An encrypted, NFT-gated content; the same clip packaged clear (the reference frames);
    // a second encrypted content (public) whose key a token of the first must not get.
    let clip = make_clip(320, 180, 2, true);
    let a = st
        .upload_with(
            json!({"title": "enc-a", "policy": nft, "encryption": "cenc"}),
            &clip,
        )
        .await;
    let clear = st
        .upload_with(
            json!({"title": "clear-ref", "policy": {"public": true}}),
            &clip,
        )
        .await;
    let b = st
        .upload_with(
            json!({"title": "enc-b", "policy": {"public": true}, "encryption": "cenc"}),
            &clip,
        )
        .await;
    for id in [&a, &clear, &b] {
        let v = st.wait_done(id, Duration::from_secs(180)).await;
        assert_eq!(v["status"], "ready", "{v}");
    }
    assert_eq!(st.content(&a).await["encryption"], "cenc");
    assert_eq!(st.content(&clear).await["encryption"], "none");

    // An unknown scheme is refused at creation, naming the field.
    let r = st
        .http
        .post(format!("{}/v1/contents", st.origin))
        .header("authorization", st.bearer())
        .json(&json!({"title": "x", "policy": {"public": true}, "encryption": "aes"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let body = r.text().await.unwrap();
    assert!(body.contains("encryption"), "{body}");

    // The holder's grant names the scheme and the license URL under her token.
    let sa = st.sign_in(&alice).await;
    let (s, g) = grant(&st, &a, Some(&sa)).await;
    assert_eq!(s, 200, "{g}");
    let token = g["token"].as_str().unwrap();
    let lic = format!("/p/{token}/{a}/license");
    assert_eq!(g["encryption"], "cenc");
    assert_eq!(g["license"], lic.as_str());
    let (_, gc) = grant(&st, &clear, Some(&sa)).await;
    assert!(
        gc.get("license").is_none() && gc.get("encryption").is_none(),
        "{gc}"
    );

    // The manifests announce the key system with the license URL under the viewer's token.
    let master_url = format!("{}{}", st.edge, g["hls"].as_str().unwrap());
    let master = get_ok(&st, &master_url).await.text().await.unwrap();
    assert!(
        master.contains(&format!(
            "#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES-CTR,KEYFORMAT=\"org.w3.clearkey\",KEYFORMATVERSIONS=\"1\",URI=\"{lic}\""
        )),
        "{master}"
    );
    let variant = master
        .lines()
        .find(|l| !l.starts_with('#') && l.ends_with(".m3u8"))
        .unwrap();
    let folder = variant
        .trim_end_matches("/index.m3u8")
        .rsplit('/')
        .next()
        .unwrap();
    let base = &master_url[..=master_url.rfind('/').unwrap()];
    let playlist = get_ok(&st, &format!("{base}{folder}/index.m3u8"))
        .await
        .text()
        .await
        .unwrap();
    assert!(playlist.contains(&format!("URI=\"{lic}\"")), "{playlist}");
    let kid = key_id_of(&playlist);
    let mpd = get_ok(&st, &format!("{}{}", st.edge, g["dash"].as_str().unwrap()))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        mpd.contains(&format!(
            "<dashif:Laurl Lic_type=\"EME-1.0\">{lic}</dashif:Laurl>"
        )),
        "{mpd}"
    );
    assert!(mpd.contains("value=\"cenc\""), "{mpd}");

    // The license: this content's key, no-store, never through a cache tier.
    let granted_before = license_metric(&st, "granted").await;
    let r = license(&st, &lic, clearkey_request(&[&kid])).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert!(r.headers().get("x-cache").is_none(), "{:?}", r.headers());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "temporary");
    assert_eq!(v["keys"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["keys"][0]["kty"], "oct");
    assert_eq!(v["keys"][0]["kid"], URL_SAFE_NO_PAD.encode(&kid));
    let k_b64 = v["keys"][0]["k"].as_str().unwrap().to_owned();
    let key = URL_SAFE_NO_PAD.decode(&k_b64).unwrap();
    assert_eq!(key.len(), 16);
    let key_hex = hex(&key);
    // asked again: answered again (never served from a cache)
    let r = license(&st, &lic, clearkey_request(&[&kid])).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-cache").is_none());
    assert!(license_metric(&st, "granted").await >= granted_before + 2.0);

    // Segments: what the bucket holds and what the edge's cache serves (the second fetch is
    // a cache hit) are the same ciphertext. Without the key FFmpeg gets garbage; with the key
    // from the license it decodes cleanly, every frame, to what the clear package of the same
    // clip shows (x264 runs are not bit-identical from job to job, so video is compared by
    // PSNR; the AAC encoder is deterministic, so audio frame by frame).
    for f in [folder, "audio"] {
        let init_url = format!("{base}{f}/init.mp4");
        let seg_url = format!("{base}{f}/seg-00001.m4s");
        let _ = get_ok(&st, &init_url).await.bytes().await.unwrap();
        let _ = get_ok(&st, &seg_url).await.bytes().await.unwrap();
        let r = get_ok(&st, &seg_url).await;
        assert_eq!(r.headers()["x-cache"], "HIT-L1", "{f}: a cached copy");
        let cached_seg = r.bytes().await.unwrap().to_vec();
        let cached_init = get_ok(&st, &init_url).await.bytes().await.unwrap().to_vec();
        let stored_seg = s3_object(&st, &format!("media/{a}/{f}/seg-00001.m4s"))
            .await
            .unwrap();
        let stored_init = s3_object(&st, &format!("media/{a}/{f}/init.mp4"))
            .await
            .unwrap();
        assert_eq!(cached_seg, stored_seg, "{f}: one shared encrypted object");
        assert_eq!(cached_init, stored_init);
        let clear_init = s3_object(&st, &format!("media/{clear}/{f}/init.mp4"))
            .await
            .unwrap();
        let clear_seg = s3_object(&st, &format!("media/{clear}/{f}/seg-00001.m4s"))
            .await
            .unwrap();
        let (reference, _) = decode_frames(&clear_init, &clear_seg, None);
        assert!(reference.lines().count() > 10, "{f}: {reference}");
        let (without, errors) = decode_frames(&cached_init, &cached_seg, None);
        assert!(
            without != reference || !errors.is_empty(),
            "{f}: the cached segment decodes without the key"
        );
        let (with_key, errors) = decode_frames(&cached_init, &cached_seg, Some(&key_hex));
        assert!(errors.is_empty(), "{f} with the license key: {errors}");
        assert_eq!(
            with_key.lines().count(),
            reference.lines().count(),
            "{f}: every frame decodes"
        );
        if f == "audio" {
            assert_eq!(with_key, reference, "{f}: decrypted frames differ");
        } else {
            let enc = (cached_init.as_slice(), cached_seg.as_slice());
            let reference = (clear_init.as_slice(), clear_seg.as_slice());
            let with = video_psnr(enc, Some(&key_hex), reference);
            let without = video_psnr(enc, None, reference);
            assert!(with > 30.0, "{f}: decrypted PSNR {with} dB");
            assert!(without < 20.0, "{f}: PSNR without the key {without} dB");
        }
    }

    // A token of A gets no key of B: not by B's key id at A's license, not at B's license.
    let b_master = get_ok(
        &st,
        &format!(
            "{}{}",
            st.edge,
            grant(&st, &b, Some(&sa)).await.1["hls"].as_str().unwrap()
        ),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(b_master.contains("EXT-X-SESSION-KEY"));
    let b_playlist = s3_object(&st, &format!("media/{b}/{folder}/index.m3u8"))
        .await
        .unwrap();
    let b_kid = key_id_of(std::str::from_utf8(&b_playlist).unwrap());
    assert_ne!(b_kid, kid, "every content has its own key");
    let r = license(&st, &lic, clearkey_request(&[&b_kid])).await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "unknown_key_id");
    // asked for both, it answers its own only (ClearKey: unknown ids are left out)
    let r = license(&st, &lic, clearkey_request(&[&b_kid, &kid])).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["keys"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["keys"][0]["kid"], URL_SAFE_NO_PAD.encode(&kid));
    let r = license(
        &st,
        &format!("/p/{token}/{b}/license"),
        clearkey_request(&[&b_kid]),
    )
    .await;
    assert_eq!(r.status(), 403, "A's token at B's license");
    // no token, a forged one, the clear content's license
    let r = license(
        &st,
        &format!("/p/nope/{a}/license"),
        clearkey_request(&[&kid]),
    )
    .await;
    assert_eq!(r.status(), 403);
    let clear_lic = gc["token"]
        .as_str()
        .map(|t| format!("/p/{t}/{clear}/license"))
        .unwrap();
    let r = license(&st, &clear_lic, clearkey_request(&[&kid])).await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"], "not_encrypted");

    // Tampered requests: 4xx with a JSON reason, nothing cached, no key.
    for (body, want) in [
        ("{not json".to_owned(), 400),
        (json!({"kids": []}).to_string(), 400),
        (json!({"kids": ["!!"]}).to_string(), 400),
        (
            json!({"kids": [URL_SAFE_NO_PAD.encode([1u8; 8])]}).to_string(),
            400,
        ),
        (
            json!({"kids": [URL_SAFE_NO_PAD.encode(&kid)], "type": "persistent-license"})
                .to_string(),
            400,
        ),
        (
            json!({"kids": vec![URL_SAFE_NO_PAD.encode(&kid); 17]}).to_string(),
            400,
        ),
        (" ".repeat(5000), 413),
    ] {
        let r = license(&st, &lic, body.clone()).await;
        assert_eq!(r.status(), want, "{}", &body[..body.len().min(80)]);
        assert_eq!(r.headers()["cache-control"], "no-store");
        let v: Value = r.json().await.unwrap();
        assert!(v["error"].is_string() && v.get("keys").is_none(), "{v}");
    }
    let r = st
        .http
        .get(format!("{}{lic}", st.edge))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.headers()["allow"].to_str().unwrap().contains("POST"));
    // origin's key route is internal, behind the edge key
    let r = st
        .http
        .get(format!("{}/v1/contents/{a}/key", st.origin))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let r = st
        .http
        .get(format!(
            "{}/v1/contents/{a}/key",
            st.env_value("ORIGIN_INTERNAL_URL")
        ))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    let wrapped = st
        .internal_get(&format!("/v1/contents/{a}/key"))
        .send()
        .await
        .unwrap();
    assert_eq!(wrapped.status(), 200);
    let wrapped = wrapped.text().await.unwrap();
    assert!(
        !wrapped.contains(&key_hex) && !wrapped.contains(&k_b64),
        "stored wrapped"
    );

    // Cookie mode: the same license under /c/{id}/ with the playback cookie.
    let r = st
        .http
        .get(format!("{}/v1/playback/{a}?mode=cookie", st.edge))
        .header("authorization", format!("Bearer {sa}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let gv: Value = r.json().await.unwrap();
    assert_eq!(gv["license"], format!("/c/{a}/license"));
    let r = st
        .http
        .post(format!("{}/c/{a}/license", st.edge))
        .header("cookie", &cookie)
        .body(clearkey_request(&[&kid]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = license(&st, &format!("/c/{a}/license"), clearkey_request(&[&kid])).await;
    assert_eq!(r.status(), 403, "no cookie, no key");

    // Per-viewer rate limit: bob (public B) runs into 429 + Retry-After; alice is not slowed.
    let sb = st.sign_in(&bob).await;
    let (s, gb) = grant(&st, &b, Some(&sb)).await;
    assert_eq!(s, 200, "{gb}");
    let b_lic = gb["license"].as_str().unwrap().to_owned();
    let limit: usize = 120;
    let mut limited = None;
    for n in 0..2 * limit + 2 {
        let r = license(&st, &b_lic, clearkey_request(&[&b_kid])).await;
        if r.status() == 429 {
            limited = Some((n, r.headers()["retry-after"].to_str().unwrap().to_owned()));
            break;
        }
        assert_eq!(r.status(), 200);
    }
    let (n, retry) = limited.expect("bob was never limited");
    assert!(n >= 1 && retry.parse::<u64>().unwrap() <= 60, "{n} {retry}");
    assert_eq!(
        license(&st, &lic, clearkey_request(&[&kid])).await.status(),
        200
    );
    assert!(license_metric(&st, "rate_limited").await >= 1.0);

    // Alice sells the NFT: her live token gets no new key within the entitlement TTL.
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
    let start = Instant::now();
    loop {
        let r = license(&st, &lic, clearkey_request(&[&kid])).await;
        if r.status() == 403 {
            assert_eq!(r.json::<Value>().await.unwrap()["error"], "not_entitled");
            break;
        }
        assert_eq!(r.status(), 200);
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "keys still handed out"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // …and a viewer who never held it gets no grant, hence no token to ask with
    let carol = st.sign_in(&Wallet::new(63)).await;
    assert_eq!(grant(&st, &a, Some(&carol)).await.0, 403);

    // Keys never reach a log: not in hex, not in base64url.
    let logs = std::path::Path::new(&st.env_value("STACK_DIR")).join("logs");
    for entry in std::fs::read_dir(&logs).unwrap() {
        let path = entry.unwrap().path();
        let text = String::from_utf8_lossy(&std::fs::read(&path).unwrap()).to_lowercase();
        for needle in [key_hex.clone(), k_b64.to_lowercase()] {
            assert!(!text.contains(&needle), "{} holds the key", path.display());
        }
    }

    // Deleting the content deletes its key.
    assert!(s3_object(&st, &format!("keys/{a}.json")).await.is_some());
    let r = st
        .http
        .delete(format!("{}/v1/contents/{a}", st.origin))
        .header("authorization", st.bearer())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let start = Instant::now();
    while s3_object(&st, &format!("keys/{a}.json")).await.is_some() {
        assert!(start.elapsed() < Duration::from_secs(20), "key kept");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
