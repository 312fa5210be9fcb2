//! Web Push's cryptography: the message encryption of RFC 8291 (`aes128gcm`, RFC 8188) and
//! the server's VAPID identity of RFC 8292, on *ring* (already the TLS provider).
//!
//! A push is one record: `salt (16) | rs (4096) | idlen (65) | the server's ephemeral public
//! key | AES-128-GCM(plaintext | 0x02)`. Salt and ephemeral key are fresh per message, so
//! two pushes of the same text never look alike; the keys come from ECDH with the browser's
//! `p256dh` key and HKDF salted with its `auth` secret, exactly as RFC 8291 §3.4 says (a unit
//! test checks the RFC's worked example byte for byte).
//!
//! The VAPID key is a P-256 key pair made once and kept in the data directory
//! (`vapid_private_key.pem`, PKCS#8, `0600`), or read from `CONFAB_VAPID_PRIVATE_KEY_FILE`;
//! every instance of a cluster must use the same one, since browsers bind each subscription
//! to it. Each push carries `Authorization: vapid t=<JWT>, k=<public key>`, the JWT being
//! ES256 over `{aud: <the endpoint's origin>, exp, sub}`.

use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use ring::{aead, agreement, hkdf};

/// The record size stated in every message's header (RFC 8188 §2; one record is all a push uses).
pub const RECORD_SIZE: u32 = 4096;
/// An uncompressed P-256 point: `0x04 | x | y`.
pub const PUBLIC_KEY_BYTES: usize = 65;
/// The browser's authentication secret.
pub const AUTH_BYTES: usize = 16;
/// Longest plaintext one record holds: the record size less the padding delimiter and the tag.
pub const MAX_PLAINTEXT_BYTES: usize = RECORD_SIZE as usize - 1 - 16 - 86;
/// How long a VAPID JWT is valid (RFC 8292 §2: at most 24 hours).
const JWT_LIFETIME_SECS: i64 = 12 * 3600;

/// Why a message could not be encrypted: the subscription's keys are unusable.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("p256dh is not a P-256 public key")]
    PublicKey,
    #[error("the message is too long for one record")]
    TooLong,
    #[error("encryption failed")]
    Crypto,
}

impl From<ring::error::Unspecified> for SealError {
    fn from(_: ring::error::Unspecified) -> Self {
        Self::Crypto
    }
}

/// Encrypts `plaintext` for a browser whose keys are `ua_public` (65 bytes) and `auth` (16
/// bytes), with a fresh salt and ephemeral key: the body of the push request.
pub fn encrypt(ua_public: &[u8], auth: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let rng = SystemRandom::new();
    let private = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng)?;
    let as_public = private.compute_public_key()?;
    let mut salt = [0u8; 16];
    ring::rand::SecureRandom::fill(&rng, &mut salt)?;
    let peer = agreement::UnparsedPublicKey::new(&agreement::ECDH_P256, ua_public);
    let secret = agreement::agree_ephemeral(private, &peer, <[u8]>::to_vec).map_err(|_| SealError::PublicKey)?;
    seal(&secret, auth, ua_public, as_public.as_ref(), &salt, plaintext)
}

/// RFC 8291 §3.4 from the ECDH secret on: what [`encrypt`] does after the key agreement,
/// apart so the RFC's example (fixed keys and salt) can be checked exactly.
pub fn seal(ecdh_secret: &[u8], auth: &[u8], ua_public: &[u8], as_public: &[u8], salt: &[u8; 16], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    if plaintext.len() > MAX_PLAINTEXT_BYTES {
        return Err(SealError::TooLong);
    }
    if ua_public.len() != PUBLIC_KEY_BYTES || as_public.len() != PUBLIC_KEY_BYTES {
        return Err(SealError::PublicKey);
    }
    let (cek, nonce) = content_keys(ecdh_secret, auth, ua_public, as_public, salt)?;
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(&aead::AES_128_GCM, &cek)?);
    // One record, the last: the plaintext, the delimiter 0x02, no padding.
    let mut record = Vec::with_capacity(plaintext.len() + 1 + aead::AES_128_GCM.tag_len());
    record.extend_from_slice(plaintext);
    record.push(2);
    key.seal_in_place_append_tag(aead::Nonce::assume_unique_for_key(nonce), aead::Aad::empty(), &mut record)?;
    let mut body = Vec::with_capacity(16 + 4 + 1 + PUBLIC_KEY_BYTES + record.len());
    body.extend_from_slice(salt);
    body.extend_from_slice(&RECORD_SIZE.to_be_bytes());
    body.push(PUBLIC_KEY_BYTES as u8);
    body.extend_from_slice(as_public);
    body.extend_from_slice(&record);
    Ok(body)
}

