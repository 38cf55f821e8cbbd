//! Strict conversion of the vendor's records into fleetd's domain records.
//!
//! Decoding is lenient (see `wire`); this is where a record is judged. Each function returns the
//! domain record or the one [`RecordError`] that makes the record unusable, so ingest can drop
//! and count bad records without losing the good ones around them.

mod alarm_class;
mod feeds;
mod poll;
mod push;

use chrono::{DateTime, TimeDelta, Utc};
use fleet_core::{CoordinateError, FixKind, Imei, ImeiError, LatLon};
use serde_json::{Map, Value};

use crate::push::DataPushKind;
use crate::wire::Lenient;

pub use alarm_class::alarm_class;
pub use feeds::{cell_fix, device_event, heartbeat, pushed_trip, sensor_reading};
pub use poll::{alarm_event, device_profile, location_fix, track_fix, vendor_trip};
pub use push::{
    data_push_alarm_event, gps_push_fix, open_push_alarm_event, open_push_record, push_item_record,
    PushRecord,
};

/// How far ahead of the receiving clock a record's time may be: device clocks and the vendor's
/// drift a little, anything further is a broken clock and would poison "latest position".
pub const MAX_FUTURE_SKEW: TimeDelta = TimeDelta::minutes(10);

/// Fastest believable ground speed of a fleet vehicle, km/h; faster readings are glitches.
pub const MAX_SPEED_KMH: f64 = 400.0;

