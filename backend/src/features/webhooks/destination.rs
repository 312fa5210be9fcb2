//! Where a webhook may post: `http(s)://` URLs whose host is not loopback, private,
//! link-local or otherwise internal, unless `CONFAB_WEBHOOK_ALLOW_PRIVATE` allows it.
//!
//! A name is checked where it is resolved, by the HTTP client's resolver: the addresses
//! connected to are exactly the ones checked, so a name that resolves differently later
//! (DNS rebinding) gains nothing. Address literals never reach a resolver and are checked
//! before each request.
//!
//! `https://` destinations are verified (rustls) against Mozilla's roots compiled into the
//! binary (`webpki-root-certs`: the same trust on every host, nothing read or fetched at
//! run time), plus the certificates of `CONFAB_WEBHOOK_CA_FILE` for internal endpoints
//! signed by a private CA.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use confab_shared::webhooks::{MAX_WEBHOOK_URL_CHARS, WEBHOOK_URL_PATTERN};

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Longest URL accepted, in characters (as the schema's `maxLength` counts).
pub const MAX_URL_CHARS: usize = MAX_WEBHOOK_URL_CHARS;
/// The whole attempt, connect to last byte.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// [`WEBHOOK_URL_PATTERN`], compiled once.
static PATTERN: LazyLock<Option<regex::Regex>> = LazyLock::new(|| match regex::Regex::new(WEBHOOK_URL_PATTERN) {
    Ok(pattern) => Some(pattern),
    Err(err) => {
        // A unit test compiles it, so this cannot ship; refuse every URL rather than panic.
        tracing::error!(%err, "the webhook URL pattern does not compile");
        None
    }
});

/// A new webhook's URL, or why it is refused: exactly what the OpenAPI schema of
/// `CreateWebhook.url` states (length, then the pattern), then the destination rules.
pub fn parse(raw: &str, allow_private: bool) -> Result<Url, &'static str> {
    if raw.chars().count() > MAX_URL_CHARS {
        return Err("must be at most 2000 characters");
    }
    if !PATTERN.as_ref().is_some_and(|pattern| pattern.is_match(raw)) {
        let lower = raw.get(..8).unwrap_or(raw).to_ascii_lowercase();
        return Err(if lower.starts_with("http://") || lower.starts_with("https://") {
            "is not a valid URL: http(s)://host[:port][/path][?query] with a DNS name, an IPv4 address or a \
             [bracketed] IPv6 address as the host, and other characters than letters, digits and -._~!$&'()*+,;=:@/? \
             percent-encoded"
        } else {
            "must be an http:// or https:// URL (lower case)"
        });
    }
    let url = Url::parse(raw).map_err(|_| "is not a valid URL")?;
    check(url, allow_private)
}

/// A stored webhook's URL (it passed [`parse`] when it was registered), checked again
/// against the destination rules, which may have changed since.
pub fn parse_stored(raw: &str, allow_private: bool) -> Result<Url, &'static str> {
    check(Url::parse(raw).map_err(|_| "is not a valid URL")?, allow_private)
}

/// The scheme, host and destination rules.
fn check(url: Url, allow_private: bool) -> Result<Url, &'static str> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL");
    }
    let Some(host) = url.host_str() else { return Err("must name a host") };
    if !allow_private {
        let internal_name = host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost");
        if internal_name || literal(&url).is_some_and(|ip| !is_public(ip)) {
            return Err("points to a loopback or private address");
        }
    }
    Ok(url)
}

/// The URL's host, when it is an address literal.
pub fn literal(url: &Url) -> Option<IpAddr> {
    url.host_str()?.trim_start_matches('[').trim_end_matches(']').parse().ok()
}

