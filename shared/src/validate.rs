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
/// Longest reaction "emoji", in Unicode scalar values: room for the longest emoji sequences
/// (families, flags of regions) and for short text such as `+1`.
pub const MAX_EMOJI_CHARS: usize = 16;
/// Most distinct emoji on one message (Discord's limit): a reaction with a new emoji past it
/// is refused; reacting with an emoji already there is not.
pub const MAX_DISTINCT_REACTIONS: usize = 20;
/// Most reactions on one message, every emoji and user counted: what keeps a message, which
/// lists who reacted, a bounded size (see `Message::MAX_JSON_BYTES`).
pub const MAX_REACTIONS: usize = 1000;

/// How long a username may be, in characters (all of them ASCII).
pub const USERNAME_CHARS: std::ops::RangeInclusive<usize> = 3..=32;

/// Whether a username may hold `c`: `[A-Za-z0-9_.-]`.
pub fn is_username_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// A username: 3–32 chars of `[A-Za-z0-9_.-]`. Uniqueness is case-insensitive.
pub fn username(raw: &str) -> Result<&str, &'static str> {
    let ok_len = USERNAME_CHARS.contains(&raw.len());
    if !ok_len {
        return Err("must be 3 to 32 characters");
    }
    if !raw.chars().all(is_username_char) {
        return Err("may contain only letters, digits, '_', '.' and '-'");
    }
    Ok(raw)
}

/// The start of a username, for searching: 1–32 chars of `[A-Za-z0-9_.-]`.
pub fn username_prefix(raw: &str) -> Result<&str, &'static str> {
    if !(1..=*USERNAME_CHARS.end()).contains(&raw.len()) {
        return Err("must be 1 to 32 characters");
    }
    if !raw.chars().all(is_username_char) {
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

/// A reaction: 1–16 characters without whitespace, all of them visible: no control
/// characters, no invisible formatting characters (zero-width spaces, bidirectional
/// overrides), nothing unassigned or private-use, and no combining mark first (it would
/// attach to whatever is printed before it). The formatting characters emoji sequences are
/// made of stay allowed where they belong: the zero-width joiner between two characters
/// (👨‍👩‍👧) and tag characters after a black flag (the flags of Scotland or Wales).
pub fn emoji(raw: &str) -> Result<&str, &'static str> {
    use unicode_properties::{GeneralCategory as Gc, UnicodeGeneralCategory as _};

    let chars: Vec<char> = raw.chars().collect();
    if chars.is_empty() || chars.len() > MAX_EMOJI_CHARS || chars.iter().any(|c| c.is_whitespace()) {
        return Err("must be 1 to 16 characters without spaces");
    }
    if raw.contains('\0') {
        return Err(NO_NUL);
    }
    const ZWJ: char = '\u{200D}';
    const BLACK_FLAG: char = '\u{1F3F4}';
    for (i, &c) in chars.iter().enumerate() {
        let joins = c == ZWJ && i > 0 && chars.get(i + 1).is_some_and(|&next| next != ZWJ) && chars[i - 1] != ZWJ;
        let tags_a_flag = matches!(c, '\u{E0020}'..='\u{E007F}') && chars[0] == BLACK_FLAG;
        match c.general_category() {
            Gc::Control => return Err("must not contain control characters"),
            Gc::Format if !(joins || tags_a_flag) => {
                return Err("must not contain invisible formatting characters (zero-width or direction marks)");
            }
            Gc::SpaceSeparator | Gc::LineSeparator | Gc::ParagraphSeparator => {
                return Err("must be 1 to 16 characters without spaces");
            }
            Gc::Unassigned | Gc::PrivateUse | Gc::Surrogate => {
                return Err("must not contain unassigned or private-use characters");
            }
            Gc::NonspacingMark | Gc::SpacingMark | Gc::EnclosingMark if i == 0 => {
                return Err("must not start with a combining mark");
            }
            _ if HANGUL_FILLERS.contains(&c) => return Err("must not contain invisible filler characters"),
            _ => {}
        }
    }
    Ok(raw)
}

/// Letters by category that print as nothing (the Hangul fillers), a favourite of blank names.
const HANGUL_FILLERS: [char; 4] = ['\u{115F}', '\u{1160}', '\u{3164}', '\u{FFA0}'];

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
    fn emoji_are_visible_characters_and_emoji_sequences() {
        for ok in ["👍", "❤️", "+1", "1️⃣", "👨‍👩‍👧", "🏳️‍🌈", "🇫🇷", "🏴\u{E0067}\u{E0062}\u{E0073}\u{E0063}\u{E0074}\u{E007F}", ":tada:", "é"] {
            assert_eq!(emoji(ok), Ok(ok), "{ok:?}");
        }
        let refused = [
            ("", "must be 1 to 16 characters without spaces"),
            ("two words", "must be 1 to 16 characters without spaces"),
            ("a\u{00A0}b", "must be 1 to 16 characters without spaces"),
            (&"x".repeat(17), "must be 1 to 16 characters without spaces"),
            ("\u{1}", "must not contain control characters"),
            ("👍\u{7f}", "must not contain control characters"),
            ("\u{200B}", "must not contain invisible formatting characters (zero-width or direction marks)"),
            ("\u{202E}👍", "must not contain invisible formatting characters (zero-width or direction marks)"),
            ("\u{200D}👍", "must not contain invisible formatting characters (zero-width or direction marks)"),
            ("👍\u{200D}", "must not contain invisible formatting characters (zero-width or direction marks)"),
            ("👍\u{200D}\u{200D}👍", "must not contain invisible formatting characters (zero-width or direction marks)"),
            ("👍\u{E0067}", "must not contain invisible formatting characters (zero-width or direction marks)"),
            ("\u{FEFF}", "must not contain invisible formatting characters (zero-width or direction marks)"),
            ("\u{E000}", "must not contain unassigned or private-use characters"),
            ("\u{0378}", "must not contain unassigned or private-use characters"),
            ("\u{0301}", "must not start with a combining mark"),
            ("\u{3164}", "must not contain invisible filler characters"),
        ];
        for (raw, why) in refused {
            assert_eq!(emoji(raw), Err(why), "{raw:?}");
        }
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
