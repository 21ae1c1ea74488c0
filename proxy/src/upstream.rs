//! Where a gated request goes and what it looks like on the way: the origin peer, the rewrite
//! of `/p/{token}/{id}/{path}` to origin's `/v/{id}/{path}`, and the cache key.
//!
//! The token stops here. It is not in the upstream path, not in any forwarded header, and not
//! in the cache key, so every viewer of an object shares one cached copy (docs/architecture.md, "Token model").
//! Upstreams (origin's internal listener, parent edges) get `/v/{id}/{path}` with this edge's
//! key (`x-streamgate-edge-key`) instead: they serve edges, not viewers. A parent also gets the
//! viewer's address (`x-streamgate-client-ip`), which it believes because the key came with it;
//! the child has already checked the token (and its IP binding), so the parent checks no token.

use std::net::{SocketAddr, ToSocketAddrs};

use pingora::{
    Error, ErrorType, OrErr, Result, cache::CacheKey, http::RequestHeader,
    upstreams::peer::HttpPeer,
};
use streamgate_config::Upstream;

use crate::token_gate::GatedPath;

/// Request headers never forwarded to origin: credentials (cookies and bearer tokens may carry
/// session or playback tokens) and the referring URL (which may contain a tokenized path).
const STRIPPED_REQUEST_HEADERS: [&str; 6] = [
    "cookie",
    "authorization",
    "proxy-authorization",
    "referer",
    streamgate_config::contract::EDGE_KEY_HEADER,
    streamgate_config::contract::CLIENT_IP_HEADER,
];

/// Why the origin could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// `upstream.origin` does not resolve.
    #[error("upstream.origin {origin:?} does not resolve: {message}")]
    Resolve {
        /// The configured origin.
        origin: String,
        /// Why.
        message: String,
    },
    /// `upstream.edge-key` cannot be sent as a header.
    #[error("{0}")]
    EdgeKey(String),
}

/// The object a gated request names, owned so it outlives the request-path borrow.
///
/// Stored as one `"{content_id}/{path}"` string: content ids contain no `/`, so the split is
/// unambiguous, and the upstream path and cache key are both cheap slices of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ObjectRef {
    key: String,
    id_len: usize,
}

impl ObjectRef {
    /// The object of a parsed gated path (the token is left behind).
    pub(crate) fn from_gated(g: &GatedPath<'_>) -> Self {
        let mut key = String::with_capacity(g.content_id.len() + 1 + g.path.len());
        key.push_str(g.content_id);
        key.push('/');
        key.push_str(g.path);
        Self {
            key,
            id_len: g.content_id.len(),
        }
    }

    /// The content id.
    pub(crate) fn content_id(&self) -> &str {
        &self.key[..self.id_len]
    }

    /// The path inside the package.
    pub(crate) fn path(&self) -> &str {
        &self.key[self.id_len + 1..]
    }

    /// Origin's path for this object: `/v/{content_id}/{path}`.
    pub(crate) fn origin_path(&self) -> String {
        streamgate_config::contract::paths::media(self.content_id(), self.path())
    }
}

/// The cache key of an object: its content id and path, never the token or query.
///
/// The primary key is versioned (`sg1:`) so a future change of layout cannot collide with old
/// entries; the user tag is the content id, so per-content accounting and invalidation can find
/// every object of a content.
pub(crate) fn cache_key(content_id: &str, path: &str) -> CacheKey {
    CacheKey::new(
        streamgate_config::contract::edge_cache_key(content_id, path),
        content_id,
    )
}

/// The origin every gated request is fetched from.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// Template peer (address resolved once at start-up, TLS and timeouts set), cloned per
    /// request.
    peer: HttpPeer,
    /// `Host` header sent to origin.
    host: String,
    /// Parent edges asked before origin, if any.
    parents: Option<std::sync::Arc<Parents>>,
    /// This edge's key (`upstream.edge-key`), sent to origin and parents.
    edge_key: Option<http::HeaderValue>,
}