/// Whether an address is on the public internet: outside every block of the IANA IPv4 and
/// IPv6 Special-Purpose Address Registries (RFC 6890 and later), even those the registry
/// calls globally reachable (anycast relays, AS112 sinks: no webhook lives there), outside
/// multicast, and for IPv6 inside global unicast (`2000::/3`; the rest is reserved or
/// deprecated, site-local `fec0::/10` included).
///
/// Addresses that carry an IPv4 address (IPv4-mapped `::ffff:0:0/96`, IPv4-compatible
/// `::/96`, the NAT64 well-known prefix `64:ff9b::/96`, 6to4 `2002::/16`) are judged by that
/// address: a translator or relay would deliver to it. Teredo (`2001::/32`) obfuscates its
/// addresses and lies in `2001::/23`, which the registry reserves: never public, like the
/// local-use NAT64 prefix `64:ff9b:1::/48`, whose translators are by definition inside.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

/// The IPv4 address an IPv6 address stands for, when it is of a form that carries one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let last32 = Ipv4Addr::from(u128::from(ip) as u32);
    match s {
        // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d (:: and ::1 included:
        // they stand for 0.0.0.0 and 0.0.0.1, in "this network", so neither is public).
        [0, 0, 0, 0, 0, 0xffff | 0, _, _] => Some(last32),
        // NAT64, the well-known prefix (RFC 6052): 64:ff9b::a.b.c.d.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(last32),
        // 6to4 (RFC 3056): 2002:AABB:CCDD::/48 routes to a.b.c.d.
        [0x2002, high, low, ..] => Some(Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))),
        _ => None,
    }
}

/// The IANA IPv4 Special-Purpose Address Registry, every entry, plus multicast.
const SPECIAL_V4: &[(Ipv4Addr, u8)] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8),         // "this network" (0.0.0.0/32 "this host" inside)
    (Ipv4Addr::new(10, 0, 0, 0), 8),        // private use
    (Ipv4Addr::new(100, 64, 0, 0), 10),     // shared address space (carrier-grade NAT)
    (Ipv4Addr::new(127, 0, 0, 0), 8),       // loopback
    (Ipv4Addr::new(169, 254, 0, 0), 16),    // link local (cloud metadata services)
    (Ipv4Addr::new(172, 16, 0, 0), 12),     // private use
    (Ipv4Addr::new(192, 0, 0, 0), 24),      // IETF protocol assignments (DS-Lite, PCP, TURN, NAT64 discovery inside)
    (Ipv4Addr::new(192, 0, 2, 0), 24),      // documentation (TEST-NET-1)
    (Ipv4Addr::new(192, 31, 196, 0), 24),   // AS112-v4
    (Ipv4Addr::new(192, 52, 193, 0), 24),   // AMT
    (Ipv4Addr::new(192, 88, 99, 0), 24),    // deprecated 6to4 relay anycast
    (Ipv4Addr::new(192, 168, 0, 0), 16),    // private use
    (Ipv4Addr::new(192, 175, 48, 0), 24),   // direct delegation AS112 service
    (Ipv4Addr::new(198, 18, 0, 0), 15),     // benchmarking
    (Ipv4Addr::new(198, 51, 100, 0), 24),   // documentation (TEST-NET-2)
    (Ipv4Addr::new(203, 0, 113, 0), 24),    // documentation (TEST-NET-3)
    (Ipv4Addr::new(224, 0, 0, 0), 4),       // multicast (its own registry)
    (Ipv4Addr::new(240, 0, 0, 0), 4),       // reserved, 255.255.255.255 limited broadcast inside
];

/// The IANA IPv6 Special-Purpose Address Registry entries inside global unicast `2000::/3`
/// (everything outside it is refused anyway), other than the forms judged by their IPv4.
const SPECIAL_V6: &[(Ipv6Addr, u8)] = &[
    (Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 23),          // IETF protocol assignments (Teredo, ORCHID, AMT, AS112, DETs inside)
    (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32),      // documentation
    (Ipv6Addr::new(0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0), 48),  // direct delegation AS112 service
    (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20),          // documentation
];

fn in_v4(ip: Ipv4Addr, (net, len): (Ipv4Addr, u8)) -> bool {
    let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
    u32::from(ip) & mask == u32::from(net) & mask
}

fn in_v6(ip: Ipv6Addr, (net, len): (Ipv6Addr, u8)) -> bool {
    let mask = u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0);
    u128::from(ip) & mask == u128::from(net) & mask
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    !SPECIAL_V4.iter().any(|&block| in_v4(ip, block))
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let global_unicast = (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3);
    in_v6(ip, global_unicast) && !SPECIAL_V6.iter().any(|&block| in_v6(ip, block))
}

