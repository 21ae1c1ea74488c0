//! The creators' content index in Redis, for `GET /v1/contents`: each owner's contents newest
//! first, overall and per status. The catalog in S3 stays the truth: the index is written by
//! the catalog's single writer after every record write (under the content's lock), and
//! `streamgate-origin reindex` rebuilds it from the catalog if Redis lost it.
//!
//! ```text
//!  sg:idx:{owner}:all        sorted set, all scores 0, members "{9999999999999 - created_at:013}:{id}"
//!  sg:idx:{owner}:{status}   the same, per status            (lexicographic order = newest first)
//!  sg:idx:pos:{id}           hash {owner, member, status}: where a content stands (to move it)
//! ```
//!
//! Pages are ranges of members after the cursor (`ZRANGE … BYLEX`), never offsets: a content
//! created while someone pages sorts before every cursor already handed out, so later pages
//! neither repeat nor skip anything. Cursors are the last member, base64url: opaque to clients.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use redis::aio::ConnectionManager;
use streamgate_config::contract::keys;

use crate::catalog::{ContentRecord, Status};

/// Moves a content to its place (or removes it, with an empty status) atomically.
/// `KEYS[1]`: the content's position hash; `ARGV`: id, owner, member, status, key prefix. Keys
/// are built inside (one Redis, not a Cluster: origin's Redis is a single primary).
const PUT_SCRIPT: &str = r"
local pos = KEYS[1]
local p = ARGV[5]
local old = redis.call('HMGET', pos, 'owner', 'member', 'status')
if old[1] then
  redis.call('ZREM', p .. old[1] .. ':all', old[2])
  redis.call('ZREM', p .. old[1] .. ':' .. old[3], old[2])
end
if ARGV[4] == '' then
  redis.call('DEL', pos)
  return 0
end
redis.call('ZADD', p .. ARGV[2] .. ':all', 0, ARGV[3])
redis.call('ZADD', p .. ARGV[2] .. ':' .. ARGV[4], 0, ARGV[3])
redis.call('HSET', pos, 'owner', ARGV[2], 'member', ARGV[3], 'status', ARGV[4])
return 1
";

/// Newest first: the reversed creation time, then the id (a total order).
fn member(rec: &ContentRecord) -> String {
    format!(
        "{:013}:{}",
        9_999_999_999_999u64.saturating_sub(rec.created_at),
        rec.id
    )
}

/// The status as stored (the API's snake_case name).
pub(crate) fn status_name(s: Status) -> &'static str {
    match s {
        Status::AwaitingUpload => "awaiting_upload",
        Status::Uploading => "uploading",
        Status::Processing => "processing",
        Status::Ready => "ready",
        Status::Failed => "failed",
        Status::Deleted => "deleted",
    }
}

/// The index.
#[derive(Clone)]
pub(crate) struct ContentIndex {
    redis: ConnectionManager,
    script: redis::Script,
}

/// One page of an owner's contents.
pub(crate) struct Page {
    /// Content ids, newest first.
    pub(crate) ids: Vec<String>,
    /// Where the next page starts, if there is one.
    pub(crate) next: Option<String>,
}

impl ContentIndex {
    pub(crate) fn new(redis: ConnectionManager) -> Self {
        Self {
            redis,
            script: redis::Script::new(PUT_SCRIPT),
        }
    }

    /// Puts `rec` where it belongs (a deleted or ownerless record leaves the index).
    pub(crate) async fn put(&self, rec: &ContentRecord) -> redis::RedisResult<()> {
        let status = match (&rec.owner, rec.status) {
            (Some(_), s) if s != Status::Deleted => status_name(s),
            _ => "",
        };
        let mut con = self.redis.clone();
        let _: i64 = self
            .script
            .key(keys::content_position(&rec.id))
            .arg(&rec.id)
            .arg(rec.owner.as_deref().unwrap_or_default())
            .arg(member(rec))
            .arg(status)
            .arg(keys::CONTENT_INDEX_PREFIX)
            .invoke_async(&mut con)
            .await?;
        Ok(())
    }