impl Origin {
    /// Resolves `upstream.origin` and prepares the peer.
    ///
    /// The address is resolved once, here: `HttpPeer::new` would resolve (blocking) and panic on
    /// failure, which must not happen on the request path.
    ///
    /// # Errors
    /// The origin does not resolve.
    pub(crate) fn from_conf(
        conf: &Upstream,
        edge_key: Option<&streamgate_config::Secret>,
    ) -> Result<Self, UpstreamError> {
        let addr: SocketAddr = conf
            .origin
            .to_socket_addrs()
            .map_err(|e| UpstreamError::Resolve {
                origin: conf.origin.clone(),
                message: e.to_string(),
            })?
            .next()
            .ok_or_else(|| UpstreamError::Resolve {
                origin: conf.origin.clone(),
                message: "no addresses".into(),
            })?;
        // `host:port` was validated by the config loader; fall back to the whole string.
        let (host, port) = conf.origin.rsplit_once(':').unwrap_or((&conf.origin, ""));
        let sni = if conf.sni.is_empty() {
            host.trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned()
        } else {
            conf.sni.clone()
        };
        let default_port = if conf.tls { "443" } else { "80" };
        let host_header = if conf.tls && !conf.sni.is_empty() {
            conf.sni.clone()
        } else if port == default_port {
            host.to_owned()
        } else {
            conf.origin.clone()
        };
        let mut peer = HttpPeer::new(addr, conf.tls, sni);
        peer.options.connection_timeout = Some(conf.connect_timeout);
        peer.options.total_connection_timeout = Some(conf.connect_timeout);
        peer.options.read_timeout = Some(conf.read_timeout);
        peer.options.write_timeout = Some(conf.read_timeout);
        let edge_key = match edge_key {
            Some(k) => {
                let mut v = http::HeaderValue::from_str(k.expose()).map_err(|_| {
                    UpstreamError::EdgeKey("upstream.edge-key must be visible ASCII".into())
                })?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        Ok(Self {
            peer,
            host: host_header,
            parents: Parents::from_conf(conf)?.map(std::sync::Arc::new),
            edge_key,
        })
    }

    /// The parent edges, if configured.
    pub(crate) fn parents(&self) -> Option<&Parents> {
        self.parents.as_deref()
    }

    /// The peer for one request.
    pub(crate) fn peer(&self) -> Box<HttpPeer> {
        Box::new(self.peer.clone())
    }

    /// Rewrites the upstream request for `object`: origin's path without the token or query,
    /// origin's `Host`, and no credentials. `Range`, `If-None-Match` and the other conditional
    /// headers pass through untouched.
    ///
    /// # Errors
    /// An internal error if the path or host cannot form a URI or header (validated input
    /// makes this unreachable in practice).
    pub(crate) fn rewrite(&self, req: &mut RequestHeader, object: &ObjectRef) -> Result<()> {
        let uri = http::Uri::try_from(object.origin_path())
            .or_err(ErrorType::InternalError, "building origin uri")?;
        req.set_uri(uri);
        req.insert_header(http::header::HOST, self.host.as_str())
            .map_err(|e| {
                Error::because(ErrorType::InternalError, "setting origin host header", e)
            })?;
        self.strip_and_sign(req)
    }

    /// Rewrites the upstream request for a parent edge: `/v/{id}/{path}` with this edge's key
    /// and the viewer's address; no token, cookies or credentials.
    pub(crate) fn rewrite_for_parent(
        &self,
        req: &mut RequestHeader,
        object: &ObjectRef,
        client_ip: Option<std::net::IpAddr>,
    ) -> Result<()> {
        let uri = http::Uri::try_from(object.origin_path())
            .or_err(ErrorType::InternalError, "parent uri")?;
        req.set_uri(uri);
        self.strip_and_sign(req)?;
        if let Some(ip) = client_ip {
            req.insert_header(
                streamgate_config::contract::CLIENT_IP_HEADER,
                ip.to_string(),
            )
            .map_err(|e| Error::because(ErrorType::InternalError, "client ip header", e))?;
        }
        Ok(())
    }

    /// Removes what must not travel upstream (viewer credentials, anything claiming to be an
    /// edge) and adds this edge's key.
    fn strip_and_sign(&self, req: &mut RequestHeader) -> Result<()> {
        for name in STRIPPED_REQUEST_HEADERS {
            req.remove_header(name);
        }
        if let Some(key) = &self.edge_key {
            req.insert_header(streamgate_config::contract::EDGE_KEY_HEADER, key.clone())
                .map_err(|e| Error::because(ErrorType::InternalError, "edge key header", e))?;
        }
        Ok(())
    }
}

/// Parent edges, chosen per object by consistent hashing (Ketama, as nginx's `hash … consistent`)
/// on the cache key: every child edge of a region sends a given object to the same parent, so
/// origin sees it once.
pub(crate) struct Parents {
    lb: pingora::lb::LoadBalancer<pingora::lb::selection::Consistent>,
    connect_timeout: std::time::Duration,
    read_timeout: std::time::Duration,
}

impl std::fmt::Debug for Parents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parents").finish_non_exhaustive()
    }
}

impl Parents {
    /// `None` without parents.
    pub(crate) fn from_conf(conf: &Upstream) -> Result<Option<Self>, UpstreamError> {
        if conf.parents.is_empty() {
            return Ok(None);
        }
        let lb = pingora::lb::LoadBalancer::try_from_iter(conf.parents.iter().map(String::as_str))
            .map_err(|e| UpstreamError::Resolve {
                origin: conf.parents.join(","),
                message: e.to_string(),
            })?;
        Ok(Some(Self {
            lb,
            connect_timeout: conf.connect_timeout,
            read_timeout: conf.read_timeout,
        }))
    }