/// The system resolver, keeping only addresses a webhook may reach.
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found.into_iter().filter(|a| allow_private || is_public(a.ip())).collect();
            if allowed.is_empty() {
                return Err(format!("{host} resolves only to loopback or private addresses").into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// Why the delivery client could not be built (a start-up error: nothing is delivered
/// without it).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read the webhook CA file {path}: {source}")]
    CaFile { path: PathBuf, source: std::io::Error },
    #[error("the webhook CA file {path} is not a PEM certificate bundle: {source}")]
    CaBundle { path: PathBuf, source: reqwest::Error },
    #[error("the webhook CA file {0} holds no PEM certificate")]
    NoCertificate(PathBuf),
    #[error("the webhook HTTP client: {0}")]
    Build(#[from] reqwest::Error),
}

/// The roots `https://` destinations are checked against: Mozilla's, and `ca_file`'s.
fn roots(ca_file: Option<&Path>) -> Result<Vec<reqwest::Certificate>, ClientError> {
    let mut roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
        .iter()
        .map(|der| reqwest::Certificate::from_der(der.as_ref()))
        .collect::<reqwest::Result<Vec<_>>>()?;
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|source| ClientError::CaFile { path: path.to_owned(), source })?;
        let extra = reqwest::Certificate::from_pem_bundle(&pem).map_err(|source| ClientError::CaBundle { path: path.to_owned(), source })?;
        if extra.is_empty() {
            return Err(ClientError::NoCertificate(path.to_owned()));
        }
        roots.extend(extra);
    }
    Ok(roots)
}

