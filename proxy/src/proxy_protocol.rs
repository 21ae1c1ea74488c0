//! The PROXY protocol (HAProxy's, versions 1 and 2) on the edge's listeners: a load balancer
//! in front of the edge writes one header before the connection's first byte naming the
//! viewer's address, which the edge then uses as the client address (token IP binding, logs,
//! metrics) instead of the balancer's.
//!
//! ```text
//!  v1  "PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\r\n"      (text, ≤ 107 bytes)
//!      "PROXY UNKNOWN …\r\n"                                 (keep the TCP peer)
//!  v2  \r\n\r\n\0\r\nQUIT\n │ ver 2, cmd │ family, proto │ len (BE) │ addresses │ TLVs
//!      cmd LOCAL (balancer health checks) or family UNSPEC/UNIX: keep the TCP peer
//! ```
//!
//! A listener with `proxy-protocol = true` requires the header on every connection, and only
//! from peers in `server.trusted-proxies`: anyone else could claim any address. A missing,
//! malformed or oversized header closes the connection (fail closed).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    os::fd::AsRawFd,
    sync::Arc,
    time::Duration,
};

use async_trait::async_trait;
use pingora::{
    apps::ServerApp,
    listeners::PreTlsProcess,
    protocols::{
        GetSocketDigest, SocketDigest, Stream, l4::socket::SocketAddr as PeerAddr,
        l4::stream::Stream as L4Stream,
    },
    server::ShutdownWatch,
};
use streamgate_config::TrustedProxies;
use tokio::io::AsyncReadExt;
use tracing::debug;

use crate::metrics::EdgeMetrics;

/// The v2 signature.
const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Longest v1 line, CRLF included (the spec's limit).
const V1_MAX: usize = 107;
/// Longest v2 header accepted (16-byte preamble, addresses and TLVs).
pub(crate) const V2_MAX: usize = 16 + 1024;
/// How long a connection may take to send its header.
const HEADER_TIMEOUT: Duration = Duration::from_secs(5);

/// A parsed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Header {
    /// The balancer relays a viewer: `source` is the viewer's address.
    Proxied {
        /// The viewer.
        source: SocketAddr,
        /// The address the viewer connected to.
        destination: SocketAddr,
    },
    /// A connection of the balancer's own (health check) or an unknown family: keep the peer.
    Local,
}

/// Progress of parsing a buffer that holds the connection's first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Parse {
    /// More bytes are needed.
    Incomplete,
    /// A header of this many bytes.
    Done(Header, usize),
}

/// Why a header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ProxyHeaderError {
    /// The connection does not start with a PROXY header.
    #[error("no PROXY protocol header")]
    Missing,
    /// The header is not well formed.
    #[error("malformed PROXY header: {0}")]
    Malformed(&'static str),
    /// The header is longer than allowed.
    #[error("PROXY header too long")]
    TooLong,
}

/// Parses the header at the start of `buf`.
///
/// # Errors
/// Anything that is not a complete, well-formed v1 or v2 header (or a prefix of one).
pub(crate) fn parse(buf: &[u8]) -> Result<Parse, ProxyHeaderError> {
    let v2_prefix = buf.len().min(V2_SIGNATURE.len());
    if buf[..v2_prefix] == V2_SIGNATURE[..v2_prefix] && !buf.is_empty() {
        return parse_v2(buf);
    }
    let v1_prefix = buf.len().min(6);
    if buf[..v1_prefix] == b"PROXY "[..v1_prefix] {
        return parse_v1(buf);
    }
    Err(ProxyHeaderError::Missing)
}