    /// The parent for the object with cache key `key`.
    pub(crate) fn pick(&self, key: &[u8]) -> Option<Box<HttpPeer>> {
        let backend = self.lb.select(key, 256)?;
        let addr = backend.addr.as_inet()?;
        let mut peer = HttpPeer::new(*addr, false, String::new());
        peer.options.connection_timeout = Some(self.connect_timeout);
        peer.options.total_connection_timeout = Some(self.connect_timeout);
        peer.options.read_timeout = Some(self.read_timeout);
        Some(Box::new(peer))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use pingora::cache::key::CacheHashKey;

    use super::*;

    fn upstream(origin: &str, tls: bool, sni: &str) -> Upstream {
        Upstream {
            origin: origin.into(),
            tls,
            sni: sni.into(),
            connect_timeout: Duration::from_secs(1),
            read_timeout: Duration::from_secs(2),
            parents: Vec::new(),
            edge_key: None,
        }
    }

    fn object(p: &str) -> ObjectRef {
        let g = GatedPath::parse(p).unwrap().unwrap();
        ObjectRef::from_gated(&g)
    }

    #[test]
    fn object_ref_drops_the_token() {
        let o = object("/p/SECRET/c1/720p/seg-1.m4s");
        assert_eq!(o.content_id(), "c1");
        assert_eq!(o.path(), "720p/seg-1.m4s");
        assert_eq!(o.origin_path(), "/v/c1/720p/seg-1.m4s");
        assert!(!o.origin_path().contains("SECRET"));
    }

    #[test]
    fn cache_key_ignores_the_token() {
        let a = object("/p/tokenA/c1/master.m3u8");
        let b = object("/p/tokenB/c1/master.m3u8");
        let ka = cache_key(a.content_id(), a.path());
        let kb = cache_key(b.content_id(), b.path());
        assert_eq!(ka.primary_bin(), kb.primary_bin());
        assert_eq!(
            ka.primary_key(),
            streamgate_config::contract::edge_cache_key("c1", "master.m3u8").as_bytes()
        );
        assert_eq!(ka.user_tag(), "c1");
        let other = cache_key("c1", "manifest.mpd");
        assert_ne!(ka.primary_bin(), other.primary_bin());
    }

    #[test]
    fn rewrite_sets_path_host_and_strips_credentials() {
        let origin = Origin::from_conf(
            &upstream("127.0.0.1:8081", false, ""),
            Some(&streamgate_config::Secret::new("edge-key-0123456789")),
        )
        .unwrap();
        let mut req = RequestHeader::build("GET", b"/p/TOK/c1/a.ts?x=TOK", None).unwrap();
        req.insert_header("cookie", "sg_token=TOK").unwrap();
        req.insert_header("authorization", "Bearer TOK").unwrap();
        req.insert_header("range", "bytes=0-99").unwrap();
        req.insert_header("if-none-match", "\"e1\"").unwrap();
        req.insert_header("host", "edge.example").unwrap();
        req.insert_header("x-streamgate-edge-key", "forged")
            .unwrap();
        req.insert_header("x-streamgate-client-ip", "6.6.6.6")
            .unwrap();
        origin.rewrite(&mut req, &object("/p/TOK/c1/a.ts")).unwrap();
        assert_eq!(req.uri.to_string(), "/v/c1/a.ts");
        assert_eq!(req.headers["host"], "127.0.0.1:8081");
        assert!(req.headers.get("cookie").is_none());
        assert!(req.headers.get("authorization").is_none());
        assert_eq!(req.headers["range"], "bytes=0-99");
        assert_eq!(req.headers["if-none-match"], "\"e1\"");
        // this edge's key, never one a viewer sent; no viewer-supplied client address
        assert_eq!(req.headers["x-streamgate-edge-key"], "edge-key-0123456789");
        assert!(req.headers.get("x-streamgate-client-ip").is_none());
        for (_, v) in req.headers.iter() {
            assert!(!v.to_str().unwrap_or("").contains("TOK"));
        }
        // to a parent: the same object path, the key and the viewer's address
        let mut req = RequestHeader::build("GET", b"/p/TOK/c1/a.ts", None).unwrap();
        req.insert_header("x-streamgate-client-ip", "6.6.6.6")
            .unwrap();
        origin
            .rewrite_for_parent(
                &mut req,
                &object("/p/TOK/c1/a.ts"),
                "192.0.2.1".parse().ok(),
            )
            .unwrap();
        assert_eq!(req.uri.to_string(), "/v/c1/a.ts");
        assert_eq!(req.headers["x-streamgate-client-ip"], "192.0.2.1");
        assert_eq!(req.headers["x-streamgate-edge-key"], "edge-key-0123456789");
    }

    #[test]
    fn host_header_and_peer() {
        let o = Origin::from_conf(&upstream("127.0.0.1:80", false, ""), None).unwrap();
        assert_eq!(o.host, "127.0.0.1");
        let o =
            Origin::from_conf(&upstream("127.0.0.1:8443", true, "origin.example"), None).unwrap();
        assert_eq!(o.host, "origin.example");
        let p = o.peer();
        assert!(p.is_tls());
        assert_eq!(p.sni, "origin.example");
        assert_eq!(p.options.connection_timeout, Some(Duration::from_secs(1)));
        assert_eq!(p.options.read_timeout, Some(Duration::from_secs(2)));
    }

    #[test]
    fn unresolvable_origin_is_an_error() {
        let err =
            Origin::from_conf(&upstream("no-such-host.invalid:80", false, ""), None).unwrap_err();
        assert!(err.to_string().contains("no-such-host.invalid"));
    }
}
