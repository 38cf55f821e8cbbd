//! Text from outside (clients, the vendor): the rule for human-readable names and a
//! log-safe excerpt of anything untrusted.
//!
//! Names are shown to people in lists, maps and exports, so characters that are invisible or
//! reorder what follows them (bidi overrides such as U+202E, zero-width characters) could make
//! one vehicle look like another or a plate read backwards. Those are the Unicode general
//! categories Cc (controls), Cf (format), Zl and Zp (line and paragraph separators).

use std::borrow::Cow;
use std::fmt;

use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Most characters of client text a log line shows.
pub const EXCERPT_CHARS: usize = 64;

/// True for a character a name must not contain: a control, format (bidi controls,
/// zero-width characters, soft hyphen) or line/paragraph separator character.
pub fn is_hidden(c: char) -> bool {
    matches!(
        c.general_category(),
        GeneralCategory::Control
            | GeneralCategory::Format
            | GeneralCategory::LineSeparator
            | GeneralCategory::ParagraphSeparator
    )
}

/// Why a name was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("at most {0} characters")]
    TooLong(usize),
    #[error("must not contain control or invisible formatting characters (such as U+{0:04X})")]
    Hidden(u32),
}

/// Checks a human-readable name (device, plate, driver, cost centre, city, geofence, user):
/// at most `max_chars` characters, none of them [hidden](is_hidden).
pub fn check_name(name: &str, max_chars: usize) -> Result<(), NameError> {
    if name.chars().count() > max_chars {
        return Err(NameError::TooLong(max_chars));
    }
    match name.chars().find(|c| is_hidden(*c)) {
        Some(c) => Err(NameError::Hidden(u32::from(c))),
        None => Ok(()),
    }
}

/// `name` without its [hidden](is_hidden) characters (for names another system sends,
/// which are kept rather than refused).
pub fn strip_hidden(name: &str) -> Cow<'_, str> {
    if name.chars().any(is_hidden) {
        Cow::Owned(name.chars().filter(|c| !is_hidden(*c)).collect())
    } else {
        Cow::Borrowed(name)
    }
}

/// Untrusted text as a log field: at most [`EXCERPT_CHARS`] characters, escaped so nothing in
/// it (a newline, a quote, a bidi override) can break or forge a log line, with the full length
/// noted when cut. `Display` writes it quoted.
#[derive(Clone, Copy)]
pub struct Excerpt<'a>(&'a str);

/// [`Excerpt`] of `text`.
pub fn excerpt(text: &str) -> Excerpt<'_> {
    Excerpt(text)
}

impl fmt::Display for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars().take(EXCERPT_CHARS) {
            if c == '\\'
                || c == '"'
                || c.is_control()
                || is_hidden(c)
                || !c.is_ascii() && c.is_whitespace()
            {
                write!(f, "{}", c.escape_unicode())?;
            } else {
                f.write_str(c.encode_utf8(&mut [0; 4]))?;
            }
        }
        f.write_str("\"")?;
        let total = self.0.chars().count();
        if total > EXCERPT_CHARS {
            write!(f, "…({total} chars)")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Excerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn bidi_zero_width_and_control_characters_are_hidden_letters_are_not() {
        for c in [
            '\u{202E}', '\u{200B}', '\u{200D}', '\u{2066}', '\u{FEFF}', '\u{AD}', '\n', '\u{7}',
            '\u{2028}',
        ] {
            assert!(is_hidden(c), "U+{:04X}", c as u32);
        }
        for c in ['a', 'Ж', 'ß', '日', ' ', '-', '\u{E9}', '🚚'] {
            assert!(!is_hidden(c), "{c}");
        }
    }

    #[test]
    fn names_are_checked_for_length_and_hidden_characters() {
        assert_eq!(check_name("Van 7 — Nairobi", 100), Ok(()));
        assert_eq!(check_name("KDA\u{202E}321", 20), Err(NameError::Hidden(0x202E)));
        assert_eq!(check_name("abc", 2), Err(NameError::TooLong(2)));
        assert!(NameError::Hidden(0x202E).to_string().contains("U+202E"));
    }

    #[test]
    fn stripping_keeps_everything_visible() {
        assert_eq!(strip_hidden("Van\u{202E} 7\u{200B}"), "Van 7");
        assert!(matches!(strip_hidden("Van 7"), Cow::Borrowed(_)));
    }

    #[test]
    fn an_excerpt_is_short_escaped_and_says_how_long_the_text_was() {
        let forged = "bob\" logged in\nINFO admin logged in";
        let shown = excerpt(forged).to_string();
        assert!(!shown.contains('\n'), "{shown}");
        assert!(shown.starts_with("\"bob\\u{22} logged in\\u{a}INFO"), "{shown}");
        let long = "x".repeat(1_000_000);
        let shown = excerpt(&long).to_string();
        assert!(shown.len() < 100 && shown.ends_with("…(1000000 chars)"), "{shown}");
        assert_eq!(excerpt("alice").to_string(), "\"alice\"");
    }

    proptest! {
        #[test]
        fn excerpts_are_bounded_single_lines(s in ".{0,300}") {
            let shown = excerpt(&s).to_string();
            prop_assert!(!shown.chars().any(|c| c.is_control() || is_hidden(c)));
            prop_assert!(shown.chars().count() <= 2 + EXCERPT_CHARS * 10 + 20);
        }

        #[test]
        fn stripped_names_pass_the_hidden_character_rule(s in "\\PC{0,50}[\u{200B}\u{202E}\n]{0,3}") {
            prop_assert_eq!(check_name(&strip_hidden(&s), usize::MAX), Ok(()));
        }
    }
}
