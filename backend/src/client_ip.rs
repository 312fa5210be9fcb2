//! Who the client is, by address: the peer of the TCP connection, or, when that peer is a
//! configured trusted proxy, the right-most hop of the forwarding header that no trusted
//! proxy wrote; and the bucket an address counts in for per-address limits.
//!
//! Why right-most: every proxy appends the address it saw, so the hops to the right of the
//! first untrusted one were written by proxies we trust, and everything to its left was
//! written by the client and may be made up. A header from a peer that is not a trusted
//! proxy is ignored altogether (anyone can send `X-Forwarded-For`).
//!
//! Why buckets: one IPv6 customer is routinely given a whole /64 and can pick a fresh
//! address in it for every connection, so a per-address limit counts IPv6 clients by their
//! /64 (IPv4 by the address).
//!
//! This module knows nothing of the server's state: it is configuration (the [`IpNet`]
//! list) and pure functions, with one extractor for handlers.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};

/// An address block, `10.0.0.0/8` or `2001:db8::/32`; a bare address is a block of one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IpNet {
    /// The block's first address (host bits cleared when parsed).
    network: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// Whether `ip` lies in the block (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => mask_v4(ip, self.prefix) == net,
            (IpAddr::V6(net), IpAddr::V6(ip)) => mask_v6(ip, self.prefix) == net,
            _ => false,
        }
    }
}

impl FromStr for IpNet {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        let bad = || format!("{raw:?} is not an IP address or a CIDR block (e.g. 10.0.0.0/8, 2001:db8::/32, 127.0.0.1)");
        let (addr, prefix) = match raw.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (raw, None),
        };
        let addr = canonical(addr.parse::<IpAddr>().map_err(|_| bad())?);
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
        };
        let network = match addr {
            IpAddr::V4(v4) => IpAddr::V4(mask_v4(v4, prefix)),
            IpAddr::V6(v6) => IpAddr::V6(mask_v6(v6, prefix)),
        };
        Ok(Self { network, prefix })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// How the client address of a request is found: `CONFAB_TRUSTED_PROXIES` and
/// `CONFAB_CLIENT_IP_HEADER`.
#[derive(Clone, Debug)]
pub struct ClientIpPolicy {
    trusted: Vec<IpNet>,
    header: HeaderName,
}

impl ClientIpPolicy {
    pub fn new(trusted: Vec<IpNet>, header: HeaderName) -> Self {
        Self { trusted, header }
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.trusted.iter().any(|net| net.contains(ip))
    }

    /// The client's address: `peer` itself unless it is a trusted proxy; then, walking the
    /// header's hops from the right, the first one that is not a trusted proxy. When every
    /// hop is trusted the left-most is the client; when a hop cannot be read (garbage,
    /// `unknown`, an obfuscated name), the walk stops at the last address it could vouch for.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.is_trusted(client) {
            return client;
        }
        // Several header lines are one list, in order (RFC 9110 §5.3).
        let lines = headers.get_all(&self.header).iter().rev();
        for line in lines {
            let Ok(line) = line.to_str() else { return client };
            for hop in line.rsplit(',') {
                let Some(ip) = parse_hop(hop) else { return client };
                client = ip;
                if !self.is_trusted(ip) {
                    return client;
                }
            }
        }
        client
    }
}

/// One hop of `X-Forwarded-For` (`203.0.113.7`, `[2001:db8::1]:443`, `198.51.100.2:80`) or
/// of `Forwarded` (`for=192.0.2.60;proto=https`, `for="[2001:db8::1]"`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    let node = if hop.contains('=') {
        let pair = hop.split(';').map(str::trim).find(|pair| pair.get(..4).is_some_and(|key| key.eq_ignore_ascii_case("for=")))?;
        pair[4..].trim_matches('"')
    } else {
        hop
    };
    if let Ok(ip) = node.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = node.strip_prefix('[') {
        let (inside, _port) = rest.split_once(']')?;
        return inside.parse::<Ipv6Addr>().ok().map(|v6| canonical(IpAddr::V6(v6)));
    }
    node.parse::<SocketAddr>().ok().map(|addr| canonical(addr.ip()))
}

/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack socket reports) is
/// the IPv4 client it stands for.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn mask_v4(ip: Ipv4Addr, prefix: u8) -> Ipv4Addr {
    let bits = u32::from(ip);
    let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
    Ipv4Addr::from(bits & mask)
}

fn mask_v6(ip: Ipv6Addr, prefix: u8) -> Ipv6Addr {
    let bits = u128::from(ip);
    let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
    Ipv6Addr::from(bits & mask)
}

/// What a per-address limit counts: an IPv4 address, or the /64 of an IPv6 one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct IpBucket(IpAddr);

impl IpBucket {
    /// The length of the IPv6 prefix one client is assumed to control.
    pub const V6_PREFIX: u8 = 64;

    pub fn of(ip: IpAddr) -> Self {
        match canonical(ip) {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => Self(IpAddr::V6(mask_v6(v6, Self::V6_PREFIX))),
        }
    }
}

