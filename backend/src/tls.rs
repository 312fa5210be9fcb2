//! The TLS of Confab's outgoing HTTPS clients (webhook deliveries, JWKS fetches): rustls on
//! *ring*, the provider sqlx, jsonwebtoken and rcgen already build, so the workspace compiles
//! one crypto library rather than two (aws-lc, reqwest's default, is 3 minutes of C on two
//! cores).
//!
//! reqwest is built without a provider of its own (`rustls-no-provider`) and takes the
//! process's default, which [`install`] sets. Every client is built after it: the server and
//! the CLI call it first thing, and the functions here that build clients call it again, so
//! a program (or a test) using the library needs nothing more.

/// Makes *ring* the process's rustls provider; does nothing when one is installed already.
pub fn install() {
    // `Err` means a provider is already the default: ours, or the embedding program's.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A reqwest client builder for a process whose provider is installed.
pub fn client_builder() -> reqwest::ClientBuilder {
    install();
    reqwest::Client::builder()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_client_builds_with_the_provider_installed() {
        assert!(super::client_builder().build().is_ok());
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }
}
