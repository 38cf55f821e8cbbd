//! Analytics thresholds: the numbers trip building and KPIs are computed with.
//!
//! The global defaults below are seeded into `fleet.analytics_config` by the migrations; cost
//! centres and devices may override any of them. docs/ANALYTICS_SETTINGS.md gives each value's
//! reason.

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};

/// One complete set of thresholds (the global row, or a scope with its overrides applied).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalyticsSettings {
    /// Posted speed limit for overspeed counting, km/h.
    pub speed_limit_kmh: f64,
    /// Below this speed a fix counts as stationary, km/h (distance accrues only above it).
    pub moving_speed_kmh: f64,
    /// Ignition off and stationary at least this long ends a trip ("work stop"), seconds.
    pub work_stop_min_s: i32,
    /// A gap between fixes longer than this ends a trip ("long gap"), seconds.
    pub long_gap_s: i32,
    /// Ignition on and stationary at least this long inside a trip counts as idling, seconds.
    pub idle_min_s: i32,
    /// Trips shorter than this distance are discarded as noise, metres.
    pub min_trip_distance_m: f64,
    /// Trips shorter than this duration are discarded as noise, seconds.
    pub min_trip_duration_s: i32,
    /// Without ignition data, motion is confirmed after this displacement, metres.
    pub motion_confirm_distance_m: f64,
    /// A device whose newest fix is older than this is shown offline, seconds.
    pub offline_after_s: i32,
    /// Start of the working shift, local time.
    pub shift_start: NaiveTime,
    /// End of the working shift, local time.
    pub shift_end: NaiveTime,
    /// Working days as ISO weekday numbers (1 = Monday … 7 = Sunday).
    pub shift_weekdays: Vec<i16>,
    /// IANA time zone that day boundaries and shift hours are expressed in.
    pub timezone: String,
    /// Fuel burnt per hour of idling, litres per hour.
    pub idle_fuel_l_per_h: f64,
    /// Price of a litre of fuel, in the fleet's currency.
    pub fuel_price_per_l: f64,
    /// ISO 4217 code of the fleet's currency.
    pub currency: String,
}

/// A threshold that makes no sense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct SettingsError {
    pub field: &'static str,
    pub problem: String,
}

impl Default for AnalyticsSettings {
    fn default() -> Self {
        Self {
            speed_limit_kmh: 80.0,
            moving_speed_kmh: 5.0,
            work_stop_min_s: 300,
            long_gap_s: 1800,
            idle_min_s: 300,
            min_trip_distance_m: 200.0,
            min_trip_duration_s: 120,
            motion_confirm_distance_m: 500.0,
            offline_after_s: 3600,
            shift_start: NaiveTime::from_hms_opt(8, 0, 0).unwrap_or_default(),
            shift_end: NaiveTime::from_hms_opt(17, 0, 0).unwrap_or_default(),
            shift_weekdays: vec![1, 2, 3, 4, 5, 6],
            timezone: "Africa/Nairobi".to_owned(),
            idle_fuel_l_per_h: 1.0,
            fuel_price_per_l: 180.0,
            currency: "KES".to_owned(),
        }
    }
}

impl AnalyticsSettings {
    /// Checks every value is usable; the first problem found is returned, naming its field.
    pub fn validate(&self) -> Result<(), SettingsError> {
        fn bad(field: &'static str, problem: impl Into<String>) -> Result<(), SettingsError> {
            Err(SettingsError { field, problem: problem.into() })
        }
        if !(1.0..=300.0).contains(&self.speed_limit_kmh) {
            return bad("speed_limit_kmh", "must be between 1 and 300 km/h");
        }
        if !(0.5..=30.0).contains(&self.moving_speed_kmh) {
            return bad("moving_speed_kmh", "must be between 0.5 and 30 km/h");
        }
        for (field, v) in [
            ("work_stop_min_s", self.work_stop_min_s),
            ("long_gap_s", self.long_gap_s),
            ("idle_min_s", self.idle_min_s),
            ("min_trip_duration_s", self.min_trip_duration_s),
            ("offline_after_s", self.offline_after_s),
        ] {
            if !(0..=7 * 86_400).contains(&v) {
                return bad(field, "must be between 0 and 604800 seconds (a week)");
            }
        }
        if self.long_gap_s <= self.work_stop_min_s {
            return bad("long_gap_s", "must be longer than work_stop_min_s");
        }
        for (field, v) in [
            ("min_trip_distance_m", self.min_trip_distance_m),
            ("motion_confirm_distance_m", self.motion_confirm_distance_m),
            ("idle_fuel_l_per_h", self.idle_fuel_l_per_h),
            ("fuel_price_per_l", self.fuel_price_per_l),
        ] {
            if !v.is_finite() || v < 0.0 {
                return bad(field, "must be a non-negative number");
            }
        }
        if self.shift_end <= self.shift_start {
            return bad("shift_end", "must be after shift_start");
        }
        if self.shift_weekdays.iter().any(|d| !(1..=7).contains(d)) {
            return bad("shift_weekdays", "days are ISO weekday numbers 1 (Monday) to 7 (Sunday)");
        }
        if self.timezone.trim().is_empty() {
            return bad("timezone", "must name an IANA time zone such as Africa/Nairobi");
        }
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return bad("currency", "must be a three-letter ISO 4217 code such as KES");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(AnalyticsSettings::default().validate(), Ok(()));
    }

    #[test]
    fn an_invalid_value_is_reported_with_its_field() {
        let s = AnalyticsSettings { long_gap_s: 60, ..Default::default() };
        assert_eq!(s.validate().expect_err("invalid").field, "long_gap_s");
        let s = AnalyticsSettings { shift_weekdays: vec![0], ..Default::default() };
        assert_eq!(s.validate().expect_err("invalid").field, "shift_weekdays");
        let s = AnalyticsSettings { currency: "kes".into(), ..Default::default() };
        assert_eq!(s.validate().expect_err("invalid").field, "currency");
    }
}