/// The content-encryption key and nonce (RFC 8291 §3.4, RFC 8188 §2.2 and §2.3).
fn content_keys(ecdh_secret: &[u8], auth: &[u8], ua_public: &[u8], as_public: &[u8], salt: &[u8]) -> Result<([u8; 16], [u8; 12]), SealError> {
    let prk_key = hkdf::Salt::new(hkdf::HKDF_SHA256, auth).extract(ecdh_secret);
    let mut ikm = [0u8; 32];
    prk_key.expand(&[b"WebPush: info\0".as_slice(), ua_public, as_public], Len(32))?.fill(&mut ikm)?;
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, salt).extract(&ikm);
    let mut cek = [0u8; 16];
    prk.expand(&[b"Content-Encoding: aes128gcm\0".as_slice()], Len(16))?.fill(&mut cek)?;
    let mut nonce = [0u8; 12];
    prk.expand(&[b"Content-Encoding: nonce\0".as_slice()], Len(12))?.fill(&mut nonce)?;
    Ok((cek, nonce))
}

/// An HKDF output length.
struct Len(usize);

impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// The server's VAPID identity: the key pair and the `sub` claim.
pub struct Vapid {
    key: EcdsaKeyPair,
    /// The public key in base64url, as `k=` and `GET /api/push/key` give it.
    public: String,
    subject: String,
}

impl std::fmt::Debug for Vapid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vapid").field("public", &self.public).field("subject", &self.subject).finish_non_exhaustive()
    }
}

/// The file the generated key is kept in, in the data directory.
pub const KEY_FILE: &str = "vapid_private_key.pem";

impl Vapid {
    /// The key of `configured` (a PKCS#8 PEM file), or the one kept in the data directory,
    /// made on first start.
    pub fn load(configured: Option<&Path>, data_dir: &Path, subject: &str) -> anyhow::Result<Self> {
        if let Some(path) = configured {
            let pem = std::fs::read_to_string(path).with_context(|| format!("reading CONFAB_VAPID_PRIVATE_KEY_FILE {}", path.display()))?;
            return Self::from_pem(&pem, subject)
                .with_context(|| format!("CONFAB_VAPID_PRIVATE_KEY_FILE {} is not a P-256 private key in PKCS#8 PEM", path.display()));
        }
        let path = data_dir.join(KEY_FILE);
        if let Ok(pem) = std::fs::read_to_string(&path) {
            crate::files::tighten(&path).with_context(|| format!("restricting {}", path.display()))?;
            return Self::from_pem(&pem, subject).with_context(|| format!("{} is not a P-256 private key in PKCS#8 PEM", path.display()));
        }
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("no VAPID key could be generated"))?;
        let pem = to_pem(pkcs8.as_ref());
        crate::files::create_data_dir(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
        let mut file = crate::files::create_private(&path).with_context(|| format!("writing {}", path.display()))?;
        std::io::Write::write_all(&mut file, pem.as_bytes()).with_context(|| format!("writing {}", path.display()))?;
        tracing::info!(path = %path.display(), "generated the VAPID key for Web Push");
        Self::from_pem(&pem, subject)
    }

    /// A key from PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, what `openssl genpkey -algorithm
    /// EC -pkeyopt ec_paramgen_curve:P-256` writes).
    pub fn from_pem(pem: &str, subject: &str) -> anyhow::Result<Self> {
        let body: String = pem
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != "-----BEGIN PRIVATE KEY-----")
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        anyhow::ensure!(!body.is_empty(), "no `-----BEGIN PRIVATE KEY-----` block");
        let der = STANDARD.decode(body).context("the PEM block is not base64")?;
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &der, &SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("not a P-256 key in PKCS#8"))?;
        let public = URL_SAFE_NO_PAD.encode(key.public_key().as_ref());
        Ok(Self { key, public, subject: subject.to_owned() })
    }

    /// The public key, base64url without padding.
    pub fn public_key(&self) -> &str {
        &self.public
    }

    /// The `Authorization` header of a push to `endpoint`, valid from `now` (Unix seconds).
    pub fn authorization(&self, endpoint: &reqwest::Url, now: i64) -> Result<String, SealError> {
        let audience = endpoint.origin().ascii_serialization();
        let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ES256"}"#);
        let claims = serde_json::json!({ "aud": audience, "exp": now + JWT_LIFETIME_SECS, "sub": self.subject });
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signing_input = format!("{header}.{claims}");
        let signature = self.key.sign(&SystemRandom::new(), signing_input.as_bytes())?;
        Ok(format!("vapid t={signing_input}.{}, k={}", URL_SAFE_NO_PAD.encode(signature.as_ref()), self.public))
    }
}

