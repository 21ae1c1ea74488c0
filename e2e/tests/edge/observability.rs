//! What operators see of each request: the access log (one JSON line per request on target
//! `streamgate::access`, sampled, failures always, never a token) and the W3C trace context
//! the edge sends upstream (a trusted balancer's `traceparent` continued, a viewer's ignored).

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::Value;
use streamgate_testkit::{PrivateEdge, Stack};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::packaged;

/// A relay in front of origin that keeps the request heads the edge sends upstream.
struct Capture {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Capture {
    async fn start(target: String) -> Capture {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let h = heads.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let (h, target) = (h.clone(), target.clone());
                tokio::spawn(async move {
                    // Every request head on this connection is recorded as it passes.
                    let Ok(mut out) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let (mut ri, mut wi) = inbound.split();
                    let (mut ro, mut wo) = out.split();
                    let up = async {
                        let mut buf = vec![0u8; 16 << 10];
                        loop {
                            let n = match ri.read(&mut buf).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                            if text.starts_with("GET ") || text.starts_with("HEAD ") {
                                h.lock().unwrap().push(text);
                            }
                            if wo.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = wo.shutdown().await;
                    };
                    let down = tokio::io::copy(&mut ro, &mut wi);
                    let _ = tokio::join!(up, down);
                });
            }
        });
        Capture { port, heads, task }
    }

    /// The `traceparent` values sent upstream so far.
    fn traceparents(&self) -> Vec<String> {
        self.heads
            .lock()
            .unwrap()
            .iter()
            .flat_map(|h| h.lines().map(str::to_owned).collect::<Vec<_>>())
            .filter_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("traceparent")
                    .then(|| v.trim().to_owned())
            })
            .collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A balancer's trace: its trace id, and the span the edge's must be the child of.
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// One segment through `edge` with the balancer's `traceparent`, read to the end (a miss:
/// the edge fetches it upstream).
async fn fetch_traced(st: &Stack, edge: &PrivateEdge, id: &str, seg: &str) {
    let token = edge.mint(st, id);
    let r = edge
        .get(
            st,
            &format!("/p/{token}/{id}/{seg}"),
            &[("traceparent", PARENT)],
        )
        .await;
    assert_eq!(r.status(), 200);
    r.bytes().await.unwrap();
}

#[tokio::test]
async fn traceparent_reaches_origin_and_only_trusted_traces_continue() {
    let st = Stack::load().await;
    let (id, _, seg) = packaged(&st, "traceparent").await;
    for (trusted, continued) in [(true, true), (false, false)] {
        let capture = Capture::start(st.origin_internal_addr()).await;
        let server = if trusted {
            "trusted-proxies = [\"127.0.0.0/8\"]"
        } else {
            ""
        };
        let edge = PrivateEdge::start_custom(
            &st,
            server,
            &format!("origin = \"127.0.0.1:{}\"", capture.port),
            "",
            "[entitlements]\nstandalone = true\n",
        )
        .await;
        fetch_traced(&st, &edge, &id, &seg).await;
        let sent = capture.traceparents();
        assert_eq!(sent.len(), 1, "{sent:?}");
        let parts: Vec<&str> = sent[0].split('-').collect();
        assert_eq!(parts.len(), 4, "{sent:?}");
        assert_eq!(parts[0], "00");
        assert_ne!(
            parts[2], "00f067aa0ba902b7",
            "the edge's own span is the parent"
        );
        assert_eq!(parts[1] == TRACE, continued, "trusted {trusted}: {sent:?}");
        assert_eq!(parts[1].len(), 32);
    }
}

#[tokio::test]
async fn access_log_lines_are_json_sampled_complete_and_token_free() {
    let st = Stack::load().await;
    let (id, _, seg) = packaged(&st, "access-log").await;
    let edge = PrivateEdge::start(
        &st,
        "[entitlements]\nstandalone = true\n[access-log]\nenabled = true\nsample = 0.25\n[log]\nformat = \"json\"\n",
    )
    .await;
    let token = edge.mint(&st, &id);
    let ok_path = format!("/p/{token}/{id}/{seg}");
    let bad = format!("{token}x");
    for _ in 0..40 {
        let r = edge.get(&st, &ok_path, &[]).await;
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    for _ in 0..5 {
        let r = edge.get(&st, &format!("/p/{bad}/{id}/{seg}"), &[]).await;
        assert_eq!(r.status(), 403);
    }
    // Lines are written after each response: wait for the last failure's.
    let lines = || -> Vec<Value> {
        std::fs::read_to_string(&edge.log)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["target"] == "streamgate::access")
            .map(|v| v["fields"].clone())
            .collect()
    };
    streamgate_testkit::eventually(
        "the access lines are written",
        Duration::from_secs(5),
        || {
            let n = lines().iter().filter(|f| f["status"] == 403).count();
            async move { n == 5 }
        },
    )
    .await;
    let all = lines();
    let ok: Vec<&Value> = all.iter().filter(|f| f["status"] == 200).collect();
    // One in four successful requests, chosen by request id; every failure.
    assert!((8..=12).contains(&ok.len()), "{} of 40 sampled", ok.len());
    for f in &ok {
        assert_eq!(f["request_id"].as_u64().unwrap() % 4, 0, "{f}");
        assert_eq!(f["content_id"], id.as_str());
        assert_eq!(f["path"], seg.as_str());
        assert_eq!(f["client"], "127.0.0.1");
        assert_eq!(f["method"], "GET");
        assert!(f["bytes"].as_u64().unwrap() > 0, "{f}");
        assert!(
            f["x_cache"].as_str().unwrap().starts_with("HIT") || f["x_cache"] == "MISS",
            "{f}"
        );
        assert!(f["ms"].as_f64().unwrap() >= 0.0);
        assert_eq!(f["trace_id"].as_str().unwrap().len(), 32, "{f}");
    }
    // The tokens never reach the log, in access lines or anywhere else.
    let log = std::fs::read_to_string(&edge.log).unwrap();
    assert!(!log.contains(&token), "a token in the log");
}