/// Why a vendor record cannot become a domain record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RecordError {
    #[error("{field} is missing")]
    MissingField { field: &'static str },
    #[error("bad IMEI: {0}")]
    BadImei(#[from] ImeiError),
    #[error("bad coordinates ({lat}, {lon}): {reason}")]
    BadCoordinates { lat: f64, lon: f64, reason: CoordinateError },
    #[error("{field} {value:?} is not a yyyy-MM-dd HH:mm:ss UTC time")]
    BadTime { field: &'static str, value: String },
    #[error("{field} {time} is more than 10 minutes ahead of now ({now})")]
    FutureTime { field: &'static str, time: DateTime<Utc>, now: DateTime<Utc> },
    #[error("{field} {value:?} is not a number")]
    BadNumber { field: &'static str, value: String },
    #[error("{field} {value:?} is not a boolean")]
    BadFlag { field: &'static str, value: String },
    #[error("{field} {kmh} km/h is negative or faster than {MAX_SPEED_KMH} km/h")]
    BadSpeed { field: &'static str, kmh: f64 },
    #[error("course {deg} is neither -1 (unknown) nor within 0..=360")]
    BadCourse { deg: f64 },
    #[error("{field} {value} is outside its possible range")]
    OutOfRange { field: &'static str, value: f64 },
    #[error("position type {value:?} is none of GPS/1, LBS/2, WIFI/3, BEACON")]
    UnknownFixKind { value: String },
    #[error("the trip ends ({end}) before it starts ({start})")]
    EndsBeforeStart { start: DateTime<Utc>, end: DateTime<Utc> },
    /// An item handed to the conversion of another kind: a caller's mistake, not the vendor's.
    #[error("a {kind:?} item is not a {expected}")]
    WrongKind { kind: DataPushKind, expected: &'static str },
}

fn imei(raw: Option<&str>, field: &'static str) -> Result<Imei, RecordError> {
    let raw = raw.ok_or(RecordError::MissingField { field })?;
    Ok(Imei::parse(raw)?)
}

/// A required time, not in the future.
fn time(
    field: &'static str,
    value: &Lenient<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, RecordError> {
    let t = match value {
        Lenient::Value(t) => *t,
        Lenient::Missing => return Err(RecordError::MissingField { field }),
        Lenient::Invalid(raw) => return Err(RecordError::BadTime { field, value: raw.clone() }),
    };
    if t > now + MAX_FUTURE_SKEW {
        return Err(RecordError::FutureTime { field, time: t, now });
    }
    Ok(t)
}

fn number(field: &'static str, value: &Lenient<f64>) -> Result<Option<f64>, RecordError> {
    value.checked().map_err(|raw| RecordError::BadNumber { field, value: raw.to_owned() })
}

fn integer(field: &'static str, value: &Lenient<i64>) -> Result<Option<i64>, RecordError> {
    value.checked().map_err(|raw| RecordError::BadNumber { field, value: raw.to_owned() })
}

fn flag(field: &'static str, value: &Lenient<bool>) -> Result<Option<bool>, RecordError> {
    value.checked().map_err(|raw| RecordError::BadFlag { field, value: raw.to_owned() })
}

/// A number that cannot be negative (distances, durations, odometers).
fn non_negative(field: &'static str, value: &Lenient<f64>) -> Result<Option<f64>, RecordError> {
    match number(field, value)? {
        Some(v) if v < 0.0 => Err(RecordError::OutOfRange { field, value: v }),
        other => Ok(other),
    }
}

fn speed(field: &'static str, value: &Lenient<f64>) -> Result<Option<f32>, RecordError> {
    match number(field, value)? {
        Some(kmh) if !(0.0..=MAX_SPEED_KMH).contains(&kmh) => {
            Err(RecordError::BadSpeed { field, kmh })
        }
        other => Ok(other.map(|kmh| kmh as f32)),
    }
}

/// Heading in degrees; the vendor's `-1` means unknown.
fn course(field: &'static str, value: &Lenient<f64>) -> Result<Option<f32>, RecordError> {
    match number(field, value)? {
        None => Ok(None),
        Some(-1.0) => Ok(None),
        Some(deg) if (0.0..=360.0).contains(&deg) => Ok(Some(deg as f32)),
        Some(deg) => Err(RecordError::BadCourse { deg }),
    }
}

fn satellites(field: &'static str, value: &Lenient<i64>) -> Result<Option<i16>, RecordError> {
    match integer(field, value)? {
        None => Ok(None),
        Some(n) => match i16::try_from(n) {
            Ok(n) if n >= 0 => Ok(Some(n)),
            _ => Err(RecordError::OutOfRange { field, value: n as f64 }),
        },
    }
}

/// A position fix's coordinates: both required, and (0, 0) — what expired devices and devices
/// without a fix report — rejected.
fn fix_location(lat: &Lenient<f64>, lng: &Lenient<f64>) -> Result<LatLon, RecordError> {
    let lat = number("lat", lat)?.ok_or(RecordError::MissingField { field: "lat" })?;
    let lon = number("lng", lng)?.ok_or(RecordError::MissingField { field: "lng" })?;
    LatLon::new(lat, lon).map_err(|reason| RecordError::BadCoordinates { lat, lon, reason })
}

/// Where an alarm or a trip end happened, if the vendor knew: absent or (0, 0) is "unknown",
/// which does not make the alarm or trip itself wrong; impossible coordinates still do.
fn optional_location(
    lat_field: &'static str,
    lat: &Lenient<f64>,
    lng_field: &'static str,
    lng: &Lenient<f64>,
) -> Result<Option<LatLon>, RecordError> {
    match (number(lat_field, lat)?, number(lng_field, lng)?) {
        (Some(lat), Some(lon)) => match LatLon::new(lat, lon) {
            Ok(at) => Ok(Some(at)),
            Err(CoordinateError::NullIsland) => Ok(None),
            Err(reason) => Err(RecordError::BadCoordinates { lat, lon, reason }),
        },
        _ => Ok(None),
    }
}

/// The vendor's position type in any of its spellings: text in location items (`GPS`, `LBS`,
/// `WIFI`, `BEACON`), numbers in track points and GPS pushes (1 GPS, 2 LBS, 3 Wi-Fi). Absent
/// is taken as GPS, the vendor's default positioning, so fixes from firmware that omits the
/// field are kept.
fn fix_kind(value: Option<&str>) -> Result<FixKind, RecordError> {
    let Some(raw) = value else {
        return Ok(FixKind::Gps);
    };
    match raw.trim().to_ascii_uppercase().as_str() {
        "GPS" | "1" => Ok(FixKind::Gps),
        "LBS" | "2" => Ok(FixKind::Lbs),
        "WIFI" | "3" => Ok(FixKind::Wifi),
        "BEACON" => Ok(FixKind::Beacon),
        _ => Err(RecordError::UnknownFixKind { value: raw.to_owned() }),
    }
}

/// The record's `extra`: the unmapped fields as a JSON object, `None` when there are none.
fn extra(fields: &Map<String, Value>) -> Option<Value> {
    (!fields.is_empty()).then(|| Value::Object(fields.clone()))
}
