//! End to end against a private `redis-server` and `s3s-fs`: a job becomes a package in S3 and
//! a `ready` event, a malformed job is dead-lettered, a text upload fails permanently.
//!
//! Both run on reserved ports (`streamgate-testkit`); a missing server fails the test.

mod utils;

use std::time::{Duration, Instant};

use redis::AsyncCommands;
use streamgate_config::{
    EncryptionConfig, FfmpegConfig, LogConfig, MetricsConfig, RedisConfig, S3Config, Secret,
    TranscoderConfig, WorkerConfig,
    contract::{EVENTS_STREAM, Encryption, Event, JOBS_DEAD_LETTER, JOBS_GROUP, JOBS_STREAM, Job},
};
use streamgate_testkit::{
    PrivateRedis, PrivateS3, decode_frames, make_clip_at as make_clip, video_psnr,
};
use streamgate_transcoder::run_until;
use tokio::sync::watch;
use utils::small_ladder;

fn config(st: &Stack) -> TranscoderConfig {
    TranscoderConfig {
        worker: WorkerConfig {
            name: "w1".into(),
            block: Duration::from_millis(200),
            ..WorkerConfig::default()
        },
        metrics: MetricsConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
        },
        s3: S3Config {
            endpoint: st.s3.endpoint.clone(),
            region: "us-east-1".into(),
            bucket: "media-test".into(),
            force_path_style: true,
            access_key: Secret::new(st.s3.access_key.clone()),
            secret_key: Secret::new(st.s3.secret_key.clone()),
            create_bucket: true,
        },
        redis: RedisConfig {
            url: st.redis.url(),
            command_timeout: Duration::from_secs(2),
        },
        ffmpeg: FfmpegConfig {
            preset: "ultrafast".into(),
            segment_seconds: 2,
            ..FfmpegConfig::default()
        },
        ladder: small_ladder(),
        log: LogConfig::default(),
        encryption: None,
    }
}

/// The key-encryption key the encrypted-job test configures (hex of 32 bytes).
const KEK_HEX: &str = "6b656b2d666f722d7468652d7472616e73636f6465722d7465737473212121ff";

fn encryption() -> EncryptionConfig {
    EncryptionConfig {
        wrapping_key: "k1".into(),
        keys: vec![("k1".into(), Secret::new(KEK_HEX))],
    }
}

async fn put_source(s3: &aws_sdk_s3::Client, id: &str, path: &std::path::Path) {
    let body = aws_sdk_s3::primitives::ByteStream::from_path(path)
        .await
        .unwrap();
    s3.put_object()
        .bucket("media-test")
        .key(format!("uploads/{id}/source"))
        .body(body)
        .send()
        .await
        .unwrap();
}

