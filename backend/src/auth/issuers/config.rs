//! The issuers file (`CONFAB_ISSUERS_FILE`): its TOML keys, and the checks made at start.
//!
//! Every mistake stops the server with a message that names the entry (`issuer "sso"`, or
//! its position when it has no name) and the field: an unknown key, no key source or two,
//! a secret under 32 bytes, algorithms the key cannot verify, an unreadable key file.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::auth::token::MIN_SECRET_BYTES;

/// One `[[issuer]]` entry as written; the keys are a contract (documented in docs/identity.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub secret: Option<String>,
    pub secret_file: Option<PathBuf>,
    pub public_key_file: Option<PathBuf>,
    pub jwks_url: Option<String>,
    pub discovery: Option<String>,
    pub algorithms: Vec<String>,
    pub iss: Option<String>,
    pub aud: Option<String>,
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    #[serde(default = "default_name_claim")]
    pub name_claim: String,
    pub rooms_claim: Option<String>,
    #[serde(default)]
    pub rooms_claim_exclusive: bool,
    pub admin_claim: Option<String>,
    pub admin_value: Option<String>,
    #[serde(default = "yes")]
    pub require_exp: bool,
    #[serde(default = "default_max_age")]
    pub max_age_secs: u64,
    /// The least time between two JWKS fetches for unknown key ids (the refetch storm bound).
    #[serde(default = "default_refetch")]
    pub jwks_refetch_secs: u64,
    /// Offer "Log in with" this provider on the web app's login page (OpenID Connect
    /// authorization code flow with PKCE; needs `discovery` and `client_id`).
    #[serde(default)]
    pub login: bool,
    /// The client Confab is registered as at the provider (the ID token's `aud`).
    pub client_id: Option<String>,
    /// The client's secret, sent to the token endpoint (HTTP Basic) for a confidential client;
    /// a public client has none (PKCE alone binds the code to the browser that asked).
    pub client_secret: Option<String>,
    /// What the login button says after "Log in with" (default: `name`).
    pub label: Option<String>,
}

fn default_user_claim() -> String {
    "sub".to_owned()
}
fn default_name_claim() -> String {
    "preferred_username".to_owned()
}
fn yes() -> bool {
    true
}
fn default_max_age() -> u64 {
    3600
}
fn default_refetch() -> u64 {
    30
}

/// The kind of key, which alone decides the algorithms a token may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Hmac,
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl Family {
    /// Whether a key of this kind verifies `alg` (RFC 7518: an EC key's curve fixes its hash).
    pub fn allows(self, alg: Algorithm) -> bool {
        use Algorithm::*;
        match self {
            Self::Hmac => matches!(alg, HS256 | HS384 | HS512),
            Self::Rsa => matches!(alg, RS256 | RS384 | RS512 | PS256 | PS384 | PS512),
            Self::EcP256 => alg == ES256,
            Self::EcP384 => alg == ES384,
            Self::Ed25519 => alg == EdDSA,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Hmac => "a shared secret",
            Self::Rsa => "an RSA key",
            Self::EcP256 => "an EC P-256 key",
            Self::EcP384 => "an EC P-384 key",
            Self::Ed25519 => "an Ed25519 key",
        }
    }
}

/// A verification key and its kind.
#[derive(Clone)]
pub struct Key {
    pub family: Family,
    pub key: DecodingKey,
}

/// Where an issuer's keys come from, resolved at start where that is possible.
pub enum Source {
    /// A secret or a PEM file: one key, known at start.
    Static(Key),
    /// A JWKS document, fetched (and refetched) while serving.
    JwksUrl(String),
    /// OpenID Connect discovery, whose `jwks_uri` names the JWKS.
    Discovery(String),
}

/// A checked entry: what verifying needs.
pub struct Checked {
    pub entry: Entry,
    pub source: Source,
    pub algorithms: Vec<Algorithm>,
}

/// Reads and checks the issuers file; the error names the file, the entry and the field.
pub fn load(path: &Path) -> anyhow::Result<Vec<Checked>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the issuers file {}", path.display()))?;
    parse(&text, path.parent().unwrap_or(Path::new("."))).with_context(|| format!("in the issuers file {}", path.display()))
}