    /// One page of `owner`'s contents (with `status` only, if given), after `cursor`.
    ///
    /// # Errors
    /// A cursor that is not one of ours (`Ok(None)`), or Redis.
    pub(crate) async fn page(
        &self,
        owner: &str,
        status: Option<Status>,
        limit: usize,
        cursor: Option<&str>,
    ) -> redis::RedisResult<Option<Page>> {
        let after = match cursor {
            None => "-".to_owned(),
            Some(c) => match decode_cursor(c) {
                Some(m) => format!("({m}"),
                None => return Ok(None),
            },
        };
        let key = keys::content_index(owner, status.map_or("all", status_name));
        let mut con = self.redis.clone();
        let mut members: Vec<String> = redis::cmd("ZRANGE")
            .arg(&key)
            .arg(&after)
            .arg("+")
            .arg("BYLEX")
            .arg("LIMIT")
            .arg(0)
            .arg(limit + 1)
            .query_async(&mut con)
            .await?;
        let next = (members.len() > limit).then(|| {
            members.truncate(limit);
            URL_SAFE_NO_PAD.encode(members[limit - 1].as_bytes())
        });
        let ids = members
            .iter()
            .filter_map(|m| m.split_once(':').map(|(_, id)| id.to_owned()))
            .collect();
        Ok(Some(Page { ids, next }))
    }

    /// Empties the index (before a rebuild); returns the keys removed.
    pub(crate) async fn clear(&self) -> redis::RedisResult<usize> {
        let mut con = self.redis.clone();
        let mut keys: Vec<String> = Vec::new();
        {
            let mut it: redis::AsyncIter<'_, String> = redis::cmd("SCAN")
                .cursor_arg(0)
                .arg("MATCH")
                .arg(format!("{}*", keys::CONTENT_INDEX_PREFIX))
                .arg("COUNT")
                .arg(1000)
                .clone()
                .iter_async(&mut con)
                .await?;
            while let Some(k) = it.next_item().await {
                keys.push(k?);
            }
        }
        for chunk in keys.chunks(500) {
            let _: i64 = redis::cmd("UNLINK")
                .arg(chunk)
                .query_async(&mut con)
                .await?;
        }
        Ok(keys.len())
    }
}

/// A cursor back to the member it names, if it is one of ours.
fn decode_cursor(c: &str) -> Option<String> {
    let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(c).ok()?).ok()?;
    let (ts, id) = raw.split_once(':')?;
    (ts.len() == 13
        && ts.bytes().all(|b| b.is_ascii_digit())
        && streamgate_config::contract::is_valid_content_id(id))
    .then_some(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_sort_newest_first_and_cursors_round_trip() {
        let rec = |id: &str, at: u64| ContentRecord {
            id: id.into(),
            title: "t".into(),
            description: None,
            tags: Vec::new(),
            owner: Some("eip155:1:0xabc".into()),
            status: Status::Ready,
            progress: 100.0,
            policy: serde_json::json!({"public": true}),
            renditions: Vec::new(),
            duration_s: None,
            error: None,
            has_audio: None,
            artwork: None,
            poster: None,
            storyboard: None,
            captions: Vec::new(),
            audio: Vec::new(),
            encryption: Default::default(),
            upload_id: None,
            created_at: at,
            updated_at: at,
        };
        let (old, new) = (
            member(&rec("a", 1_700_000_000_000)),
            member(&rec("b", 1_700_000_000_001)),
        );
        assert!(new < old, "{new} sorts before {old}");
        let c = URL_SAFE_NO_PAD.encode(old.as_bytes());
        assert_eq!(decode_cursor(&c).as_deref(), Some(old.as_str()));
        for bad in [
            "",
            "!!",
            "eA",
            &URL_SAFE_NO_PAD.encode("12:abc"),
            &URL_SAFE_NO_PAD.encode("0000000000000:../x"),
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad:?}");
        }
    }
}
