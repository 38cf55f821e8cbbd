//! Device identity: the IMEI every tracker reports under.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A tracker's IMEI: 15 decimal digits (some vendors' test devices use 14–17, so the range is
/// accepted; anything else is not an IMEI).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Imei(String);

/// Why a string is not an IMEI.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImeiError {
    #[error("IMEI is empty")]
    Empty,
    #[error("IMEI {0:?} contains a character that is not a digit")]
    NotDigits(String),
    #[error("IMEI {0:?} has {1} digits; expected 14 to 17")]
    BadLength(String, usize),
}

impl Imei {
    /// Shortest accepted IMEI (14 digits: IMEI without its check digit).
    pub const MIN_LEN: usize = 14;
    /// Longest accepted IMEI (17 digits: IMEISV).
    pub const MAX_LEN: usize = 17;

    /// Parses an IMEI, trimming surrounding whitespace the vendor sometimes leaves in.
    pub fn parse(raw: &str) -> Result<Self, ImeiError> {
        let s = raw.trim();
        if s.is_empty() {
            return Err(ImeiError::Empty);
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ImeiError::NotDigits(s.to_owned()));
        }
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&s.len()) {
            return Err(ImeiError::BadLength(s.to_owned(), s.len()));
        }
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Imei {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Imei {
    type Err = ImeiError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Imei {
    type Error = ImeiError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Imei> for String {
    fn from(i: Imei) -> Self {
        i.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_fifteen_digit_imei_parses_and_is_trimmed() {
        let imei = Imei::parse(" 868120303960873 ").expect("valid");
        assert_eq!(imei.as_str(), "868120303960873");
    }

    #[test]
    fn letters_empty_and_wrong_lengths_are_rejected_with_the_reason() {
        assert_eq!(Imei::parse(""), Err(ImeiError::Empty));
        assert!(matches!(Imei::parse("86812030396087X"), Err(ImeiError::NotDigits(_))));
        assert!(matches!(Imei::parse("1234"), Err(ImeiError::BadLength(_, 4))));
    }

    proptest! {
        #[test]
        fn display_then_parse_gives_the_same_imei(digits in "[0-9]{14,17}") {
            let imei = Imei::parse(&digits).expect("valid");
            prop_assert_eq!(Imei::parse(&imei.to_string()).expect("roundtrip"), imei);
        }
    }
}
