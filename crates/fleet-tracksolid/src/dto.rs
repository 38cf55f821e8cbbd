//! Response records of the OpenAPI methods fleetd calls, decoded leniently.
//!
//! Each type names the fields fleetd maps into its domain; everything else the vendor sends is
//! kept verbatim in `extra`, which travels on into the domain records' `extra`.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::wire::{opt_i64, opt_text, Lenient};

/// The grant of `jimi.oauth.token.get` and `jimi.oauth.token.refresh`.
#[derive(Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TokenGrant {
    #[serde(deserialize_with = "opt_text")]
    pub access_token: Option<String>,
    /// Lifetime in seconds; the doc types it as a string, its sample as a number.
    #[serde(deserialize_with = "opt_i64")]
    pub expires_in: Option<i64>,
    #[serde(deserialize_with = "opt_text")]
    pub refresh_token: Option<String>,
    /// `account`, `appKey`, `time` and whatever else comes along.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

// Tokens are credentials: they must not reach logs through `{:?}`.
impl fmt::Debug for TokenGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |t: &Option<String>| t.as_ref().map(|_| "[redacted]");
        f.debug_struct("TokenGrant")
            .field("access_token", &redacted(&self.access_token))
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &redacted(&self.refresh_token))
            .field("extra", &self.extra)
            .finish()
    }
}

/// One device of `jimi.user.device.list`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DeviceItem {
    #[serde(deserialize_with = "opt_text")]
    pub imei: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    pub device_name: Option<String>,
    /// Tracker model, e.g. `GT300L`.
    #[serde(deserialize_with = "opt_text")]
    pub mc_type: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    pub sim: Option<String>,
    /// Vehicle kind as the vendor's icon key: `automobile`, `bus`, `truck`, `mtc`, …
    #[serde(deserialize_with = "opt_text")]
    pub vehicle_icon: Option<String>,
    /// The number plate.
    #[serde(deserialize_with = "opt_text")]
    pub vehicle_number: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    pub driver_name: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    pub driver_phone: Option<String>,
    #[serde(deserialize_with = "opt_text")]
    pub device_group: Option<String>,
    /// 1 available, 0 not.
    pub enabled_flag: Lenient<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The latest position of one device, from `jimi.user.device.location.list` or
/// `jimi.device.location.get`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct LocationItem {
    #[serde(deserialize_with = "opt_text")]
    pub imei: Option<String>,
    /// `0` when the device has expired.
    pub lat: Lenient<f64>,
    pub lng: Lenient<f64>,
    pub gps_time: Lenient<DateTime<Utc>>,
    /// km/h, usually a string.
    pub speed: Lenient<f64>,
    /// Degrees from north; `-1` when unknown.
    pub direction: Lenient<f64>,
    pub acc_status: Lenient<bool>,
    /// Satellites in view.
    pub gps_num: Lenient<i64>,
    /// `GPS`, `LBS`, `WIFI` or `BEACON` here (numeric in track points).
    #[serde(deserialize_with = "opt_text")]
    pub pos_type: Option<String>,
    /// Battery percent; often `""`.
    pub elect_quantity: Lenient<f64>,
    /// The device's odometer, kilometres.
    pub current_mileage: Lenient<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One point of `jimi.device.track.list`. Points carry no IMEI: the call is for one device.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TrackPoint {
    pub lat: Lenient<f64>,
    pub lng: Lenient<f64>,
    pub gps_time: Lenient<DateTime<Utc>>,
    pub direction: Lenient<f64>,
    /// km/h.
    pub gps_speed: Lenient<f64>,
    /// `1` GPS, `2` LBS, `3` Wi-Fi here (text in location items).
    #[serde(deserialize_with = "opt_text")]
    pub pos_type: Option<String>,
    pub satellite: Lenient<i64>,
    /// ACC as `ON`/`OFF`; `ignition` carries the same signal and is the fallback.
    pub acc_status: Lenient<bool>,
    pub ignition: Lenient<bool>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One trip of `jimi.device.track.mileage`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct MileageTrip {
    #[serde(deserialize_with = "opt_text")]
    pub imei: Option<String>,
    pub start_time: Lenient<DateTime<Utc>>,
    pub end_time: Lenient<DateTime<Utc>>,
    pub start_lat: Lenient<f64>,
    pub start_lng: Lenient<f64>,
    pub end_lat: Lenient<f64>,
    pub end_lng: Lenient<f64>,
    /// Duration in seconds under its documented name; the doc's sample calls it `elapsed`.
    pub run_time_second: Lenient<i64>,
    pub elapsed: Lenient<i64>,
    /// Documented as metres, delivered as kilometres (see `convert::vendor_trip`).
    pub distance: Lenient<f64>,
    pub avg_speed: Lenient<f64>,
    pub max_speed: Lenient<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One alarm of `jimi.device.alarm.list`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct AlarmItem {
    #[serde(deserialize_with = "opt_text")]
    pub imei: Option<String>,
    /// Numeric device code or text platform code (the appendix "Device alarm type").
    #[serde(deserialize_with = "opt_text")]
    pub alert_type_id: Option<String>,
    /// The name as the sample and real responses spell it…
    #[serde(deserialize_with = "opt_text")]
    pub alarm_type_name: Option<String>,
    /// …and as the doc's field table spells it.
    #[serde(deserialize_with = "opt_text")]
    pub alert_type_name: Option<String>,
    pub alert_time: Lenient<DateTime<Utc>>,
    pub lat: Lenient<f64>,
    pub lng: Lenient<f64>,
    /// km/h.
    pub speed: Lenient<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
