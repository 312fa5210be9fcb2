//! The naming and length rules of the contract, in one place for server and SPA.
//!
//! Each check returns the trimmed/normalised value or a human-readable reason; the caller
//! attaches the field name (422 `field` over REST, `data.field` over JSON-RPC).

/// Longest chat or direct message, in Unicode scalar values after trimming.
pub const MAX_TEXT_CHARS: usize = 4000;
/// Password length bounds, in characters.
pub const PASSWORD_CHARS: std::ops::RangeInclusive<usize> = 8..=128;
/// Longest client-chosen nonce used for de-duplication.
pub const MAX_NONCE_CHARS: usize = 64;
/// Longest reaction "emoji" (a short grapheme sequence; we only bound its size).
pub const MAX_EMOJI_CHARS: usize = 16;

/// A username: 3–32 chars of `[A-Za-z0-9_.-]`. Uniqueness is case-insensitive.
pub fn username(raw: &str) -> Result<&str, &'static str> {
    let ok_len = (3..=32).contains(&raw.len());
    if !ok_len {
        return Err("must be 3 to 32 characters");
    }
    if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
        return Err("may contain only letters, digits, '_', '.' and '-'");
    }
    Ok(raw)
}

/// The start of a username, for searching: 1–32 chars of `[A-Za-z0-9_.-]`.
pub fn username_prefix(raw: &str) -> Result<&str, &'static str> {
    if !(1..=32).contains(&raw.len()) {
        return Err("must be 1 to 32 characters");
    }
    if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-')) {
        return Err("may contain only letters, digits, '_', '.' and '-'");
    }
    Ok(raw)
}

/// A room name: 1–64 chars of `[A-Za-z0-9_-]`.
pub fn room_name(raw: &str) -> Result<&str, &'static str> {
    if !(1..=64).contains(&raw.len()) {
        return Err("must be 1 to 64 characters");
    }
    if !raw.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-')) {
        return Err("may contain only letters, digits, '_' and '-'");
    }
    Ok(raw)
}

/// Why text with U+0000 is refused: PostgreSQL cannot store it in a text column, so rather
/// than failing (or behaving differently) on one database, no stored text may contain it.
const NO_NUL: &str = "must not contain the NUL character (U+0000)";

/// Message text: 1–4000 Unicode scalar values after trimming, without U+0000; returns the
/// trimmed text.
pub fn message_text(raw: &str) -> Result<&str, &'static str> {
    let text = raw.trim();
    if text.is_empty() {
        return Err("must not be empty");
    }
    if text.contains('\0') {
        return Err(NO_NUL);
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err("must be at most 4000 characters");
    }
    Ok(text)
}

/// A password: 8–128 characters.
pub fn password(raw: &str) -> Result<&str, &'static str> {
    if PASSWORD_CHARS.contains(&raw.chars().count()) {
        Ok(raw)
    } else {
        Err("must be 8 to 128 characters")
    }
}

/// A de-duplication nonce: 1–64 characters, without U+0000.
pub fn nonce(raw: &str) -> Result<&str, &'static str> {
    if !(1..=MAX_NONCE_CHARS).contains(&raw.chars().count()) {
        Err("must be 1 to 64 characters")
    } else if raw.contains('\0') {
        Err(NO_NUL)
    } else {
        Ok(raw)
    }
}

/// A reaction: 1–16 characters, no whitespace, no U+0000.
pub fn emoji(raw: &str) -> Result<&str, &'static str> {
    let n = raw.chars().count();
    if n == 0 || n > MAX_EMOJI_CHARS || raw.chars().any(char::is_whitespace) {
        Err("must be 1 to 16 characters without spaces")
    } else if raw.contains('\0') {
        Err(NO_NUL)
    } else {
        Ok(raw)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_never_contains_nul() {
        assert_eq!(message_text("a\0b"), Err(NO_NUL));
        assert_eq!(message_text(" \0 "), Err(NO_NUL));
        assert_eq!(nonce("n\0"), Err(NO_NUL));
        assert_eq!(emoji("\0"), Err(NO_NUL));
        assert_eq!(message_text("a\u{1}b"), Ok("a\u{1}b"));
    }

    #[test]
    fn usernames_follow_the_contract() {
        assert!(username("ab").is_err());
        assert!(username("abc").is_ok());
        assert!(username("a.b-c_9").is_ok());
        assert!(username("with space").is_err());
        assert!(username(&"x".repeat(33)).is_err());
        assert!(username("émile").is_err());
    }

    #[test]
    fn room_names_reject_dots_and_empties() {
        assert!(room_name("").is_err());
        assert!(room_name("a.b").is_err());
        assert!(room_name("lobby-1_x").is_ok());
        assert!(room_name(&"r".repeat(65)).is_err());
    }

    #[test]
    fn text_is_trimmed_and_counted_in_scalar_values() {
        assert_eq!(message_text("  hi  "), Ok("hi"));
        assert!(message_text("   ").is_err());
        assert!(message_text(&"é".repeat(4000)).is_ok());
        assert!(message_text(&"é".repeat(4001)).is_err());
    }
}