/// Parses and checks the file's text; relative key files are read from `base`.
pub fn parse(text: &str, base: &Path) -> anyhow::Result<Vec<Checked>> {
    let mut table: toml::Table = text.parse().map_err(|e: toml::de::Error| anyhow!("not valid TOML: {}", e.message()))?;
    if let Some(key) = table.keys().find(|k| *k != "issuer") {
        bail!("unknown key `{key}` (the file holds `[[issuer]]` entries only)");
    }
    let Some(list) = table.remove("issuer") else { return Ok(Vec::new()) };
    let toml::Value::Array(list) = list else { bail!("`issuer` must be a list of tables: write each entry as [[issuer]]") };
    let mut checked: Vec<Checked> = Vec::with_capacity(list.len());
    for (at, value) in list.into_iter().enumerate() {
        let label = match value.get("name").and_then(toml::Value::as_str) {
            Some(name) => format!("issuer \"{name}\""),
            None => format!("issuer #{}", at + 1),
        };
        let entry = Entry::deserialize(value).map_err(|e| anyhow!("{label}: {}", e.message()))?;
        if entry.name.trim().is_empty() {
            bail!("{label}: field `name` must not be empty");
        }
        if checked.iter().any(|c| c.entry.name == entry.name) {
            bail!("{label}: field `name` is used by another entry; names are unique");
        }
        checked.push(check(entry, base).map_err(|e| anyhow!("{label}: {e}"))?);
    }
    Ok(checked)
}

fn check(entry: Entry, base: &Path) -> anyhow::Result<Checked> {
    let given: Vec<&str> = [
        ("secret", entry.secret.is_some()),
        ("secret_file", entry.secret_file.is_some()),
        ("public_key_file", entry.public_key_file.is_some()),
        ("jwks_url", entry.jwks_url.is_some()),
        ("discovery", entry.discovery.is_some()),
    ]
    .into_iter()
    .filter_map(|(field, set)| set.then_some(field))
    .collect();
    match given.as_slice() {
        [] => bail!("no key source: set one of the fields `secret`, `secret_file`, `public_key_file`, `jwks_url`, `discovery`"),
        [_] => {}
        several => bail!("fields {} are each a key source; set exactly one", several.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>().join(", ")),
    }
    if entry.algorithms.is_empty() {
        bail!("field `algorithms` is empty; list the algorithms the issuer signs with");
    }
    let mut algorithms = Vec::with_capacity(entry.algorithms.len());
    for name in &entry.algorithms {
        let alg: Algorithm = name.parse().map_err(|_| anyhow!("field `algorithms`: unknown algorithm `{name}`"))?;
        algorithms.push(alg);
    }
    if entry.user_claim.is_empty() {
        bail!("field `user_claim` must not be empty");
    }
    if entry.admin_claim.is_some() != entry.admin_value.is_some() {
        bail!("fields `admin_claim` and `admin_value` go together; set both or neither");
    }
    if entry.rooms_claim_exclusive && entry.rooms_claim.is_none() {
        bail!("field `rooms_claim_exclusive` needs `rooms_claim`");
    }
    if entry.max_age_secs == 0 {
        bail!("field `max_age_secs` must be at least 1");
    }
    if entry.login {
        if entry.discovery.is_none() {
            bail!("field `discovery` is needed by `login = true` (the login flow takes the provider's endpoints from its discovery document)");
        }
        match &entry.client_id {
            None => bail!("field `client_id` is needed by `login = true` (the client registered at the provider)"),
            Some(id) if id.trim().is_empty() => bail!("field `client_id` must not be empty"),
            Some(_) => {}
        }
    }
    let source = if let Some(secret) = &entry.secret {
        Source::Static(secret_key("secret", secret.as_bytes())?)
    } else if let Some(file) = &entry.secret_file {
        let path = base.join(file);
        let text = std::fs::read_to_string(&path).map_err(|e| anyhow!("field `secret_file`: cannot read {}: {e}", path.display()))?;
        Source::Static(secret_key("secret_file", text.trim_end_matches(['\r', '\n']).as_bytes())?)
    } else if let Some(file) = &entry.public_key_file {
        let path = base.join(file);
        let pem = std::fs::read(&path).map_err(|e| anyhow!("field `public_key_file`: cannot read {}: {e}", path.display()))?;
        Source::Static(pem_key(&pem).map_err(|e| anyhow!("field `public_key_file`: {e}"))?)
    } else if let Some(url) = &entry.jwks_url {
        Source::JwksUrl(http_url("jwks_url", url)?)
    } else if let Some(url) = &entry.discovery {
        Source::Discovery(http_url("discovery", url)?)
    } else {
        unreachable!("one key source was counted above")
    };
    match &source {
        Source::Static(key) => {
            if let Some(alg) = algorithms.iter().find(|a| !key.family.allows(**a)) {
                bail!("field `algorithms`: {alg:?} cannot be verified with {} (the key's type decides the algorithm)", key.family.name());
            }
        }
        Source::JwksUrl(_) | Source::Discovery(_) => {
            if let Some(alg) = algorithms.iter().find(|a| Family::Hmac.allows(**a)) {
                bail!("field `algorithms`: {alg:?} needs a shared secret; a JWKS publishes public keys only");
            }
        }
    }
    Ok(Checked { entry, source, algorithms })
}

