//! The vendor's time format: UTC wall-clock time as `yyyy-MM-dd HH:mm:ss`.

use chrono::{DateTime, NaiveDateTime, Utc};

/// `chrono` format string of the vendor's timestamps.
pub const VENDOR_TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

/// A string that is not a vendor timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a UTC time of the form yyyy-MM-dd HH:mm:ss")]
pub struct TimeFormatError {
    pub value: String,
}

/// Formats a time the way the vendor expects it in requests (UTC, whole seconds).
pub fn format_time(t: DateTime<Utc>) -> String {
    t.format(VENDOR_TIME_FORMAT).to_string()
}

/// Parses a vendor timestamp as UTC. Surrounding whitespace is tolerated (copies of the
/// vendor's samples carry stray spaces); anything else that deviates is an error.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, TimeFormatError> {
    NaiveDateTime::parse_from_str(s.trim(), VENDOR_TIME_FORMAT)
        .map(|naive| naive.and_utc())
        .map_err(|_| TimeFormatError { value: s.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_time_formats_as_utc_and_parses_back_to_the_same_instant() {
        let t = Utc.with_ymd_and_hms(2026, 3, 18, 9, 40, 46).single().expect("valid");
        assert_eq!(format_time(t), "2026-03-18 09:40:46");
        assert_eq!(parse_time(&format_time(t)), Ok(t));
        assert_eq!(parse_time(" 2026-03-18 09:40:46 "), Ok(t));
    }

    #[test]
    fn fractions_of_a_second_are_dropped_when_formatting() {
        let t = Utc.timestamp_millis_opt(1_758_722_036_789).single().expect("valid");
        assert_eq!(format_time(t), "2025-09-24 13:53:56");
    }

    #[test]
    fn other_time_shapes_are_rejected() {
        for bad in ["", "2022-12-10T01:05:33.000Z", "2026-02-30 00:00:00", "1758722036000", "now"] {
            assert_eq!(parse_time(bad), Err(TimeFormatError { value: bad.to_owned() }), "{bad}");
        }
    }
}
