//! `@name`, `@here` and `@room` in a room message's text: the one reading of them, shared so
//! the web app highlights exactly what the server recognises.
//!
//! A mention is `@` at the start of the text or after a character that cannot be part of a
//! username (so `ann@example.com` mentions nobody), followed by a username (3 to 32 of
//! `[A-Za-z0-9_.-]`); dots and dashes that end the run are punctuation (`@ann.` is `ann`).
//! Names compare regardless of case, as usernames do. Only the first [`MAX_MENTIONS`]
//! distinct names count: the rest of a text that names hundreds stays plain text, so one
//! message costs the server one bounded lookup whatever it says.

use crate::validate::{USERNAME_CHARS, is_username_char};

/// Most distinct `@name`s one message mentions; later ones are plain text.
pub const MAX_MENTIONS: usize = 20;

/// The rules of mentions as the protocol reference states them.
pub const RULES: &str = "A room message mentions `@username` when `@` starts the text or follows a character that \
cannot be part of a username (`ann@example.com` mentions nobody); dots and dashes ending the name are punctuation, \
and names compare regardless of case. Only the first 20 distinct names of a message count; the rest stay plain text. \
The server keeps, in the message's `mentions`, the named users who exist and may read the room (not banned from it; \
admins only in an admin-only room), spelled as they spell their names, never the author. `@room` (every member: \
everyone who ever joined the room) and `@here` (the members present in the room when it is sent) count only from the \
room's owner, a moderator or an admin: the message then says `mention_all: \"room\"` or `\"here\"` and the members it \
reaches are mentioned without being listed in `mentions`; from anyone else they are plain text. Each mentioned user \
gets a `mention` notification (the message) on every connection, on every instance, whether or not that connection \
joined the room, and the room's `mentions` count in `rooms.list` and `room.join` grows by one until `room.read` moves \
their cursor past the message (counts are stored: they survive restarts; a deleted message stops counting). An edit \
recomputes `mentions`: users it adds get `mention`, users it drops lose the count, nobody hears twice.";

/// What a text mentions, before the server checks who exists and may read the room.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mentioned<'t> {
    /// Distinct names (first spelling kept), in order of appearance, at most [`MAX_MENTIONS`].
    pub names: Vec<&'t str>,
    /// The text says `@here`.
    pub here: bool,
    /// The text says `@room`.
    pub room: bool,
}

/// Every `@…` of `text` as (byte range of the name without its `@`, the name), in order,
/// without the cap: the web app highlights with it.
pub fn scan(text: &str) -> impl Iterator<Item = (std::ops::Range<usize>, &str)> {
    let bytes = text.as_bytes();
    let mut at = 0;
    std::iter::from_fn(move || {
        while let Some(found) = text.get(at..)?.find('@') {
            let sign = at + found;
            at = sign + 1;
            let boundary = text[..sign].chars().next_back().is_none_or(|c| !is_username_char(c) && c != '@');
            if !boundary {
                continue;
            }
            let start = sign + 1;
            let mut end = start + text[start..].find(|c: char| !is_username_char(c)).unwrap_or(text.len() - start);
            while end > start && matches!(bytes[end - 1], b'.' | b'-') {
                end -= 1;
            }
            at = end.max(at);
            if end > start {
                return Some((start..end, &text[start..end]));
            }
        }
        None
    })
}

/// The mentions of `text`: `@here`, `@room` and up to [`MAX_MENTIONS`] distinct usernames.
pub fn mentioned(text: &str) -> Mentioned<'_> {
    let mut out = Mentioned::default();
    for (_, name) in scan(text) {
        if name.eq_ignore_ascii_case("here") {
            out.here = true;
        } else if name.eq_ignore_ascii_case("room") {
            out.room = true;
        } else if out.names.len() < MAX_MENTIONS && USERNAME_CHARS.contains(&name.len()) && !out.names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            out.names.push(name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_after_a_boundary_and_trailing_punctuation_is_dropped() {
        let m = mentioned("@ann, hi @Bob. and mail carl@example.com or @x or @dave-");
        assert_eq!(m.names, vec!["ann", "Bob", "dave"]);
        assert!(!m.here && !m.room);
    }

    #[test]
    fn here_and_room_are_flags_not_names() {
        let m = mentioned("@here @ROOM @ann");
        assert_eq!((m.names, m.here, m.room), (vec!["ann"], true, true));
    }

    #[test]
    fn repeated_names_count_once_whatever_their_case_and_the_cap_holds() {
        let text: String = (0..300).map(|i| format!("@user{i} @USER{i} ")).collect();
        let m = mentioned(&text);
        assert_eq!(m.names.len(), MAX_MENTIONS);
        assert_eq!(m.names[0], "user0");
        assert_eq!(m.names[MAX_MENTIONS - 1], format!("user{}", MAX_MENTIONS - 1));
    }

    #[test]
    fn scan_gives_byte_ranges_that_slice_the_names_out_of_any_text() {
        let text = "é@ann ✓ @bób @@carl";
        let found: Vec<_> = scan(text).collect();
        for (range, name) in &found {
            assert_eq!(&text[range.clone()], *name);
        }
        // `é` and `ó` are not username characters: `é@ann` has a boundary, `@bób` is `b`.
        assert_eq!(found.iter().map(|(_, n)| *n).collect::<Vec<_>>(), vec!["ann", "b"]);
    }
}