/// `192.0.2.1`, or `2001:db8:1:2::/64`: what throttle keys and logs show.
impl fmt::Display for IpBucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(v4) => write!(f, "{v4}"),
            IpAddr::V6(v6) => write!(f, "{v6}/{}", Self::V6_PREFIX),
        }
    }
}

/// The client address of a request, by the server's [`ClientIpPolicy`]. Needs the router
/// to be served with `ConnectInfo<SocketAddr>` (it always is).
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    pub fn bucket(self) -> IpBucket {
        IpBucket::of(self.0)
    }
}

impl<S> FromRequestParts<S> for ClientIp
where
    S: Send + Sync,
    Arc<ClientIpPolicy>: FromRef<S>,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let policy = Arc::<ClientIpPolicy>::from_ref(state);
        // Without connection info (a router driven in-process, never the server) the address
        // is unknown: one shared bucket, which is the cautious answer for limits.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |ConnectInfo(addr)| addr.ip());
        Ok(ClientIp(policy.client_ip(peer, &parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn policy(trusted: &[&str], header: &str) -> ClientIpPolicy {
        ClientIpPolicy::new(trusted.iter().map(|t| t.parse().unwrap()).collect(), HeaderName::from_bytes(header.as_bytes()).unwrap())
    }

    fn headers(name: &str, lines: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for line in lines {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_str(line).unwrap());
        }
        map
    }

    #[test]
    fn blocks_parse_with_or_without_a_prefix_and_refuse_nonsense() {
        let cases: &[(&str, Option<&str>)] = &[
            ("10.0.0.0/8", Some("10.0.0.0/8")),
            ("10.1.2.3/8", Some("10.0.0.0/8")),
            (" 192.168.1.7 ", Some("192.168.1.7/32")),
            ("::1", Some("::1/128")),
            ("2001:db8::/32", Some("2001:db8::/32")),
            ("::ffff:10.0.0.1", Some("10.0.0.1/32")),
            ("0.0.0.0/0", Some("0.0.0.0/0")),
            ("::/0", Some("::/0")),
            ("10.0.0.0/33", None),
            ("2001:db8::/129", None),
            ("10.0.0.0/", None),
            ("10.0.0.0/-1", None),
            ("localhost", None),
            ("", None),
            ("10.0.0.0/8/8", None),
        ];
        for (raw, expected) in cases {
            let parsed = raw.parse::<IpNet>().ok().map(|n| n.to_string());
            assert_eq!(parsed.as_deref(), *expected, "{raw:?}");
        }
    }

    #[test]
    fn a_block_contains_exactly_its_addresses() {
        let net: IpNet = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains(ip("10.255.0.1")));
        assert!(net.contains(ip("::ffff:10.0.0.1")), "an IPv4-mapped peer is its IPv4 address");
        assert!(!net.contains(ip("11.0.0.1")));
        assert!(!net.contains(ip("::1")));
        let v6: IpNet = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12:3456::1")));
        assert!(!v6.contains(ip("fe80::1")));
        assert!("0.0.0.0/0".parse::<IpNet>().unwrap().contains(ip("203.0.113.9")));
    }

    /// (trusted proxies, header lines, peer, the client address found)
    #[test]
    fn the_client_is_the_right_most_untrusted_hop_and_only_behind_a_trusted_peer() {
        let xff = "x-forwarded-for";
        let cases: &[(&[&str], &[&str], &str, &str, &str)] = &[
            // No trusted proxies: the header is ignored, whoever sends it.
            (&[], &["203.0.113.7"], "198.51.100.1", "198.51.100.1", "no proxies configured"),
            // An untrusted peer's header is ignored (a spoof).
            (&["10.0.0.0/8"], &["203.0.113.7"], "198.51.100.1", "198.51.100.1", "untrusted peer"),
            // A trusted peer: the hop it appended.
            (&["10.0.0.0/8"], &["203.0.113.7"], "10.0.0.2", "203.0.113.7", "one proxy"),
            // The client prepended a fake hop; the proxy appended the real one on the right.
            (&["10.0.0.0/8"], &["1.2.3.4, 203.0.113.7"], "10.0.0.2", "203.0.113.7", "spoofed left hop"),
            // Two proxies in a row: skip the trusted hops from the right.
            (&["10.0.0.0/8"], &["1.2.3.4, 203.0.113.7, 10.0.0.9"], "10.0.0.2", "203.0.113.7", "two proxies"),
            // Lines of one header are one list.
            (&["10.0.0.0/8"], &["1.2.3.4", "203.0.113.7, 10.0.0.9"], "10.0.0.2", "203.0.113.7", "two lines"),
            (&["10.0.0.0/8"], &["203.0.113.7", "10.0.0.9"], "10.0.0.2", "203.0.113.7", "two lines, trusted last"),
            // Every hop trusted: the left-most.
            (&["10.0.0.0/8"], &["10.1.1.1, 10.0.0.9"], "10.0.0.2", "10.1.1.1", "all trusted"),
            // A trusted peer without the header is the client itself.
            (&["10.0.0.0/8"], &[], "10.0.0.2", "10.0.0.2", "no header"),
            // Garbage stops the walk at the last address vouched for.
            (&["10.0.0.0/8"], &["203.0.113.7, garbage"], "10.0.0.2", "10.0.0.2", "garbage right"),
            (&["10.0.0.0/8"], &["garbage, 203.0.113.7"], "10.0.0.2", "203.0.113.7", "garbage left is never reached"),
            (&["10.0.0.0/8"], &["garbage, 10.0.0.5"], "10.0.0.2", "10.0.0.5", "garbage behind a trusted hop"),
            (&["10.0.0.0/8"], &[""], "10.0.0.2", "10.0.0.2", "empty header"),
            // Ports and brackets, as some proxies write them.
            (&["10.0.0.0/8"], &["[2001:db8::7]:443"], "10.0.0.2", "2001:db8::7", "bracketed v6 with port"),
            (&["10.0.0.0/8"], &["[2001:db8::7]"], "10.0.0.2", "2001:db8::7", "bracketed v6"),
            (&["10.0.0.0/8"], &["203.0.113.7:51234"], "10.0.0.2", "203.0.113.7", "v4 with port"),
            (&["10.0.0.0/8"], &[" 2001:db8::7 "], "10.0.0.2", "2001:db8::7", "bare v6"),
            (&["10.0.0.0/8"], &["::ffff:203.0.113.7"], "10.0.0.2", "203.0.113.7", "mapped v4 hop"),
            // A dual-stack listener reports a mapped peer: still the trusted proxy.
            (&["10.0.0.0/8"], &["203.0.113.7"], "::ffff:10.0.0.2", "203.0.113.7", "mapped peer"),
            (&["::1"], &["203.0.113.7"], "::1", "203.0.113.7", "v6 loopback proxy"),
        ];
        for (trusted, lines, peer, expected, what) in cases {
            let found = policy(trusted, xff).client_ip(ip(peer), &headers(xff, lines));
            assert_eq!(found, ip(expected), "{what}");
        }
    }

    #[test]
    fn only_the_configured_header_counts_and_forwarded_syntax_is_read() {
        let peer = ip("10.0.0.2");
        let real_ip = policy(&["10.0.0.0/8"], "x-real-ip");
        assert_eq!(real_ip.client_ip(peer, &headers("x-forwarded-for", &["203.0.113.7"])), peer, "another header is ignored");
        assert_eq!(real_ip.client_ip(peer, &headers("x-real-ip", &["203.0.113.7"])), ip("203.0.113.7"));

        let forwarded = policy(&["10.0.0.0/8"], "forwarded");
        let cases: &[(&str, &str)] = &[
            ("for=192.0.2.60;proto=http;by=203.0.113.43", "192.0.2.60"),
            ("For=\"[2001:db8:cafe::17]:4711\"", "2001:db8:cafe::17"),
            ("for=1.2.3.4, for=198.51.100.17;by=10.0.0.2", "198.51.100.17"),
            ("proto=https;for=198.51.100.17", "198.51.100.17"),
            ("for=unknown", "10.0.0.2"),
            ("for=_hidden, for=198.51.100.17", "198.51.100.17"),
            ("by=203.0.113.43", "10.0.0.2"),
            // Not visible ASCII: unreadable, so the trusted peer is the client.
            ("fé=1;for=198.51.100.17", "10.0.0.2"),
        ];
        for (line, expected) in cases {
            assert_eq!(forwarded.client_ip(peer, &headers("forwarded", &[line])), ip(expected), "{line}");
        }
    }

    #[test]
    fn a_header_that_is_not_text_leaves_the_trusted_peer_as_the_client() {
        let mut map = HeaderMap::new();
        map.insert("x-forwarded-for", HeaderValue::from_bytes(b"203.0.113.7\xff").unwrap());
        assert_eq!(policy(&["10.0.0.0/8"], "x-forwarded-for").client_ip(ip("10.0.0.2"), &map), ip("10.0.0.2"));
    }

    #[test]
    fn ipv6_clients_are_counted_by_their_64_and_ipv4_by_address() {
        let same = ["2001:db8:1:2::1", "2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2:abcd::9"];
        for addr in same {
            assert_eq!(IpBucket::of(ip(addr)), IpBucket::of(ip("2001:db8:1:2::")), "{addr}");
        }
        assert_ne!(IpBucket::of(ip("2001:db8:1:2::1")), IpBucket::of(ip("2001:db8:1:3::1")));
        assert_eq!(IpBucket::of(ip("2001:db8:1:2::1")).to_string(), "2001:db8:1:2::/64");
        assert_ne!(IpBucket::of(ip("192.0.2.1")), IpBucket::of(ip("192.0.2.2")));
        assert_eq!(IpBucket::of(ip("::ffff:192.0.2.1")), IpBucket::of(ip("192.0.2.1")));
        assert_eq!(IpBucket::of(ip("192.0.2.1")).to_string(), "192.0.2.1");
    }
}
