//! Vocabulary of a position fix: where it came from and what kind of fix it is.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The path a position took into fleetd. Stored in `fleet.positions.source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PositionSource {
    /// Live location polled from the vendor API.
    Poll,
    /// Track history fetched from the vendor API (`jimi.device.track.list`).
    Track,
    /// Pushed by the vendor to fleetd's receivers.
    Push,
    /// Received straight from a device over the GT06 protocol.
    Gt06,
}

/// How the device located itself. Stored in `fleet.positions.fix_kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixKind {
    Gps,
    /// Cell-tower location: coarse, hundreds of metres to kilometres.
    Lbs,
    Wifi,
    Beacon,
}

/// A string that names none of the known variants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownVariant {
    pub kind: &'static str,
    pub value: String,
}

macro_rules! text_enum {
    ($ty:ident, $kind:literal, { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl $ty {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$ty] = &[$($ty::$variant),+];

            /// The lowercase name stored in the database.
            pub fn as_str(&self) -> &'static str {
                match self { $($ty::$variant => $text),+ }
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $ty {
            type Err = UnknownVariant;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($ty::$variant),)+
                    other => Err(UnknownVariant { kind: $kind, value: other.to_owned() }),
                }
            }
        }
    };
}

text_enum!(PositionSource, "position source", { Poll => "poll", Track => "track", Push => "push", Gt06 => "gt06" });
text_enum!(FixKind, "fix kind", { Gps => "gps", Lbs => "lbs", Wifi => "wifi", Beacon => "beacon" });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_survives_display_then_parse() {
        for s in PositionSource::ALL {
            assert_eq!(s.to_string().parse::<PositionSource>(), Ok(*s));
        }
        for k in FixKind::ALL {
            assert_eq!(k.to_string().parse::<FixKind>(), Ok(*k));
        }
    }

    #[test]
    fn an_unknown_name_is_an_error_that_names_it() {
        let err = "satellite".parse::<FixKind>().expect_err("unknown");
        assert_eq!(err.to_string(), "unknown fix kind \"satellite\"");
    }
}
