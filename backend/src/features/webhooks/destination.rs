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
use std::sync::Arc;
use std::time::Duration;

use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Longest URL accepted.
pub const MAX_URL_CHARS: usize = 2000;
/// The whole attempt, connect to last byte.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A webhook URL, or why it is refused.
pub fn parse(raw: &str, allow_private: bool) -> Result<Url, &'static str> {
    if raw.len() > MAX_URL_CHARS {
        return Err("must be at most 2000 characters");
    }
    let url = Url::parse(raw.trim()).map_err(|_| "is not a valid URL")?;
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

/// Whether an address is on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (carrier-grade NAT)
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
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
    Ok(reqwest::Client::builder()
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