fn parse_v1(buf: &[u8]) -> Result<Parse, ProxyHeaderError> {
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(end) = window.windows(2).position(|w| w == b"\r\n") else {
        return if buf.len() >= V1_MAX {
            Err(ProxyHeaderError::TooLong)
        } else {
            Ok(Parse::Incomplete)
        };
    };
    let line = std::str::from_utf8(&buf[6..end])
        .map_err(|_| ProxyHeaderError::Malformed("v1 header is not ASCII"))?;
    let used = end + 2;
    let mut fields = line.split(' ');
    let family = fields.next().unwrap_or_default();
    if family == "UNKNOWN" {
        return Ok(Parse::Done(Header::Local, used));
    }
    let rest: Vec<&str> = fields.collect();
    let [src, dst, sport, dport] = rest[..] else {
        return Err(ProxyHeaderError::Malformed("v1 header needs 4 fields"));
    };
    let ip = |s: &str| -> Result<IpAddr, ProxyHeaderError> {
        match family {
            "TCP4" => s
                .parse::<Ipv4Addr>()
                .map(IpAddr::V4)
                .map_err(|_| ProxyHeaderError::Malformed("v1 TCP4 address")),
            "TCP6" => s
                .parse::<Ipv6Addr>()
                .map(IpAddr::V6)
                .map_err(|_| ProxyHeaderError::Malformed("v1 TCP6 address")),
            _ => Err(ProxyHeaderError::Malformed("v1 family")),
        }
    };
    let port = |s: &str| -> Result<u16, ProxyHeaderError> {
        // Decimal without sign or leading zeros, as the spec writes them.
        if s.is_empty() || s.len() > 5 || (s.len() > 1 && s.starts_with('0')) {
            return Err(ProxyHeaderError::Malformed("v1 port"));
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ProxyHeaderError::Malformed("v1 port"));
        }
        s.parse()
            .map_err(|_| ProxyHeaderError::Malformed("v1 port"))
    };
    Ok(Parse::Done(
        Header::Proxied {
            source: SocketAddr::new(ip(src)?, port(sport)?),
            destination: SocketAddr::new(ip(dst)?, port(dport)?),
        },
        used,
    ))
}

fn parse_v2(buf: &[u8]) -> Result<Parse, ProxyHeaderError> {
    if buf.len() < 16 {
        return Ok(Parse::Incomplete);
    }
    let ver_cmd = buf[12];
    if ver_cmd >> 4 != 2 {
        return Err(ProxyHeaderError::Malformed("v2 version"));
    }
    let command = ver_cmd & 0x0f;
    if command > 1 {
        return Err(ProxyHeaderError::Malformed("v2 command"));
    }
    let family = buf[13];
    let len = usize::from(u16::from_be_bytes([buf[14], buf[15]]));
    let used = 16 + len;
    if used > V2_MAX {
        return Err(ProxyHeaderError::TooLong);
    }
    if buf.len() < used {
        return Ok(Parse::Incomplete);
    }
    if command == 0 {
        return Ok(Parse::Done(Header::Local, used));
    }
    let body = &buf[16..used];
    let header = match family {
        // TCP over IPv4 / IPv6 (UDP is not ours to serve).
        0x11 => {
            if body.len() < 12 {
                return Err(ProxyHeaderError::Malformed("v2 IPv4 block too short"));
            }
            let ip = |o: usize| {
                IpAddr::V4(Ipv4Addr::new(
                    body[o],
                    body[o + 1],
                    body[o + 2],
                    body[o + 3],
                ))
            };
            let port = |o: usize| u16::from_be_bytes([body[o], body[o + 1]]);
            Header::Proxied {
                source: SocketAddr::new(ip(0), port(8)),
                destination: SocketAddr::new(ip(4), port(10)),
            }
        }
        0x21 => {
            if body.len() < 36 {
                return Err(ProxyHeaderError::Malformed("v2 IPv6 block too short"));
            }
            let ip = |o: usize| {
                let mut b = [0u8; 16];
                b.copy_from_slice(&body[o..o + 16]);
                IpAddr::V6(Ipv6Addr::from(b))
            };
            let port = |o: usize| u16::from_be_bytes([body[o], body[o + 1]]);
            Header::Proxied {
                source: SocketAddr::new(ip(0), port(32)),
                destination: SocketAddr::new(ip(16), port(34)),
            }
        }
        // UNSPEC, UNIX sockets: nothing we can use as a client address.
        0x00 | 0x31 | 0x32 => Header::Local,
        _ => return Err(ProxyHeaderError::Malformed("v2 family")),
    };
    Ok(Parse::Done(header, used))
}

