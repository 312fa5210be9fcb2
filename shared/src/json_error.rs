//! serde_json's error messages in the client's terms, for every place that reports one
//! (JSON-RPC parse errors and params, REST bodies).
//!
//! serde_json words a few failures after its own parser state rather than after what is
//! wrong with the input: a lone UTF-16 surrogate (`"\ud800"`, valid JSON syntax but no
//! character) is "unexpected end of hex escape" or "lone leading surrogate in hex escape".
//! Those are reworded here; everything else keeps serde's message.

/// What a client is told about a lone surrogate escape.
pub const LONE_SURROGATE: &str =
    "a \\u escape encodes a lone UTF-16 surrogate (\\ud800 to \\udfff are only valid as a high-low pair, such as \\ud83d\\ude00)";

/// serde_json's messages that are really about a lone surrogate (serde_json reports an
/// unpaired high surrogate as the end of a hex escape, an unpaired low one as "leading").
const SURROGATE_MESSAGES: &[&str] = &["unexpected end of hex escape", "lone leading surrogate in hex escape"];

/// The message of `err` without serde_json's " at line L column C" suffix, reworded where
/// serde's wording misleads.
pub fn describe(err: &serde_json::Error) -> String {
    let message = err.to_string();
    let message = strip_position(&message);
    if SURROGATE_MESSAGES.contains(&message) { LONE_SURROGATE.to_owned() } else { message.to_owned() }
}

/// [`describe`] followed by where the error is in the client's text (when serde knows it).
pub fn describe_at(err: &serde_json::Error) -> String {
    match err.line() {
        0 => describe(err),
        line => format!("{} at line {line} column {}", describe(err), err.column()),
    }
}

/// Drops serde_json's " at line 1 column 9" suffix.
pub fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(at) => &message[..at],
        None => message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(json: &str) -> serde_json::Error {
        serde_json::from_str::<String>(json).expect_err("invalid")
    }

    #[test]
    fn lone_surrogates_are_named_as_such() {
        for json in [r#""\ud800""#, r#""\udc00""#, r#""\ud800x""#, r#""\ud800\u0041""#] {
            assert_eq!(describe(&error_of(json)), LONE_SURROGATE, "{json}");
        }
        assert!(describe_at(&error_of(r#""\ud800""#)).starts_with(&format!("{LONE_SURROGATE} at line 1 column ")));
    }

    #[test]
    fn a_pair_is_a_character_and_other_errors_keep_their_wording() {
        assert_eq!(serde_json::from_str::<String>(r#""\ud83d\ude00""#).expect("a pair"), "😀");
        assert_eq!(describe(&error_of(r#""\x""#)), "invalid escape");
        assert_eq!(describe(&error_of("5")), "invalid type: integer `5`, expected a string");
    }
}
