//! From a verified token's claims to a Confab identity: the user claim, the display name
//! (made valid and unique deterministically), admin, and the rooms claim.

use confab_shared::validate::{USERNAME_CHARS, is_username_char};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::Refusal;

/// The longest user claim value accepted (it is stored as the mapping's key).
const MAX_SUBJECT_BYTES: usize = 255;
/// The most rooms a rooms claim may name.
pub const MAX_ROOMS: usize = 32;
const MAX_USERNAME: usize = *USERNAME_CHARS.end();

/// The user claim as a string: a string or an integer (as Django's `uid`).
pub fn subject(claims: &Map<String, Value>, claim: &str) -> Result<String, Refusal> {
    let subject = match claims.get(claim) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => n.to_string(),
        Some(_) => return Err(Refusal::owned(format!("the user claim `{claim}` is not a string or an integer"))),
        None => return Err(Refusal::owned(format!("the user claim `{claim}` is missing"))),
    };
    if subject.len() > MAX_SUBJECT_BYTES || subject.contains('\0') {
        return Err(Refusal::owned(format!("the user claim `{claim}` is longer than {MAX_SUBJECT_BYTES} bytes or holds U+0000")));
    }
    Ok(subject)
}

/// Whether `claim` equals `value` or is a list containing it.
pub fn has_value(claims: &Map<String, Value>, claim: &str, value: &str) -> bool {
    match claims.get(claim) {
        Some(Value::String(s)) => s == value,
        Some(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(value)),
        Some(Value::Bool(b)) => value == if *b { "true" } else { "false" },
        _ => false,
    }
}

/// The rooms named by `claim`: a room name or a list of them; absent means none.
pub fn rooms(claims: &Map<String, Value>, claim: &str) -> Result<Vec<String>, Refusal> {
    let names: Vec<&str> = match claims.get(claim) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(items)) if items.len() <= MAX_ROOMS => {
            items.iter().map(|i| i.as_str().ok_or(())).collect::<Result<_, _>>().map_err(|()| {
                Refusal::owned(format!("the rooms claim `{claim}` holds something other than room names"))
            })?
        }
        Some(Value::Array(_)) => return Err(Refusal::owned(format!("the rooms claim `{claim}` names more than {MAX_ROOMS} rooms"))),
        Some(_) => return Err(Refusal::owned(format!("the rooms claim `{claim}` is not a room name or a list of them"))),
    };
    let mut rooms: Vec<String> = Vec::with_capacity(names.len());
    for name in names {
        confab_shared::validate::room_name(name)
            .map_err(|why| Refusal::owned(format!("the rooms claim `{claim}` names an invalid room (a room name {why})")))?;
        if !rooms.iter().any(|r| r == name) {
            rooms.push(name.to_owned());
        }
    }
    Ok(rooms)
}

/// The usernames to try, in order, for a new account: the name claim made valid, then the
/// same with a suffix derived from the identity (deterministic: the same token on any
/// instance tries the same names), then a longer suffix.
pub fn username_candidates(issuer: &str, subject: &str, name: Option<&str>) -> Vec<String> {
    let digest = hex::encode(Sha256::digest(format!("{issuer}\0{subject}").as_bytes()));
    let cleaned: String = name
        .unwrap_or("")
        .chars()
        .map(|c| if is_username_char(c) { c } else { '_' })
        .collect();
    let cleaned = cleaned.trim_matches('_');
    let base = if cleaned.is_empty() { clean_prefix(issuer) } else { cleaned.to_owned() };
    let mut candidates = Vec::with_capacity(3);
    if USERNAME_CHARS.contains(&base.len()) {
        candidates.push(base.clone());
    }
    for suffix in [&digest[..8], &digest[..20]] {
        let room = MAX_USERNAME - suffix.len() - 1;
        let head: String = base.chars().take(room).collect();
        candidates.push(format!("{head}-{suffix}"));
    }
    candidates.retain(|c| confab_shared::validate::username(c).is_ok());
    candidates
}

fn clean_prefix(issuer: &str) -> String {
    let cleaned: String = issuer.chars().filter(|&c| is_username_char(c)).take(12).collect();
    if cleaned.is_empty() { "user".to_owned() } else { cleaned }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_valid_and_their_fallbacks_are_deterministic() {
        let a = username_candidates("django", "7", Some("Ann Smith!"));
        assert_eq!(a[0], "Ann_Smith");
        assert_eq!(a, username_candidates("django", "7", Some("Ann Smith!")));
        assert_ne!(a[1], username_candidates("django", "8", Some("Ann Smith!"))[1]);
        let none = username_candidates("django", "7", None);
        assert!(none[0].starts_with("django"), "{none:?}");
        let long = username_candidates("sso", "x", Some(&"a".repeat(80)));
        assert!(long.iter().all(|c| c.len() <= 32), "{long:?}");
        assert!(!username_candidates("sso", "x", Some("ü")).is_empty());
    }

    #[test]
    fn the_rooms_claim_is_a_name_or_a_list_of_valid_names() {
        let claims: Map<String, Value> = serde_json::from_str(r#"{"g":"lobby","l":["a","b","a"],"bad":"no spaces","n":7}"#).unwrap();
        assert_eq!(rooms(&claims, "g").unwrap(), ["lobby"]);
        assert_eq!(rooms(&claims, "l").unwrap(), ["a", "b"]);
        assert!(rooms(&claims, "missing").unwrap().is_empty());
        assert!(rooms(&claims, "bad").is_err());
        assert!(rooms(&claims, "n").is_err());
    }
}