/// The client every delivery uses: 10 s per attempt, no redirects, no proxies, the guarded
/// resolver, TLS verified against [`roots`] only.
pub fn client(allow_private: bool, ca_file: Option<&Path>) -> Result<reqwest::Client, ClientError> {
    Ok(crate::tls::client_builder()
        .timeout(TIMEOUT)
        .connect_timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("Confab-Webhooks/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .tls_certs_only(roots(ca_file)?)
        .build()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_destinations_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:9000/hook",
            "http://localhost/hook",
            "http://10.1.2.3/",
            "http://192.168.0.10/",
            "http://172.20.0.1/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0/",
            "http://100.64.0.1/",
        ] {
            assert_eq!(parse(url, false).err(), Some("points to a loopback or private address"), "{url}");
            assert!(parse(url, true).is_ok(), "{url} with private destinations allowed");
        }
        assert!(parse("https://hooks.example.com/confab", false).is_ok());
        assert!(parse("http://93.184.216.34/", false).is_ok());
    }

    /// Every entry of the IANA IPv4 Special-Purpose Address Registry (as of 2025), the
    /// multicast block, and the limited broadcast address.
    const IANA_V4: &[&str] = &[
        "0.0.0.0/8", "0.0.0.0/32", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16",
        "172.16.0.0/12", "192.0.0.0/24", "192.0.0.0/29", "192.0.0.8/32", "192.0.0.9/32", "192.0.0.10/32",
        "192.0.0.170/32", "192.0.0.171/32", "192.0.2.0/24", "192.31.196.0/24", "192.52.193.0/24",
        "192.88.99.0/24", "192.168.0.0/16", "192.175.48.0/24", "198.18.0.0/15", "198.51.100.0/24",
        "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32", "224.0.0.0/4",
    ];

    /// Every entry of the IANA IPv6 Special-Purpose Address Registry (as of 2025), plus
    /// multicast and the deprecated site-local block.
    const IANA_V6: &[&str] = &[
        "::1/128", "::/128", "::ffff:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "100::/64",
        "100:0:0:1::/64", "2001::/23", "2001::/32", "2001:1::1/128", "2001:1::2/128", "2001:1::3/128",
        "2001:2::/48", "2001:3::/32", "2001:4:112::/48", "2001:10::/28", "2001:20::/28", "2001:30::/28",
        "2001:db8::/32", "2002::/16", "2620:4f:8000::/48", "3fff::/20", "5f00::/16", "fc00::/7",
        "fe80::/10", "fec0::/10", "ff00::/8",
        // The IPv4 carriers again, holding private blocks; IPv4-compatible (deprecated, not listed).
        "::ffff:10.0.0.0/104", "64:ff9b::10.0.0.0/104", "2002:a00::/24", "::10.0.0.0/104",
    ];

    fn first_and_last(cidr: &str) -> [IpAddr; 2] {
        let (net, len) = cidr.split_once('/').expect("a CIDR block");
        let len: u32 = len.parse().expect("a prefix length");
        match net.parse::<IpAddr>().expect("an address") {
            IpAddr::V4(v4) => {
                let host = u32::MAX.checked_shr(len).unwrap_or(0);
                [IpAddr::V4(v4), IpAddr::V4(Ipv4Addr::from(u32::from(v4) | host))]
            }
            IpAddr::V6(v6) => {
                let host = u128::MAX.checked_shr(len).unwrap_or(0);
                [IpAddr::V6(v6), IpAddr::V6(Ipv6Addr::from(u128::from(v6) | host))]
            }
        }
    }

    #[test]
    fn no_address_of_any_special_purpose_block_is_public() {
        for cidr in IANA_V4.iter().chain(IANA_V6) {
            for ip in first_and_last(cidr) {
                assert!(!is_public(ip), "{ip} (in {cidr}) counted as public");
            }
        }
    }

    #[test]
    fn addresses_that_carry_an_ipv4_address_are_judged_by_it() {
        for (ip, public) in [
            ("::ffff:93.184.216.34", true),
            ("::ffff:127.0.0.1", false),
            ("::93.184.216.34", true),
            ("::127.0.0.1", false),
            ("::192.0.0.9", false),
            ("64:ff9b::93.184.216.34", true),
            ("64:ff9b::169.254.169.254", false),
            ("64:ff9b::c0a8:1", false),
            ("2002:5db8:d822::1", true),
            ("2002:7f00:1::1", false),
            ("2002:c0a8:101::1", false),
            // Not a carrier: the local-use NAT64 prefix and Teredo, whatever they hold.
            ("64:ff9b:1::5db8:d822", false),
            ("2001:0:5db8:d822::1", false),
        ] {
            let ip: IpAddr = ip.parse().expect("an address");
            assert_eq!(is_public(ip), public, "{ip}");
        }
    }

    #[test]
    fn ordinary_internet_addresses_are_public() {
        for ip in ["93.184.216.34", "8.8.8.8", "1.1.1.1", "192.0.1.1", "100.128.0.1", "198.20.0.1", "223.255.255.255", "2606:4700::1111", "2a00:1450:4001::1", "2001:200::1", "2c0f::1"] {
            let ip: IpAddr = ip.parse().expect("an address");
            assert!(is_public(ip), "{ip} counted as internal");
        }
    }

    #[test]
    fn literal_hosts_of_every_internal_form_are_refused_in_urls() {
        for url in ["http://[64:ff9b::7f00:1]/", "http://[::7f00:1]/", "http://[2002:a00:1::1]/", "http://[2001::1]/", "http://[fec0::1]/", "http://192.0.0.170/"] {
            assert_eq!(parse(url, false).err(), Some("points to a loopback or private address"), "{url}");
        }
    }

    #[test]
    fn every_url_of_the_documented_forms_is_accepted() {
        let hosts = [
            "a", "example.com", "x_y.example", "a-b.c-d.example", "xn--bcher-kva.example", "93.184.216.34", "255.255.255.255",
            "0.0.0.0", "[::]", "[::1]", "[1:2:3:4:5:6:7:8]", "[1::]", "[1:2:3:4:5:6:7::]", "[::2:3:4:5:6:7:8]", "[::ffff:1.2.3.4]",
            "[1:2:3:4:5:6:1.2.3.4]", "[1::2:3.4.5.6]", "[::1.2.3.4]", "[2001:DB8::a]",
        ];
        for scheme in ["http://", "https://"] {
            for user in ["", "u@", "u:p@", "%41:b%20c@"] {
                for host in hosts {
                    for port in ["", ":0", ":80", ":65535"] {
                        for tail in ["", "/", "/a/b", "/%20?x=1&y='2'#frag", "?q", "#f", "/./../a", "/:@!$&'()*+,;=~._-"] {
                            let url = format!("{scheme}{user}{host}{port}{tail}");
                            assert!(parse(&url, true).is_ok(), "{url}: {:?}", parse(&url, true));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn urls_outside_the_documented_forms_are_refused_before_the_parser_sees_them() {
        for url in [
            "HTTP://a.example/", " http://a.example/", "http://a.example/ ", "http://1.2.3.04/", "http://123/", "http://0x7f.0.0.1/",
            "http://1.2.3/", "http://a.example:65536/", "http://a.example:080/", "http://[1:2:3:4:5:6:7:8::]/", "http://[::1.2.3.4.5]/",
            "http://[1:2:3:4:5:6:7:1.2.3.4]/", "http://[fe80::1%eth0]/", "http://a b/", "http://a.example/ü", "http://bücher.example/",
            "http://a.example/%zz", "http://a.example/a\\b", "http://-a.example/", "http://a-.example/", "http://a..example/",
            "http://a.example./", "http://a.1example/", "http://u@v@a.example/", "http://a.example/<script>", "http:///a", "http:a.example",
        ] {
            assert!(parse(url, true).is_err(), "{url} was accepted");
        }
        let long = format!("https://example.com/{}", "é".repeat(MAX_URL_CHARS));
        assert_eq!(parse(&long, true).err(), Some("must be at most 2000 characters"));
    }

    /// Random strings of URL characters: whatever the pattern admits, the URL parser and the
    /// destination rules accept (a schema-driven client never sees a 422 for a URL it
    /// generated from the schema).
    #[test]
    fn whatever_the_pattern_admits_the_parser_accepts() {
        use rand::{Rng as _, SeedableRng as _};
        let pattern = regex::Regex::new(WEBHOOK_URL_PATTERN).expect("the pattern compiles");
        let alphabet: Vec<char> = "aZ09.:-_[]%@/?#xf:::..1255fe80ffff!$&'()*+,;=~ \\".chars().collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut admitted = 0;
        for _ in 0..200_000 {
            let len = rng.gen_range(1..24);
            let tail: String = (0..len).map(|_| alphabet[rng.gen_range(0..alphabet.len())]).collect();
            let url = format!("http://{tail}");
            if pattern.is_match(&url) {
                admitted += 1;
                assert!(parse(&url, true).is_ok(), "{url}: {:?}", parse(&url, true));
            } else {
                assert!(parse(&url, true).is_err(), "{url}");
            }
        }
        assert!(admitted > 1000, "the sample must exercise the pattern: {admitted}");
    }

    #[test]
    fn only_http_and_https_urls_are_accepted() {
        for url in ["ftp://example.com/", "file:///etc/passwd", "gopher://example.com", "not a url", "http://"] {
            assert!(parse(url, true).is_err(), "{url}");
        }
        assert!(parse(&format!("https://example.com/{}", "a".repeat(2000)), false).is_err());
    }

    #[test]
    fn a_missing_or_empty_ca_file_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("missing.pem");
        let err = client(false, Some(&missing)).expect_err("no such file");
        assert!(matches!(err, ClientError::CaFile { .. }) && err.to_string().contains("missing.pem"), "{err}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificate here\n").expect("write");
        assert!(matches!(client(false, Some(&empty)), Err(ClientError::NoCertificate(_))));
        assert!(client(false, None).is_ok(), "the bundled roots alone make a client");
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_loopback_addresses() {
        let guarded = GuardedResolver { allow_private: false };
        let name: Name = "localhost".parse().expect("a name");
        assert!(guarded.resolve(name).await.is_err());
        let open = GuardedResolver { allow_private: true };
        let name: Name = "localhost".parse().expect("a name");
        assert!(open.resolve(name).await.is_ok());
    }
}