/// Reads the header off `stream` (exactly: bytes after it are put back for HTTP or TLS) and,
/// for a relayed viewer, makes the viewer the connection's peer address.
///
/// # Errors
/// A peer outside `trusted`, a missing, malformed or oversized header, or no header within
/// [`HEADER_TIMEOUT`].
pub(crate) async fn accept(
    stream: &mut L4Stream,
    trusted: &TrustedProxies,
) -> Result<Header, ProxyHeaderError> {
    let peer = stream
        .get_socket_digest()
        .and_then(|d| d.peer_addr().and_then(PeerAddr::as_inet).copied());
    if !peer.is_some_and(|p| trusted.trusts(p.ip())) {
        return Err(ProxyHeaderError::Malformed("peer is not a trusted proxy"));
    }
    let mut buf = vec![0u8; V2_MAX];
    let mut filled = 0;
    let read = async {
        loop {
            let n = stream
                .read(&mut buf[filled..])
                .await
                .map_err(|_| ProxyHeaderError::Missing)?;
            if n == 0 {
                return Err(ProxyHeaderError::Missing);
            }
            filled += n;
            match parse(&buf[..filled])? {
                Parse::Incomplete => {}
                Parse::Done(header, used) => return Ok((header, used)),
            }
        }
    };
    let (header, used) = tokio::time::timeout(HEADER_TIMEOUT, read)
        .await
        .map_err(|_| ProxyHeaderError::Missing)??;
    stream.rewind(&buf[used..filled]);
    if let Header::Proxied { source, .. } = header {
        let digest = SocketDigest::from_raw_fd(stream.as_raw_fd());
        let _ = digest.peer_addr.set(Some(PeerAddr::Inet(source)));
        if let Some(old) = stream.get_socket_digest() {
            let _ = digest.local_addr.set(old.local_addr().cloned());
        }
        stream.set_socket_digest(digest);
        debug!(viewer = %source, proxy = ?peer, "PROXY header accepted");
    }
    Ok(header)
}

/// Reads the header for a listener with `proxy-protocol = true`, counting the outcome.
async fn screen(
    stream: &mut L4Stream,
    trusted: &TrustedProxies,
    metrics: &EdgeMetrics,
) -> Result<Header, ProxyHeaderError> {
    let r = accept(stream, trusted).await;
    metrics.proxy_header(r.is_ok());
    if let Err(e) = &r {
        debug!(cause = %e, "connection refused: no valid PROXY header");
    }
    r
}

/// The pre-TLS hook of a TLS listener with `proxy-protocol = true`.
pub(crate) struct ProxyProtocolTls {
    pub(crate) trusted: TrustedProxies,
    pub(crate) metrics: Arc<EdgeMetrics>,
}

#[async_trait]
impl PreTlsProcess for ProxyProtocolTls {
    async fn process(&self, stream: &mut L4Stream) -> pingora::Result<()> {
        screen(stream, &self.trusted, &self.metrics)
            .await
            .map(drop)
            .map_err(|e| pingora::Error::explain(pingora::ErrorType::AcceptError, e.to_string()))
    }
}

/// The HTTP application of the edge's listeners, reading a PROXY header first on plain
/// connections when `server.proxy-protocol` is on (TLS listeners read theirs in
/// [`ProxyProtocolTls`], before the handshake).
pub(crate) struct ProxyProtocolApp<A> {
    pub(crate) inner: Arc<A>,
    /// Whether plain connections carry a header (`server.proxy-protocol`).
    pub(crate) plain: bool,
    pub(crate) trusted: TrustedProxies,
    pub(crate) metrics: Arc<EdgeMetrics>,
    /// `server.max-connections`, over both listeners.
    pub(crate) cap: Arc<crate::shed::ConnectionCap>,
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for ProxyProtocolApp<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let Some(_admitted) = self.cap.admit() else {
            self.cap.refuse(stream).await;
            return None;
        };
        let mut stream = if !self.plain || stream.get_ssl_digest().is_some() {
            stream
        } else {
            let mut l4 = stream.into_any().downcast::<L4Stream>().ok()?;
            screen(&mut l4, &self.trusted, &self.metrics).await.ok()?;
            l4 as Stream
        };
        // The header comes once per connection: keep-alive requests stay with the inner app
        // instead of coming back here.
        loop {
            stream = self.inner.process_new(stream, shutdown).await?;
        }
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(buf: &[u8]) -> (Header, usize) {
        match parse(buf).unwrap() {
            Parse::Done(h, n) => (h, n),
            Parse::Incomplete => panic!("incomplete: {buf:?}"),
        }
    }

