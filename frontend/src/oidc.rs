//! "Log in with <provider>": the browser's half of the OpenID Connect authorization code flow
//! with PKCE.
//!
//! [`start`] makes a PKCE verifier, a `state` and a `nonce` (32 random bytes each, from the
//! browser's `crypto.getRandomValues`), keeps them in `sessionStorage` (this tab only, gone
//! with it), and sends the browser to the provider with the verifier's S256 challenge
//! (`crypto.subtle`, so the app carries no hash code of its own). The provider sends it back
//! to `/login/callback`, where [`finish`] takes the kept values out (they serve once), checks
//! that `state` is the one sent (a callback this tab did not start is refused), and posts the
//! code, the verifier and the nonce to the server, which does the rest.

use confab_shared::{LoginProvider, OidcLogin, SessionTokens};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use crate::api::rest::{self, ApiError};

/// The `sessionStorage` key of the login in progress.
const PENDING_KEY: &str = "confab.oidc";
/// Where the provider sends the browser back.
pub const CALLBACK_PATH: &str = "/login/callback";

/// A login on its way through the provider, as kept in `sessionStorage`.
#[derive(Serialize, Deserialize)]
struct Pending {
    provider: String,
    state: String,
    nonce: String,
    verifier: String,
    redirect_uri: String,
    /// Where to go once logged in.
    next: String,
}

fn session_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.session_storage().ok().flatten()
}

/// 32 random bytes as base64url: 43 characters, valid as a PKCE verifier (RFC 7636).
fn random_token() -> Result<String, ApiError> {
    let crypto = web_sys::window().and_then(|w| w.crypto().ok()).ok_or_else(|| failure("This browser offers no secure random numbers."))?;
    let mut bytes = [0u8; 32];
    crypto.get_random_values_with_u8_array(&mut bytes[..]).map_err(|_| failure("This browser offers no secure random numbers."))?;
    Ok(base64url(&bytes))
}

/// The S256 challenge of `verifier`: base64url(SHA-256(verifier)).
async fn challenge(verifier: &str) -> Result<String, ApiError> {
    // `crypto.subtle` exists only in secure contexts: https, or http on localhost / 127.0.0.1.
    let subtle = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .map(|c| c.subtle())
        .ok_or_else(|| failure("Logging in with a provider needs a secure page (https)."))?;
    let mut data = verifier.as_bytes().to_vec();
    let promise = subtle
        .digest_with_str_and_u8_array("SHA-256", &mut data[..])
        .map_err(|_| failure("Logging in with a provider needs a secure page (https)."))?;
    let digest = JsFuture::from(promise).await.map_err(|_| failure("The browser could not hash the login's verifier."))?;
    let digest = digest.dyn_into::<js_sys::ArrayBuffer>().map_err(|_| failure("The browser could not hash the login's verifier."))?;
    Ok(base64url(&js_sys::Uint8Array::new(&digest).to_vec()))
}

/// Unpadded base64url (RFC 4648 §5).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn failure(message: &str) -> ApiError {
    ApiError { status: 0, message: message.to_owned(), field: None }
}

fn encode(value: &str) -> String {
    String::from(js_sys::encode_uri_component(value))
}

/// Sends the browser to `provider` to log in; afterwards the app continues at `next`.
/// Returns only on failure (the page is left otherwise).
pub async fn start(provider: &LoginProvider, next: &str) -> Result<(), ApiError> {
    let window = web_sys::window().ok_or_else(|| failure("No browser window."))?;
    let origin = window.location().origin().map_err(|_| failure("No page address."))?;
    let pending = Pending {
        provider: provider.name.clone(),
        state: random_token()?,
        nonce: random_token()?,
        verifier: random_token()?,
        redirect_uri: format!("{origin}{CALLBACK_PATH}"),
        next: next.to_owned(),
    };
    let challenge = challenge(&pending.verifier).await?;
    let storage = session_storage().ok_or_else(|| failure("This browser keeps no session storage, which logging in with a provider needs."))?;
    let text = serde_json::to_string(&pending).map_err(|_| failure("Could not keep the login's details."))?;
    storage.set_item(PENDING_KEY, &text).map_err(|_| failure("Could not keep the login's details."))?;
    let endpoint = &provider.authorization_endpoint;
    let separator = if endpoint.contains('?') { '&' } else { '?' };
    let url = format!(
        "{endpoint}{separator}response_type=code&client_id={}&redirect_uri={}&scope={}&state={}&nonce={}&code_challenge={challenge}&code_challenge_method=S256",
        encode(&provider.client_id),
        encode(&pending.redirect_uri),
        encode(&provider.scope),
        encode(&pending.state),
        encode(&pending.nonce),
    );
    window.location().assign(&url).map_err(|_| failure("Could not open the provider's page."))
}

/// What the provider's redirect brought: the query of `/login/callback`.
pub struct Callback {
    pub code: Option<String>,
    pub state: Option<String>,
    /// The provider's OAuth error code (`access_denied`, ...), when it sent one instead.
    pub error: Option<String>,
}

/// Completes the login this tab started: checks `state`, posts the code to the server.
/// Returns the tokens and where to go next.
pub async fn finish(callback: Callback) -> Result<(SessionTokens, String), ApiError> {
    let storage = session_storage();
    let pending: Option<Pending> = storage
        .as_ref()
        .and_then(|s| s.get_item(PENDING_KEY).ok().flatten())
        .and_then(|text| crate::util::from_json(&text).ok());
    // Used once, whatever happens next.
    if let Some(storage) = &storage {
        let _ = storage.remove_item(PENDING_KEY);
    }
    let Some(pending) = pending else {
        return Err(failure("This login was not started in this tab, or was finished already. Start again from the login page."));
    };
    if let Some(error) = callback.error {
        let code: String = error.chars().filter(|c| c.is_ascii_lowercase() || *c == '_').take(40).collect();
        return Err(failure(&format!("The provider did not log you in ({code}).")));
    }
    if callback.state.as_deref() != Some(pending.state.as_str()) {
        return Err(failure("This answer does not belong to the login this tab started. Start again from the login page."));
    }
    let Some(code) = callback.code.filter(|c| !c.is_empty()) else {
        return Err(failure("The provider sent no authorization code. Start again from the login page."));
    };
    let body = OidcLogin { code, code_verifier: pending.verifier, redirect_uri: pending.redirect_uri, nonce: pending.nonce };
    let tokens = rest::login_with(&pending.provider, &body).await?;
    Ok((tokens, pending.next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_rfc_4648_without_padding() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(&[0xfb, 0xff, 0xfe]), "-__-");
        assert_eq!(base64url(&[0u8; 32]).len(), 43);
    }
}