/// An OTLP/HTTP receiver (what a collector's `otlphttp` receiver does): `POST /v1/traces`
/// bodies decoded with the OTLP protobuf schema; every span kept with its service name.
struct Collector {
    port: u16,
    spans: Arc<Mutex<Vec<(String, opentelemetry_proto::tonic::trace::v1::Span)>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Collector {
    async fn start() -> Collector {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use prost::Message;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let keep = spans.clone();
        let task = tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                let keep = keep.clone();
                tokio::spawn(async move {
                    let (r, mut w) = conn.into_split();
                    let mut r = tokio::io::BufReader::new(r);
                    loop {
                        // One HTTP/1.1 request: head, then a Content-Length body.
                        let mut len = 0usize;
                        let mut first = true;
                        loop {
                            let mut line = String::new();
                            if tokio::io::AsyncBufReadExt::read_line(&mut r, &mut line)
                                .await
                                .unwrap_or(0)
                                == 0
                            {
                                return;
                            }
                            if first {
                                assert!(line.starts_with("POST /v1/traces "), "{line}");
                                first = false;
                            }
                            if let Some(v) =
                                line.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                len = v.trim().parse().unwrap();
                            }
                            if line == "\r\n" {
                                break;
                            }
                        }
                        let mut body = vec![0; len];
                        if r.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        let req = ExportTraceServiceRequest::decode(body.as_slice()).unwrap();
                        for rs in req.resource_spans {
                            let service = rs
                                .resource
                                .iter()
                                .flat_map(|r| r.attributes.iter())
                                .find(|a| a.key == "service.name")
                                .and_then(|a| a.value.as_ref())
                                .map(|v| format!("{:?}", v.value))
                                .unwrap_or_default();
                            for ss in rs.scope_spans {
                                for span in ss.spans {
                                    keep.lock().unwrap().push((service.clone(), span));
                                }
                            }
                        }
                        let ok = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                        if w.write_all(ok).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Collector { port, spans, task }
    }

    /// The spans of trace `trace` (hex) received so far: (service, span).
    fn of(&self, trace: &str) -> Vec<(String, opentelemetry_proto::tonic::trace::v1::Span)> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, s)| hex(&s.trace_id) == trace)
            .cloned()
            .collect()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// OTLP export, on: the edge's request span continues the balancer's trace, origin's request
/// span is the child of the edge's (through the `traceparent` the edge sent), both reach the
/// collector with their service names.
#[tokio::test]
async fn edge_and_origin_spans_reach_an_otlp_collector_as_one_trace() {
    let st = Stack::load().await;
    let (id, _, seg) = packaged(&st, "otlp").await;
    let collector = Collector::start().await;
    let log = format!(
        "[log]\notlp-endpoint = \"http://127.0.0.1:{}\"\n",
        collector.port
    );
    let origin = streamgate_testkit::PrivateOrigin::start_with(&st, "", "", &log).await;
    let edge = PrivateEdge::start_custom(
        &st,
        "trusted-proxies = [\"127.0.0.0/8\"]",
        &format!(
            "origin = \"{}\"",
            origin.internal_url.trim_start_matches("http://")
        ),
        "",
        &format!("[entitlements]\nstandalone = true\n{log}"),
    )
    .await;
    fetch_traced(&st, &edge, &id, &seg).await;

    let trace = TRACE;
    streamgate_testkit::eventually("both services exported", Duration::from_secs(20), || {
        let services: Vec<String> = collector.of(trace).into_iter().map(|(s, _)| s).collect();
        async move {
            services.iter().any(|s| s.contains("streamgate-proxy"))
                && services.iter().any(|s| s.contains("streamgate-origin"))
        }
    })
    .await;
    let spans = collector.of(trace);
    let edge_span = spans
        .iter()
        .find(|(s, sp)| s.contains("streamgate-proxy") && sp.name == "request")
        .map(|(_, sp)| sp.clone())
        .expect("the edge's request span");
    assert_eq!(
        hex(&edge_span.parent_span_id),
        "00f067aa0ba902b7",
        "child of the balancer's"
    );
    let origin_span = spans
        .iter()
        .find(|(s, sp)| s.contains("streamgate-origin") && sp.name == "request")
        .map(|(_, sp)| sp.clone())
        .expect("origin's request span");
    assert_eq!(
        origin_span.parent_span_id, edge_span.span_id,
        "origin's span is the child of the edge's"
    );
    assert!(origin_span.end_time_unix_nano >= origin_span.start_time_unix_nano);
}