fn to_pem(der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str("-----END PRIVATE KEY-----\n");
    pem
}

/// Base64url text (padding tolerated) as bytes of exactly `len`, or `None`.
pub fn decode_key(text: &str, len: usize) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()?;
    (bytes.len() == len).then_some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(text: &str) -> Vec<u8> {
        URL_SAFE_NO_PAD.decode(text).unwrap_or_default()
    }

    /// RFC 8291 Appendix A: its keys, salt and plaintext give exactly its message.
    #[test]
    fn the_rfc_8291_example_encrypts_to_the_rfc_s_bytes() {
        let salt: [u8; 16] = b64("DGv6ra1nlYgDCS1FRnbzlw").try_into().unwrap_or_default();
        let ua_public = b64("BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4");
        let as_public = b64("BP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A8");
        let auth = b64("BTBZMqHH6r4Tts7J_aSIgg");
        let ecdh = b64("kyrL1jIIOHEzg3sM2ZWRHDRB62YACZhhSlknJ672kSs");
        let (cek, nonce) = content_keys(&ecdh, &auth, &ua_public, &as_public, &salt).expect("keys");
        assert_eq!(URL_SAFE_NO_PAD.encode(cek), "oIhVW04MRdy2XN9CiKLxTg");
        assert_eq!(URL_SAFE_NO_PAD.encode(nonce), "4h_95klXJ5E_qnoN");
        let body = seal(&ecdh, &auth, &ua_public, &as_public, &salt, b"When I grow up, I want to be a watermelon").expect("sealed");
        assert_eq!(
            URL_SAFE_NO_PAD.encode(body),
            "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
        );
    }

    #[test]
    fn each_message_has_its_own_salt_and_ephemeral_key_and_bad_keys_are_refused() {
        let rng = SystemRandom::new();
        let ua = agreement::EphemeralPrivateKey::generate(&agreement::ECDH_P256, &rng).expect("a key");
        let ua_public = ua.compute_public_key().expect("its public key");
        let first = encrypt(ua_public.as_ref(), &[7; 16], b"same").expect("sealed");
        let second = encrypt(ua_public.as_ref(), &[7; 16], b"same").expect("sealed");
        assert_ne!(first[..16], second[..16], "salt");
        assert_ne!(first[21..86], second[21..86], "ephemeral key");
        assert_eq!(first[16..21], [0, 0, 0x10, 0, 65]);
        let mut off_curve = ua_public.as_ref().to_vec();
        off_curve[40] ^= 1;
        assert!(matches!(encrypt(&off_curve, &[7; 16], b"x"), Err(SealError::PublicKey)));
        assert!(matches!(encrypt(ua_public.as_ref(), &[7; 16], &[0; MAX_PLAINTEXT_BYTES + 1]), Err(SealError::TooLong)));
    }

    #[test]
    fn a_vapid_key_is_made_once_owner_only_and_signs_a_jwt_for_the_endpoint_s_origin() {
        let dir = tempfile::tempdir().expect("a dir");
        let vapid = Vapid::load(None, dir.path(), "mailto:ops@example.com").expect("made");
        let again = Vapid::load(None, dir.path(), "mailto:ops@example.com").expect("read");
        assert_eq!(vapid.public_key(), again.public_key());
        assert_eq!(decode_key(vapid.public_key(), PUBLIC_KEY_BYTES).map(|k| k[0]), Some(4));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(KEY_FILE)).map(|m| m.permissions().mode() & 0o777).unwrap_or_default();
            assert_eq!(mode, 0o600);
        }
        let url = reqwest::Url::parse("https://push.example.net:8443/send/abc?x=1").expect("a URL");
        let header = vapid.authorization(&url, 1_000).expect("signed");
        let (t, k) = header.strip_prefix("vapid t=").and_then(|rest| rest.split_once(", k=")).expect("vapid t=…, k=…");
        assert_eq!(k, vapid.public_key());
        let (input, signature) = t.rsplit_once('.').expect("three parts");
        let public = ring::signature::UnparsedPublicKey::new(&ring::signature::ECDSA_P256_SHA256_FIXED, b64(k));
        assert!(public.verify(input.as_bytes(), &b64(signature)).is_ok(), "an ES256 signature by the key");
        let claims: serde_json::Value = serde_json::from_slice(&b64(input.split('.').nth(1).unwrap_or_default())).unwrap_or_default();
        assert_eq!(claims, serde_json::json!({"aud": "https://push.example.net:8443", "exp": 1_000 + JWT_LIFETIME_SECS, "sub": "mailto:ops@example.com"}));
        let broken = Vapid::from_pem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "mailto:x@y");
        assert!(broken.is_err());
    }
}
