//! Network addresses in configuration: CIDR blocks (`10.0.0.0/8`, `2001:db8::/32`) and the
//! client address of a request seen through trusted proxies.
//!
//! A header naming the client (`X-Forwarded-For`, `Forwarded`) is believed only when the TCP
//! peer is a configured trusted proxy; then the right-most address that is not itself a trusted
//! proxy is the client (proxies append, so everything left of the last untrusted hop may have
//! been written by the client). Without trusted proxies the peer is the client, whatever the
//! headers say.
//!
//! Rate limits key IPv6 clients by their /64 ([`rate_limit_key`]): one subscriber usually holds a
//! whole /64, so keying by the full address lets a client rotate addresses past any limit and
//! fill Redis with keys.

use std::{
    fmt,
    net::{IpAddr, Ipv6Addr},
    str::FromStr,
};

use serde::Deserialize;

/// A CIDR block: an address and a prefix length, host bits zero.
#[derive(Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Whether `ip` lies in this block (an IPv4-mapped IPv6 address counts as its IPv4 form).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                mask_v4(u32::from(a), self.prefix) == u32::from(net)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                mask_v6(u128::from(a), self.prefix) == u128::from(net)
            }
            _ => false,
        }
    }
}

fn mask_v4(a: u32, prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        a & (u32::MAX << (32 - u32::from(prefix.min(32))))
    }
}

fn mask_v6(a: u128, prefix: u8) -> u128 {
    if prefix == 0 {
        0
    } else {
        a & (u128::MAX << (128 - u32::from(prefix.min(128))))
    }
}

/// `::ffff:a.b.c.d` as `a.b.c.d`; every other address as it is.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or CIDR block"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: prefix length must be 0 to {max}"))?,
        };
        let masked = match addr {
            IpAddr::V4(v4) => IpAddr::V4(mask_v4(u32::from(v4), prefix).into()),
            IpAddr::V6(v6) => IpAddr::V6(mask_v6(u128::from(v6), prefix).into()),
        };
        if masked != addr {
            return Err(format!(
                "{s:?} has host bits set (did you mean {masked}/{prefix}?)"
            ));
        }
        Ok(Self { addr, prefix })
    }
}

impl TryFrom<String> for IpNet {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl fmt::Debug for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The proxies (load balancers) whose client-address headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Trust the peers in `nets`.
    pub fn new(nets: Vec<IpNet>) -> Self {
        Self(nets)
    }

    /// Whether no proxy is trusted (every peer is the client).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(ip))
    }

    /// The client of a request from TCP peer `peer` that carried `x_forwarded_for` and
    /// `forwarded` (each every value of that header, in order). Headers count only when the
    /// peer is trusted; then the right-most hop that is not a trusted proxy is the client. A
    /// malformed hop ends the walk there: the peer (or the last good hop) is the client, never
    /// an address the client could have chosen.
    pub fn client_ip<'a>(
        &self,
        peer: IpAddr,
        x_forwarded_for: impl IntoIterator<Item = &'a str>,
        forwarded: impl IntoIterator<Item = &'a str>,
    ) -> IpAddr {
        let peer = canonical(peer);
        if !self.trusts(peer) {
            return peer;
        }
        // RFC 7239 `Forwarded: for=…` wins over the de-facto X-Forwarded-For when present.
        let mut hops: Vec<Option<IpAddr>> = forwarded
            .into_iter()
            .flat_map(|v| v.split(','))
            .map(forwarded_for)
            .collect();
        if hops.is_empty() {
            hops = x_forwarded_for
                .into_iter()
                .flat_map(|v| v.split(','))
                .map(|h| h.trim().parse::<IpAddr>().ok().map(canonical))
                .collect();
        }
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            match hop {
                Some(ip) => {
                    client = ip;
                    if !self.trusts(ip) {
                        break;
                    }
                }
                None => break,
            }
        }
        client
    }
}

/// The `for=` address of one `Forwarded` element (`for=192.0.2.1`, `for="[2001:db8::1]:443"`);
/// `None` when it has none or it is obfuscated (`for=_hidden`, `for=unknown`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    let v = element.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then_some(v.trim())
    })?;
    let v = v.trim_matches('"');
    let host = if let Some(rest) = v.strip_prefix('[') {
        rest.split_once(']')?.0
    } else {
        // `a.b.c.d:port` or a bare address
        match v.rsplit_once(':') {
            Some((h, _)) if h.parse::<std::net::Ipv4Addr>().is_ok() => h,
            _ => v,
        }
    };
    host.parse::<IpAddr>().ok().map(canonical)
}