    #[test]
    fn v1_lines() {
        let line = b"PROXY TCP4 203.0.113.7 10.0.0.1 56324 443\r\nGET / HTTP/1.1\r\n";
        let (h, n) = done(line);
        assert_eq!(n, 43);
        assert_eq!(
            h,
            Header::Proxied {
                source: "203.0.113.7:56324".parse().unwrap(),
                destination: "10.0.0.1:443".parse().unwrap()
            }
        );
        let (h, _) = done(b"PROXY TCP6 2001:db8::7 2001:db8::1 1 65535\r\n");
        assert!(
            matches!(h, Header::Proxied { source, .. } if source == "[2001:db8::7]:1".parse().unwrap())
        );
        assert_eq!(done(b"PROXY UNKNOWN\r\n").0, Header::Local);
        assert_eq!(
            done(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n").0,
            Header::Local
        );
        // Every prefix of a header is incomplete, not an error.
        for i in 1..line.len().min(43) {
            assert_eq!(parse(&line[..i]), Ok(Parse::Incomplete), "{i}");
        }
    }

    #[test]
    fn v1_refusals() {
        for bad in [
            &b"PROXY TCP4 203.0.113.7 10.0.0.1 56324\r\n"[..],
            b"PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n",
            b"PROXY TCP6 203.0.113.7 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 203.0.113.7 10.0.0.1 65536 2\r\n",
            b"PROXY TCP4 203.0.113.7 10.0.0.1 +1 2\r\n",
            b"PROXY TCP4 203.0.113.7 10.0.0.1 01 2\r\n",
            b"PROXY TCP4 203.0.113.7  10.0.0.1 1 2\r\n",
            b"PROXY UDP4 203.0.113.7 10.0.0.1 1 2\r\n",
            b"PROXY TCP4 \xff.0.113.7 10.0.0.1 1 2\r\n",
        ] {
            assert!(
                matches!(parse(bad), Err(ProxyHeaderError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Err(ProxyHeaderError::Missing));
        assert_eq!(parse(b"proxy TCP4"), Err(ProxyHeaderError::Missing));
        let long = [b"PROXY ".as_slice(), &[b'1'; 200]].concat();
        assert_eq!(parse(&long), Err(ProxyHeaderError::TooLong));
    }

    fn v2(cmd: u8, family: u8, body: &[u8]) -> Vec<u8> {
        let mut h = V2_SIGNATURE.to_vec();
        h.push(0x20 | cmd);
        h.push(family);
        h.extend_from_slice(&u16::try_from(body.len()).unwrap().to_be_bytes());
        h.extend_from_slice(body);
        h
    }

    #[test]
    fn v2_headers() {
        let mut body = vec![203, 0, 113, 7, 10, 0, 0, 1];
        body.extend_from_slice(&56324u16.to_be_bytes());
        body.extend_from_slice(&443u16.to_be_bytes());
        // A TLV after the addresses (ignored).
        body.extend_from_slice(&[0x04, 0x00, 0x01, 0x00]);
        let mut h = v2(1, 0x11, &body);
        let len = h.len();
        h.extend_from_slice(b"\x16\x03\x01");
        let (hd, n) = done(&h);
        assert_eq!(n, len);
        assert_eq!(
            hd,
            Header::Proxied {
                source: "203.0.113.7:56324".parse().unwrap(),
                destination: "10.0.0.1:443".parse().unwrap()
            }
        );
        for i in 1..len {
            assert_eq!(parse(&h[..i]), Ok(Parse::Incomplete), "{i}");
        }
        let mut b6 = vec![0u8; 36];
        b6[0] = 0x20;
        b6[1] = 0x01;
        b6[15] = 7;
        b6[32..34].copy_from_slice(&8080u16.to_be_bytes());
        let (hd, _) = done(&v2(1, 0x21, &b6));
        assert!(
            matches!(hd, Header::Proxied { source, .. } if source == "[2001::7]:8080".parse().unwrap())
        );
        // LOCAL (health checks) and UNSPEC keep the peer.
        assert_eq!(done(&v2(0, 0x11, &body)).0, Header::Local);
        assert_eq!(done(&v2(1, 0x00, &[])).0, Header::Local);
    }

    #[test]
    fn v2_refusals() {
        let body = [0u8; 12];
        let mut bad_version = v2(1, 0x11, &body);
        bad_version[12] = 0x11;
        assert!(matches!(
            parse(&bad_version),
            Err(ProxyHeaderError::Malformed(_))
        ));
        assert!(matches!(
            parse(&v2(2, 0x11, &body)),
            Err(ProxyHeaderError::Malformed(_))
        ));
        assert!(matches!(
            parse(&v2(1, 0x11, &body[..11])),
            Err(ProxyHeaderError::Malformed(_))
        ));
        assert!(matches!(
            parse(&v2(1, 0x12, &body)),
            Err(ProxyHeaderError::Malformed(_))
        ));
        assert!(matches!(
            parse(&v2(1, 0x21, &body)),
            Err(ProxyHeaderError::Malformed(_))
        ));
        let huge = v2(1, 0x11, &vec![0u8; V2_MAX]);
        assert_eq!(parse(&huge[..16]), Err(ProxyHeaderError::TooLong));
    }
}