async fn get(s3: &aws_sdk_s3::Client, key: &str) -> Vec<u8> {
    let r = s3
        .get_object()
        .bucket("media-test")
        .key(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{key}: {e}"));
    r.body.collect().await.unwrap().into_bytes().to_vec()
}

fn job(id: &str) -> String {
    job_with(id, None)
}

fn job_with(id: &str, encryption: Option<Encryption>) -> String {
    serde_json::to_string(&Job {
        content_id: id.into(),
        source_key: format!("uploads/{id}/source"),
        enqueued_at_ms: 0,
        encryption,
    })
    .unwrap()
}

/// Final events (`ready` / `failed`) seen so far, by content id.
async fn final_events(conn: &mut redis::aio::MultiplexedConnection) -> Vec<Event> {
    let reply: redis::streams::StreamRangeReply = conn.xrange_all(EVENTS_STREAM).await.unwrap();
    reply
        .ids
        .iter()
        .filter_map(|e| serde_json::from_str::<Event>(&e.get::<String>("data")?).ok())
        .filter(|e| matches!(e, Event::Ready { .. } | Event::Failed { .. }))
        .collect()
}

/// A private Redis and S3 for one test (started by the test kit, on reserved ports); both are
/// killed on drop. A missing `redis-server` or `s3s-fs` fails the test: `make setup` installs
/// them.
struct Stack {
    redis: PrivateRedis,
    s3: PrivateS3,
    tmp: tempfile::TempDir,
}

fn stack() -> Stack {
    Stack {
        redis: PrivateRedis::start(),
        s3: PrivateS3::start(),
        tmp: tempfile::tempdir().unwrap(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn job_to_ready_package() {
    let st = stack();
    let tmp = &st.tmp;
    let cfg = config(&st);
    let s3 = streamgate_transcoder::s3::client(&cfg.s3);
    s3.create_bucket()
        .bucket("media-test")
        .send()
        .await
        .unwrap();
    let clip = tmp.path().join("clip.mp4");
    make_clip(&clip, 640, 360, 4, true);
    for (id, path) in [("good", clip.clone()), ("text", tmp.path().join("t.txt"))] {
        if id == "text" {
            std::fs::write(&path, "not a video").unwrap();
        }
        put_source(&s3, id, &path).await;
    }
    let client = redis::Client::open(cfg.redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // Enqueued before any worker exists: the group is created from 0, so nothing is lost.
    for data in [job("good"), "{not json".to_owned(), job("text")] {
        let _: String = conn
            .xadd(JOBS_STREAM, "*", &[("data", data)])
            .await
            .unwrap();
    }

    let (stop, shutdown) = watch::channel(false);
    let service = tokio::spawn(run_until(cfg, shutdown));
    let deadline = Instant::now() + Duration::from_secs(60);
    let events = loop {
        let events = final_events(&mut conn).await;
        if events.len() >= 2 {
            break events;
        }
        assert!(Instant::now() < deadline, "no final events: {events:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop.send(true).unwrap();
    service.await.unwrap().unwrap();

    let ready = events
        .iter()
        .find_map(|e| match e {
            Event::Ready {
                content_id,
                renditions,
                duration_s,
                has_audio,
                artwork,
                ..
            } if content_id == "good" => {
                Some((renditions.clone(), *duration_s, *has_audio, artwork.clone()))
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no ready event: {events:?}"));
    assert_eq!(
        ready.0.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        ["180p", "360p"]
    );
    assert!((ready.1 - 4.0).abs() < 0.5 && ready.2);
    // The artwork of the same run travels with the event.
    let art = ready.3.expect("artwork in the ready event");
    assert_eq!(art.storyboard, "thumbs/storyboard.vtt");
    assert_eq!(
        art.iframe_playlists,
        ["180p/iframes.m3u8", "360p/iframes.m3u8"]
    );
    assert!(events.iter().any(|e| matches!(e,
        Event::Failed { content_id, error } if content_id == "text" && error.contains("no video or audio stream found"))));

    let pending: redis::streams::StreamPendingReply =
        conn.xpending(JOBS_STREAM, JOBS_GROUP).await.unwrap();
    assert_eq!(pending.count(), 0, "every job acknowledged");
    let dead: usize = conn.xlen(JOBS_DEAD_LETTER).await.unwrap();
    assert_eq!(dead, 1, "the malformed job is dead-lettered");

    let master = s3
        .get_object()
        .bucket("media-test")
        .key("media/good/master.m3u8")
        .send()
        .await
        .unwrap();
    assert_eq!(master.content_type(), Some("application/vnd.apple.mpegurl"));
    let listed = s3
        .list_objects_v2()
        .bucket("media-test")
        .prefix("media/good/")
        .send()
        .await
        .unwrap();
    let keys: Vec<_> = listed.contents().iter().filter_map(|o| o.key()).collect();
    for k in [
        "media/good/manifest.mpd",
        "media/good/360p/index.m3u8",
        "media/good/360p/init.mp4",
        "media/good/360p/seg-00001.m4s",
        "media/good/audio/index.m3u8",
    ] {
        assert!(keys.contains(&k), "{k} not in {keys:?}");
    }
}

/// An encrypted job: the key is stored wrapped (and unwraps only with the KEK, for this
/// content), every init and media segment is Common Encryption (`encv`/`enca`, `pssh`,
/// `senc`), decodes bit-exact with the key and not without it, and the manifests announce
/// the ClearKey key. A transcoder without `[encryption]` fails such a job with a reason.
#[tokio::test(flavor = "multi_thread")]
async fn encrypted_job_needs_the_key_it_stores_wrapped() {
    let st = stack();
    let tmp = &st.tmp;
    let mut cfg = config(&st);
    cfg.encryption = Some(encryption());
    let s3 = streamgate_transcoder::s3::client(&cfg.s3);
    s3.create_bucket()
        .bucket("media-test")
        .send()
        .await
        .unwrap();
    let clip = tmp.path().join("clip.mp4");
    make_clip(&clip, 640, 360, 4, true);
    for id in ["enc", "clear", "nokeys"] {
        put_source(&s3, id, &clip).await;
    }
    let client = redis::Client::open(cfg.redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for data in [
        job_with("enc", Some(Encryption::Cenc)),
        job_with("clear", Some(Encryption::None)),
    ] {
        let _: String = conn
            .xadd(JOBS_STREAM, "*", &[("data", data)])
            .await
            .unwrap();
    }
    let (stop, shutdown) = watch::channel(false);
    let service = tokio::spawn(run_until(cfg.clone(), shutdown));
    let deadline = Instant::now() + Duration::from_secs(90);
    let events = loop {
        let events = final_events(&mut conn).await;
        if events.len() >= 2 {
            break events;
        }
        assert!(Instant::now() < deadline, "no final events: {events:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop.send(true).unwrap();
    service.await.unwrap().unwrap();
    assert!(
        events.iter().all(|e| matches!(e, Event::Ready { .. })),
        "{events:?}"
    );

    // The stored key: wrapped, bound to this content.
    let stored: streamgate_auth::WrappedKey =
        serde_json::from_slice(&get(&s3, "keys/enc.json").await).unwrap();
    let wrapper =
        streamgate_auth::KeyWrapper::new("k1", &[("k1".into(), hex::decode(KEK_HEX).unwrap())])
            .unwrap();
    assert!(
        wrapper.unwrap("clear", &stored).is_err(),
        "bound to its content"
    );
    let key = wrapper.unwrap("enc", &stored).unwrap();
    let clear_has_no_key = s3
        .get_object()
        .bucket("media-test")
        .key("keys/clear.json")
        .send()
        .await;
    assert!(clear_has_no_key.is_err(), "a clear content has no key");

    let kid = key.kid_hex().to_ascii_uppercase();
    for folder in ["180p", "360p", "audio"] {
        let init = get(&s3, &format!("media/enc/{folder}/init.mp4")).await;
        let contains = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        assert!(
            contains(&init, b"pssh") && contains(&init, b"tenc") && contains(&init, &key.kid())
        );
        assert!(contains(
            &init,
            if folder == "audio" { b"enca" } else { b"encv" }
        ));
        let seg = get(&s3, &format!("media/enc/{folder}/seg-00001.m4s")).await;
        assert!(contains(&seg, b"senc") && contains(&seg, b"saio"));
        let (with_key, errors) = decode_frames(&init, &seg, Some(&key.key_hex()));
        assert!(errors.is_empty(), "{folder} with the key: {errors}");
        assert!(with_key.lines().count() > 10, "{folder}: {with_key}");
        // The same segment of the clear package (same source, same encoder settings) shows
        // the same pictures: x264 is not bit-identical from job to job, so video is compared
        // by PSNR (the bit-exact check is `cenc`'s unit test, on one encode); the AAC encoder
        // is deterministic, so audio frame by frame.
        let clear_init = get(&s3, &format!("media/clear/{folder}/init.mp4")).await;
        let clear_seg = get(&s3, &format!("media/clear/{folder}/seg-00001.m4s")).await;
        let (clear, _) = decode_frames(&clear_init, &clear_seg, None);
        assert_eq!(with_key.lines().count(), clear.lines().count(), "{folder}");
        if folder == "audio" {
            assert_eq!(with_key, clear, "{folder}: decrypted frames differ");
        } else {
            let enc = (init.as_slice(), seg.as_slice());
            let reference = (clear_init.as_slice(), clear_seg.as_slice());
            let psnr = video_psnr(enc, Some(&key.key_hex()), reference);
            assert!(psnr > 30.0, "{folder}: decrypted PSNR {psnr} dB");
            let psnr = video_psnr(enc, None, reference);
            assert!(psnr < 20.0, "{folder}: PSNR without the key {psnr} dB");
        }
        let (without, errors) = decode_frames(&init, &seg, None);
        assert!(
            without != clear || !errors.is_empty(),
            "{folder} decodes without the key"
        );
        let wrong = "00000000000000000000000000000000";
        let (wrong_key, _) = decode_frames(&init, &seg, Some(wrong));
        assert_ne!(wrong_key, clear, "{folder} decodes with a wrong key");
        let playlist =
            String::from_utf8(get(&s3, &format!("media/enc/{folder}/index.m3u8")).await).unwrap();
        assert!(playlist.contains(&format!(
            "#EXT-X-KEY:METHOD=SAMPLE-AES-CTR,KEYFORMAT=\"org.w3.clearkey\",KEYFORMATVERSIONS=\"1\",URI=\"/v/enc/license\",KEYID=0x{kid}"
        )), "{playlist}");
    }
    let master = String::from_utf8(get(&s3, "media/enc/master.m3u8").await).unwrap();
    assert!(
        master.contains("#EXT-X-SESSION-KEY:METHOD=SAMPLE-AES-CTR"),
        "{master}"
    );
    let iframes = String::from_utf8(get(&s3, "media/enc/360p/iframes.m3u8").await).unwrap();
    assert!(
        iframes.contains("#EXT-X-KEY:METHOD=SAMPLE-AES-CTR"),
        "{iframes}"
    );
    let mpd = String::from_utf8(get(&s3, "media/enc/manifest.mpd").await).unwrap();
    assert!(mpd.contains("urn:uuid:e2719d58-a985-b3c9-781a-b030af78d30e"));
    assert!(mpd.contains("<dashif:Laurl Lic_type=\"EME-1.0\">/v/enc/license</dashif:Laurl>"));
    let clear_mpd = String::from_utf8(get(&s3, "media/clear/manifest.mpd").await).unwrap();
    assert!(!clear_mpd.contains("ContentProtection"));

    // Without [encryption] the job fails, with the reason, and nothing is published.
    let mut plain = config(&st);
    plain.encryption = None;
    let _: String = conn
        .xadd(
            JOBS_STREAM,
            "*",
            &[("data", job_with("nokeys", Some(Encryption::Cenc)))],
        )
        .await
        .unwrap();
    let (stop, shutdown) = watch::channel(false);
    let service = tokio::spawn(run_until(plain, shutdown));
    let deadline = Instant::now() + Duration::from_secs(60);
    let failed = loop {
        let found = final_events(&mut conn)
            .await
            .into_iter()
            .find_map(|e| match e {
                Event::Failed { content_id, error } if content_id == "nokeys" => Some(error),
                _ => None,
            });
        if let Some(f) = found {
            break f;
        }
        assert!(Instant::now() < deadline, "no failure for nokeys");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop.send(true).unwrap();
    service.await.unwrap().unwrap();
    assert!(failed.contains("[encryption]"), "{failed}");
    let listed = s3
        .list_objects_v2()
        .bucket("media-test")
        .prefix("media/nokeys/")
        .send()
        .await
        .unwrap();
    assert!(listed.contents().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn abandoned_job_is_reclaimed_then_dead_lettered() {
    let st = stack();
    let mut cfg = config(&st);
    cfg.worker.reclaim_idle = Duration::from_millis(300);
    cfg.worker.heartbeat = Duration::from_millis(100);
    cfg.worker.max_attempts = 2;
    let s3 = streamgate_transcoder::s3::client(&cfg.s3);
    s3.create_bucket()
        .bucket("media-test")
        .send()
        .await
        .unwrap();
    let clip = st.tmp.path().join("clip.mp4");
    make_clip(&clip, 320, 180, 2, false);
    let body = aws_sdk_s3::primitives::ByteStream::from_path(&clip)
        .await
        .unwrap();
    s3.put_object()
        .bucket("media-test")
        .key("uploads/lost/source")
        .body(body)
        .send()
        .await
        .unwrap();
    let client = redis::Client::open(cfg.redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("XGROUP")
        .arg(&["CREATE", JOBS_STREAM, JOBS_GROUP, "0", "MKSTREAM"])
        .query_async(&mut conn)
        .await
        .unwrap();
    // Two jobs taken by a worker that then "dies": one delivered once (reclaimed as attempt 2
    // of 2, finished), one already delivered 3 times (over the limit: dead-lettered, failed).
    let _: String = conn
        .xadd(JOBS_STREAM, "*", &[("data", job("lost"))])
        .await
        .unwrap();
    let cursed: String = conn
        .xadd(JOBS_STREAM, "*", &[("data", job("cursed"))])
        .await
        .unwrap();
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg(&[
            "GROUP",
            JOBS_GROUP,
            "dead",
            "COUNT",
            "2",
            "STREAMS",
            JOBS_STREAM,
            ">",
        ])
        .query_async(&mut conn)
        .await
        .unwrap();
    let _: redis::Value = redis::cmd("XCLAIM")
        .arg(&[
            JOBS_STREAM,
            JOBS_GROUP,
            "dead",
            "0",
            &cursed,
            "RETRYCOUNT",
            "3",
            "JUSTID",
        ])
        .query_async(&mut conn)
        .await
        .unwrap();
    let (stop, shutdown) = watch::channel(false);
    let service = tokio::spawn(run_until(cfg, shutdown));
    let deadline = Instant::now() + Duration::from_secs(60);
    let events = loop {
        let events = final_events(&mut conn).await;
        if events.len() >= 2 {
            break events;
        }
        assert!(Instant::now() < deadline, "no final events: {events:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    stop.send(true).unwrap();
    service.await.unwrap().unwrap();
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Ready { content_id, .. } if content_id == "lost")),
        "{events:?}"
    );
    assert!(events.iter().any(|e| matches!(e,
        Event::Failed { content_id, error } if content_id == "cursed" && error.starts_with("gave up after 2 attempts"))),
        "{events:?}");
    let pending: redis::streams::StreamPendingReply =
        conn.xpending(JOBS_STREAM, JOBS_GROUP).await.unwrap();
    assert_eq!(pending.count(), 0);
    let dead: usize = conn.xlen(JOBS_DEAD_LETTER).await.unwrap();
    assert_eq!(dead, 1);
}