fn secret_key(field: &str, secret: &[u8]) -> anyhow::Result<Key> {
    if secret.len() < MIN_SECRET_BYTES {
        bail!("field `{field}` is {} bytes long; HMAC needs at least {MIN_SECRET_BYTES} (RFC 7518 §3.2)", secret.len());
    }
    Ok(Key { family: Family::Hmac, key: DecodingKey::from_secret(secret) })
}

fn http_url(field: &str, url: &str) -> anyhow::Result<String> {
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        bail!("field `{field}` must be an http:// or https:// URL");
    }
    Ok(url.to_owned())
}

/// DER object identifiers of the named curves, as they appear in a public key's encoding.
const P256_OID: &[u8] = &[0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];
const P384_OID: &[u8] = &[0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22];

/// A PEM public key: RSA, EC P-256 / P-384, or Ed25519; its kind is read from the key itself.
pub fn pem_key(pem: &[u8]) -> anyhow::Result<Key> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok(Key { family: Family::Rsa, key });
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        let der = pem_body(pem).ok_or_else(|| anyhow!("not a PEM file"))?;
        let family = if contains(&der, P256_OID) {
            Family::EcP256
        } else if contains(&der, P384_OID) {
            Family::EcP384
        } else {
            bail!("an EC key on a curve other than P-256 or P-384");
        };
        return Ok(Key { family, key });
    }
    if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        return Ok(Key { family: Family::Ed25519, key });
    }
    bail!("not a PEM public key of a supported type (RSA, EC P-256, EC P-384, Ed25519)")
}

fn pem_body(pem: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let text = std::str::from_utf8(pem).ok()?;
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).map(str::trim).collect();
    base64::engine::general_purpose::STANDARD.decode(body).ok()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        match parse(text, Path::new(".")) {
            Ok(_) => panic!("accepted: {text}"),
            Err(err) => format!("{err:#}"),
        }
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_valid_shared_key_entry_loads_with_the_defaults() {
        let list = parse(&format!("[[issuer]]\nname = \"django\"\nsecret = \"{SECRET}\"\nalgorithms = [\"HS256\"]\n"), Path::new(".")).unwrap();
        let entry = &list[0].entry;
        assert_eq!((entry.user_claim.as_str(), entry.name_claim.as_str(), entry.require_exp, entry.max_age_secs), ("sub", "preferred_username", true, 3600));
    }

    #[test]
    fn mistakes_stop_the_start_naming_the_entry_and_the_field() {
        let cases = [
            (format!("[[issuer]]\nname = \"django\"\nsecret = \"{SECRET}\"\nalgorithms = [\"HS256\"]\nuser_clam = \"uid\"\n"), ["issuer \"django\"", "user_clam"]),
            ("[[issuer]]\nname = \"django\"\nalgorithms = [\"HS256\"]\n".to_owned(), ["issuer \"django\"", "no key source"]),
            ("[[issuer]]\nname = \"django\"\nsecret = \"short\"\nalgorithms = [\"HS256\"]\n".to_owned(), ["issuer \"django\"", "field `secret` is 5 bytes"]),
            (format!("[[issuer]]\nname = \"django\"\nsecret = \"{SECRET}\"\nalgorithms = [\"RS256\"]\n"), ["issuer \"django\"", "field `algorithms`"]),
            ("[[issuer]]\nname = \"sso\"\njwks_url = \"http://x/jwks\"\nalgorithms = [\"HS256\"]\n".to_owned(), ["issuer \"sso\"", "field `algorithms`"]),
            ("[[issuer]]\nname = \"sso\"\njwks_url = \"http://x/jwks\"\ndiscovery = \"http://x\"\nalgorithms = [\"RS256\"]\n".to_owned(), ["issuer \"sso\"", "`jwks_url`, `discovery`"]),
            ("[[issuer]]\njwks_url = \"http://x/jwks\"\nalgorithms = [\"RS256\"]\n".to_owned(), ["issuer #1", "name"]),
            ("[[issuer]]\nname = \"sso\"\npublic_key_file = \"/nonexistent.pem\"\nalgorithms = [\"RS256\"]\n".to_owned(), ["issuer \"sso\"", "field `public_key_file`"]),
            ("[[issuer]]\nname = \"sso\"\njwks_url = \"http://x/jwks\"\nalgorithms = [\"RS256\"]\nlogin = true\nclient_id = \"confab\"\n".to_owned(), ["issuer \"sso\"", "field `discovery`"]),
            ("[[issuer]]\nname = \"sso\"\ndiscovery = \"http://x\"\nalgorithms = [\"RS256\"]\nlogin = true\n".to_owned(), ["issuer \"sso\"", "field `client_id`"]),
        ];
        for (text, wanted) in cases {
            let err = error(&text);
            for part in wanted {
                assert!(err.contains(part), "{err:?} lacks {part:?}");
            }
            assert!(!err.contains("short\""), "the message repeats the secret: {err}");
        }
    }
}