/// The text a per-client rate limit is keyed by: an IPv4 address as it is, an IPv6 address by
/// its /64 (`2001:db8:1:2::/64`).
pub fn rate_limit_key(ip: IpAddr) -> String {
    match canonical(ip) {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => {
            let net = Ipv6Addr::from(mask_v6(u128::from(a), 64));
            format!("{net}/64")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_parsing_and_membership() {
        let n: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(n.contains(ip("10.1.2.3")));
        assert!(n.contains(ip("::ffff:10.1.2.3")));
        assert!(!n.contains(ip("11.0.0.1")));
        let one: IpNet = "192.0.2.7".parse().unwrap();
        assert!(one.contains(ip("192.0.2.7")) && !one.contains(ip("192.0.2.8")));
        let v6: IpNet = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all: IpNet = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        for bad in [
            "10.0.0.1/8",
            "10.0.0.0/33",
            "nope",
            "10.0.0.0/x",
            "::/129",
            "",
        ] {
            assert!(bad.parse::<IpNet>().is_err(), "{bad}");
        }
        assert!(
            "10.0.0.1/8"
                .parse::<IpNet>()
                .unwrap_err()
                .contains("10.0.0.0/8")
        );
    }

    #[test]
    fn headers_count_only_from_trusted_peers() {
        let none = TrustedProxies::default();
        let lb = TrustedProxies::new(vec!["10.0.0.0/8".parse().unwrap()]);
        // An untrusted peer cannot name another client.
        assert_eq!(
            none.client_ip(ip("203.0.113.9"), ["1.2.3.4"], []),
            ip("203.0.113.9")
        );
        assert_eq!(
            lb.client_ip(ip("203.0.113.9"), ["1.2.3.4"], ["for=1.2.3.4"]),
            ip("203.0.113.9")
        );
        // Through the load balancer: the right-most untrusted hop; a client-written prefix
        // (`6.6.6.6` spoofed at the left) is ignored.
        assert_eq!(
            lb.client_ip(ip("10.0.0.2"), ["6.6.6.6, 198.51.100.4"], []),
            ip("198.51.100.4")
        );
        assert_eq!(
            lb.client_ip(ip("10.0.0.2"), ["198.51.100.4", "10.0.0.7"], []),
            ip("198.51.100.4")
        );
        // Only trusted hops: the left-most of them is the best we know.
        assert_eq!(
            lb.client_ip(ip("10.0.0.2"), ["10.9.9.9"], []),
            ip("10.9.9.9")
        );
        // A garbage hop stops the walk at the last good one.
        assert_eq!(
            lb.client_ip(ip("10.0.0.2"), ["198.51.100.4, garbage"], []),
            ip("10.0.0.2")
        );
        // No header: the peer.
        assert_eq!(lb.client_ip(ip("10.0.0.2"), [], []), ip("10.0.0.2"));
        // RFC 7239.
        assert_eq!(
            lb.client_ip(
                ip("10.0.0.2"),
                ["9.9.9.9"],
                ["for=\"[2001:db8::1]:443\";proto=https, for=10.0.0.3"]
            ),
            ip("2001:db8::1")
        );
        assert_eq!(
            lb.client_ip(ip("10.0.0.2"), [], ["for=192.0.2.60:8080;by=10.0.0.2"]),
            ip("192.0.2.60")
        );
        assert_eq!(
            lb.client_ip(ip("10.0.0.2"), [], ["for=_hidden"]),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn rate_limit_keys_group_ipv6_by_64() {
        assert_eq!(rate_limit_key(ip("192.0.2.1")), "192.0.2.1");
        assert_eq!(rate_limit_key(ip("::ffff:192.0.2.1")), "192.0.2.1");
        let a = rate_limit_key(ip("2001:db8:1:2:aaaa::1"));
        let b = rate_limit_key(ip("2001:db8:1:2:ffff:1:2:3"));
        assert_eq!(a, b);
        assert_eq!(a, "2001:db8:1:2::/64");
        assert_ne!(a, rate_limit_key(ip("2001:db8:1:3::1")));
    }
}
