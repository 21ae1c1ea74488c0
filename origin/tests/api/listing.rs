//! Creators find their contents: `GET /v1/contents?owner=me` (newest first, opaque cursor
//! pages that neither repeat nor skip when contents are created meanwhile, a status filter),
//! `PATCH /v1/contents/{id}` for title, description and tags (owner only, bad values named),
//! and the index rebuilt from the catalog by `streamgate-origin reindex` after Redis lost it.

use std::{collections::HashSet, process::Command};

use serde_json::{Value, json};
use streamgate_testkit::{Stack, Wallet};

async fn list(st: &Stack, query: &str) -> (u16, Value) {
    let r = st
        .http
        .get(format!("{}/v1/contents?{query}", st.origin))
        .header("authorization", st.bearer())
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Every page of `query` at `limit`, following cursors: the ids in order.
async fn all_pages(st: &Stack, query: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let q = match &cursor {
            Some(c) => format!("{query}&limit={limit}&cursor={c}"),
            None => format!("{query}&limit={limit}"),
        };
        let (status, body) = list(st, &q).await;
        assert_eq!(status, 200, "{body}");
        let items = body["items"].as_array().unwrap();
        assert!(items.len() <= limit);
        ids.extend(items.iter().map(|i| i["id"].as_str().unwrap().to_owned()));
        match body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return ids,
        }
    }
}

async fn patch(st: &Stack, id: &str, body: Value) -> (u16, Value) {
    let r = st
        .http
        .patch(format!("{}/v1/contents/{id}", st.origin))
        .header("authorization", st.bearer())
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn creators_list_page_and_edit_their_contents() {
    let st = Stack::load().await;
    let me = st.as_creator(st.sign_in(&Wallet::fresh()).await);
    let other = st.as_creator(st.sign_in(&Wallet::fresh()).await);
    let mut created = Vec::new();
    for i in 0..5 {
        created.push(me.create_content(&format!("listing {i}")).await);
    }
    let theirs = other.create_content("not yours").await;

    // Newest first, in pages of two, then a page after a content created mid-way: no repeat,
    // no skip, and the new one is not slipped into later pages.
    let (status, first) = list(&me, "owner=me&limit=2").await;
    assert_eq!(status, 200, "{first}");
    let newest: Vec<&str> = created.iter().rev().map(String::as_str).collect();
    let page1: Vec<&str> = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(page1, newest[..2]);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let late = me.create_content("created while paging").await;
    let mut rest = Vec::new();
    let mut c = Some(cursor);
    while let Some(cur) = c {
        let (status, body) = list(&me, &format!("limit=2&cursor={cur}")).await;
        assert_eq!(status, 200, "{body}");
        rest.extend(
            body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned()),
        );
        c = body["next_cursor"].as_str().map(str::to_owned);
    }
    assert_eq!(rest, newest[2..], "the later pages");
    assert!(!rest.contains(&late));
    // A fresh listing shows it first; nobody else's content ever appears.
    let everything = all_pages(&me, "owner=me", 3).await;
    assert_eq!(everything[0], late);
    assert_eq!(everything.len(), 6);
    assert!(!everything.contains(&theirs));
    assert_eq!(
        all_pages(&other, "owner=me", 10).await,
        vec![theirs.clone()]
    );

    // Status filter.
    assert_eq!(all_pages(&me, "status=awaiting_upload", 10).await.len(), 6);
    assert!(all_pages(&me, "status=ready", 10).await.is_empty());

    // PATCH: the owner's fields change, in the record and the listing; others are refused.
    let id = &created[0];
    let (status, rec) = patch(
        &me,
        id,
        json!({"title": "  Renamed  ", "description": "Line one\nline two", "tags": ["music", "live", "music"]}),
    )
    .await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["title"], "Renamed");
    assert_eq!(rec["tags"], json!(["music", "live"]));
    let public = st.content(id).await;
    assert_eq!(public["description"], "Line one\nline two");
    assert_eq!(public["tags"], json!(["music", "live"]));
    let listed = all_pages(&me, "owner=me", 10).await;
    assert_eq!(
        listed.len(),
        6,
        "a patch does not duplicate or drop an entry"
    );
    let (status, body) = patch(&other, id, json!({"title": "mine now"})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );
    assert_eq!(st.content(id).await["title"], "Renamed");

    // Bad input: 400 with a reason naming the field.
    for (body, field) in [
        (json!({"title": ""}), "title"),
        (json!({"title": "x".repeat(201)}), "title"),
        (json!({"title": "two\nlines"}), "title"),
        (json!({"description": "d".repeat(5001)}), "description"),
        (json!({"description": "bell\u{7}"}), "description"),
        (
            json!({"tags": (0..21).map(|i| format!("t{i}")).collect::<Vec<_>>()}),
            "tags",
        ),
        (json!({"tags": ["ok", ""]}), "tags[1]"),
        (json!({"tags": ["t".repeat(51)]}), "tags[0]"),
        (
            json!({"owner": "eip155:1:0x0000000000000000000000000000000000000001"}),
            "owner",
        ),
        (json!({}), "nothing to change"),
    ] {
        let (status, resp) = patch(&me, id, body.clone()).await;
        assert_eq!(status, 400, "{body} → {resp}");
        assert!(
            resp["message"].as_str().unwrap_or_default().contains(field)
                || resp.to_string().contains(field),
            "{body} → {resp}"
        );
    }
    for (query, field) in [
        ("owner=eip155:1:0xabc", "owner"),
        ("status=deleted", "status"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("cursor=not-a-cursor", "cursor"),
        ("cursor=MDAwMDAwMDAwMDAwMDouLi94", "cursor"),
        ("page=2", "page"),
    ] {
        let (status, resp) = list(&me, query).await;
        assert_eq!(status, 400, "{query} → {resp}");
        assert!(resp.to_string().contains(field), "{query} → {resp}");
    }
    let anonymous = st
        .http
        .get(format!("{}/v1/contents?owner=me", st.origin))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);

    // A deleted content leaves the listing.
    let gone = &created[1];
    let r = me
        .http
        .delete(format!("{}/v1/contents/{gone}", me.origin))
        .header("authorization", me.bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let listed = all_pages(&me, "owner=me", 10).await;
    assert_eq!(listed.len(), 5);
    assert!(!listed.contains(gone));

    // Redis loses the index: `streamgate-origin reindex` rebuilds it from the catalog.
    let mut con = redis::Client::open(st.env_value("REDIS_URL"))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!(
            "{}*",
            streamgate_config::contract::keys::CONTENT_INDEX_PREFIX
        ))
        .query_async(&mut con)
        .await
        .unwrap();
    let _: i64 = redis::cmd("DEL")
        .arg(&keys)
        .query_async(&mut con)
        .await
        .unwrap();
    assert!(
        all_pages(&me, "owner=me", 10).await.is_empty(),
        "the index is gone"
    );
    let out = Command::new(st.bin_dir.join("streamgate-origin"))
        .arg("--config")
        .arg(st.config_dir.join("origin.toml"))
        .arg("reindex")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("reindexed "));
    let rebuilt: HashSet<String> = all_pages(&me, "owner=me", 10).await.into_iter().collect();
    assert_eq!(rebuilt, listed.into_iter().collect::<HashSet<_>>());
    assert_eq!(
        all_pages(&me, "owner=me", 2).await[0],
        late,
        "newest first again"
    );
}
