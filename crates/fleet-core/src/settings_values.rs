//! Analytics values as an override sets them: any subset of [`AnalyticsSettings`] (absent =
//! inherited), laid over the global values. The global row of `fleet.analytics_config` sets
//! every one.

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};

use crate::{AnalyticsSettings, SettingsError};

/// Analytics values. In the global row every one is set; in an override, absent or null ones
/// are inherited. docs/ANALYTICS_SETTINGS.md explains each.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SettingsValues {
    /// Speed limit for overspeed counting, km/h (1-300).
    pub speed_limit_kmh: Option<f64>,
    /// Below this speed a fix is stationary, km/h (0.5-30).
    pub moving_speed_kmh: Option<f64>,
    /// Ignition off and stationary this long ends a trip, seconds.
    pub work_stop_min_s: Option<i32>,
    /// No fixes for this long ends a trip, seconds; must exceed work_stop_min_s.
    pub long_gap_s: Option<i32>,
    /// Ignition on and stationary this long counts as idling, seconds.
    pub idle_min_s: Option<i32>,
    /// Shorter trips are discarded, metres.
    pub min_trip_distance_m: Option<f64>,
    /// Shorter trips are discarded, seconds.
    pub min_trip_duration_s: Option<i32>,
    /// Without ignition data, motion is confirmed after this displacement, metres.
    pub motion_confirm_distance_m: Option<f64>,
    /// A device whose newest fix is older is offline, seconds.
    pub offline_after_s: Option<i32>,
    /// Start of the working shift, local time (`08:00:00`).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "08:00:00"))]
    pub shift_start: Option<NaiveTime>,
    /// End of the working shift, local time (`17:00:00`).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "17:00:00"))]
    pub shift_end: Option<NaiveTime>,
    /// Working days, ISO weekday numbers (1 = Monday … 7 = Sunday).
    pub shift_weekdays: Option<Vec<i16>>,
    /// IANA time zone of day boundaries and shift hours, e.g. Africa/Nairobi.
    pub timezone: Option<String>,
    /// Fuel burnt per hour of idling, litres per hour.
    pub idle_fuel_l_per_h: Option<f64>,
    /// Price of a litre of fuel.
    pub fuel_price_per_l: Option<f64>,
    /// ISO 4217 currency code, e.g. KES.
    pub currency: Option<String>,
}

impl SettingsValues {
    /// Whether no value is set.
    pub fn is_empty(&self) -> bool {
        *self == SettingsValues::default()
    }

    /// The complete settings, or the first missing value.
    pub fn complete(&self) -> Result<AnalyticsSettings, SettingsError> {
        fn need<T: Clone>(v: &Option<T>, field: &'static str) -> Result<T, SettingsError> {
            v.clone().ok_or_else(|| SettingsError {
                field,
                problem: "required in the global settings".to_owned(),
            })
        }
        Ok(AnalyticsSettings {
            speed_limit_kmh: need(&self.speed_limit_kmh, "speed_limit_kmh")?,
            moving_speed_kmh: need(&self.moving_speed_kmh, "moving_speed_kmh")?,
            work_stop_min_s: need(&self.work_stop_min_s, "work_stop_min_s")?,
            long_gap_s: need(&self.long_gap_s, "long_gap_s")?,
            idle_min_s: need(&self.idle_min_s, "idle_min_s")?,
            min_trip_distance_m: need(&self.min_trip_distance_m, "min_trip_distance_m")?,
            min_trip_duration_s: need(&self.min_trip_duration_s, "min_trip_duration_s")?,
            motion_confirm_distance_m: need(
                &self.motion_confirm_distance_m,
                "motion_confirm_distance_m",
            )?,
            offline_after_s: need(&self.offline_after_s, "offline_after_s")?,
            shift_start: need(&self.shift_start, "shift_start")?,
            shift_end: need(&self.shift_end, "shift_end")?,
            shift_weekdays: need(&self.shift_weekdays, "shift_weekdays")?,
            timezone: need(&self.timezone, "timezone")?,
            idle_fuel_l_per_h: need(&self.idle_fuel_l_per_h, "idle_fuel_l_per_h")?,
            fuel_price_per_l: need(&self.fuel_price_per_l, "fuel_price_per_l")?,
            currency: need(&self.currency, "currency")?,
        })
    }

    /// `base` with these values set over it.
    pub fn over(&self, base: &AnalyticsSettings) -> AnalyticsSettings {
        let b = base.clone();
        AnalyticsSettings {
            speed_limit_kmh: self.speed_limit_kmh.unwrap_or(b.speed_limit_kmh),
            moving_speed_kmh: self.moving_speed_kmh.unwrap_or(b.moving_speed_kmh),
            work_stop_min_s: self.work_stop_min_s.unwrap_or(b.work_stop_min_s),
            long_gap_s: self.long_gap_s.unwrap_or(b.long_gap_s),
            idle_min_s: self.idle_min_s.unwrap_or(b.idle_min_s),
            min_trip_distance_m: self.min_trip_distance_m.unwrap_or(b.min_trip_distance_m),
            min_trip_duration_s: self.min_trip_duration_s.unwrap_or(b.min_trip_duration_s),
            motion_confirm_distance_m: self
                .motion_confirm_distance_m
                .unwrap_or(b.motion_confirm_distance_m),
            offline_after_s: self.offline_after_s.unwrap_or(b.offline_after_s),
            shift_start: self.shift_start.unwrap_or(b.shift_start),
            shift_end: self.shift_end.unwrap_or(b.shift_end),
            shift_weekdays: self.shift_weekdays.clone().unwrap_or(b.shift_weekdays),
            timezone: self.timezone.clone().unwrap_or(b.timezone),
            idle_fuel_l_per_h: self.idle_fuel_l_per_h.unwrap_or(b.idle_fuel_l_per_h),
            fuel_price_per_l: self.fuel_price_per_l.unwrap_or(b.fuel_price_per_l),
            currency: self.currency.clone().unwrap_or(b.currency),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_merge_over_the_global_values() {
        let v = SettingsValues { long_gap_s: Some(100), ..Default::default() };
        let merged = v.over(&AnalyticsSettings::default());
        assert_eq!(merged.long_gap_s, 100);
        assert_eq!(merged.validate().expect_err("invalid").field, "long_gap_s");
        assert!(SettingsValues::default().is_empty());
        let e = SettingsValues::default().complete().expect_err("incomplete");
        assert_eq!(e.field, "speed_limit_kmh");
    }
}
