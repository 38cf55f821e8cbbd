//! Records pushed by the vendor: Data Push GPS items and alarms of both push interfaces, and the
//! one dispatch from any pushed item to its record.

use chrono::{DateTime, Utc};
use fleet_core::{
    AlarmEvent, CellFix, DeviceEvent, Heartbeat, PositionFix, PositionSource, SensorReading,
    VendorTrip,
};
use serde_json::{Map, Value};

use super::feeds::{cell_fix, device_event, heartbeat, pushed_trip, sensor_reading};
use super::{
    alarm_class, course, extra, fix_kind, fix_location, flag, imei, non_negative, number,
    optional_location, satellites, speed, time, RecordError,
};
use crate::push::{AlarmDataPush, AlarmPush, DataPushKind, GpsPush, OpenPush, PushItem};
use crate::time::format_time;
use crate::wire::Lenient;

/// A `/pushgps` item as a fix with source `Push`.
pub fn gps_push_fix(item: &GpsPush, now: DateTime<Utc>) -> Result<PositionFix, RecordError> {
    Ok(PositionFix {
        imei: imei(Some(&item.imei), "deviceImei")?,
        gps_time: time("gpsTime", &item.gps_time, now)?,
        location: fix_location(&item.lat, &item.lng)?,
        speed_kmh: speed("gpsSpeed", &item.gps_speed)?,
        course_deg: course("direction", &item.direction)?,
        altitude_m: altitude(&item.altitude)?,
        ignition: flag("acc", &item.acc)?,
        satellites: satellites("satelliteNum", &item.satellite_num)?,
        fix_kind: fix_kind(item.post_type.as_deref())?,
        battery_pct: None,
        external_v: None,
        odometer_m: non_negative("distance", &item.distance)?,
        source: PositionSource::Push,
        extra: extra(&item.extra),
    })
}

/// Puts a parsed but unmodelled field back into `extra`, unreadable values as sent.
fn keep<T>(fields: &mut Map<String, Value>, key: &str, value: &Lenient<T>, json: fn(&T) -> Value) {
    let restored = match value {
        Lenient::Missing => return,
        Lenient::Value(v) => json(v),
        Lenient::Invalid(raw) => Value::String(raw.clone()),
    };
    fields.insert(key.to_owned(), restored);
}

fn altitude(value: &Lenient<f64>) -> Result<Option<f32>, RecordError> {
    // from the Dead Sea shore to airliner cruise: a land fleet's tracker is never outside this
    match number("altitude", value)? {
        Some(m) if !(-500.0..=15_000.0).contains(&m) => {
            Err(RecordError::OutOfRange { field: "altitude", value: m })
        }
        other => Ok(other.map(|m| m as f32)),
    }
}

/// A `jimi.push.device.alarm` push as an alarm with source `Push`.
pub fn open_push_alarm_event(
    push: &AlarmPush,
    now: DateTime<Utc>,
) -> Result<AlarmEvent, RecordError> {
    let imei = imei(Some(&push.imei), "imei")?;
    let alarm_type =
        push.alarm_type.clone().ok_or(RecordError::MissingField { field: "alarmType" })?;
    let mut fields = push.extra.clone();
    if let Some(name) = &push.device_name {
        fields.insert("deviceName".to_owned(), name.clone().into());
    }
    Ok(AlarmEvent {
        imei,
        alarm_time: time("alarmTime", &push.alarm_time, now)?,
        class: alarm_class(&alarm_type),
        alarm_name: push.alarm_name.clone().unwrap_or_else(|| alarm_type.clone()),
        alarm_type,
        location: optional_location("lat", &push.lat, "lng", &push.lng)?,
        speed_kmh: None,
        source: PositionSource::Push,
        extra: extra(&fields),
    })
}

/// A `/pushalarm` item as an alarm with source `Push`. The Data Push codes are classified with
/// the OpenAPI's table; the code itself is kept, so a later table can reclassify.
pub fn data_push_alarm_event(
    push: &AlarmDataPush,
    now: DateTime<Utc>,
) -> Result<AlarmEvent, RecordError> {
    let imei = imei(Some(&push.imei), "deviceImei")?;
    let alarm_type =
        push.alarm_type.clone().ok_or(RecordError::MissingField { field: "alertType" })?;
    let mut fields = push.extra.clone();
    if let Some(target_type) = &push.target_type {
        fields.insert("type".to_owned(), target_type.clone().into());
    }
    keep(&mut fields, "msgClass", &push.msg_class, |class| (*class).into());
    keep(&mut fields, "gateTime", &push.gate_time, |t| format_time(*t).into());
    Ok(AlarmEvent {
        imei,
        alarm_time: time("alarmTime", &push.alarm_time, now)?,
        class: alarm_class(&alarm_type),
        alarm_name: push.alarm_name.clone().unwrap_or_else(|| alarm_type.clone()),
        alarm_type,
        location: optional_location("lat", &push.lat, "lng", &push.lng)?,
        speed_kmh: speed("gpsSpeed", &push.speed)?,
        source: PositionSource::Push,
        extra: extra(&fields),
    })
}

/// The domain record of any pushed item.
#[derive(Debug, Clone, PartialEq)]
pub enum PushRecord {
    Position(PositionFix),
    Alarm(AlarmEvent),
    Heartbeat(Heartbeat),
    Event(DeviceEvent),
    Cell(CellFix),
    Sensor(SensorReading),
    Trip(VendorTrip),
}

/// Converts a Data Push item, of any kind, into its record.
pub fn push_item_record(item: &PushItem, now: DateTime<Utc>) -> Result<PushRecord, RecordError> {
    Ok(match item {
        PushItem::Gps(gps) => PushRecord::Position(gps_push_fix(gps, now)?),
        PushItem::Alarm(alarm) => PushRecord::Alarm(data_push_alarm_event(alarm, now)?),
        PushItem::Heartbeat(hb) => PushRecord::Heartbeat(heartbeat(hb, now)?),
        PushItem::Event(event) => PushRecord::Event(device_event(event, now)?),
        PushItem::Lbs(lbs) => PushRecord::Cell(cell_fix(lbs, now)?),
        PushItem::Opaque(push) if push.kind == DataPushKind::TripReport => {
            PushRecord::Trip(pushed_trip(push, now)?)
        }
        PushItem::Opaque(push) => PushRecord::Sensor(sensor_reading(push, now)?),
    })
}

/// Converts an OpenAPI push into its record. Raw device data is `None`: it is the device's own
/// binary protocol, answered or logged by the receiver but not a record fleetd stores.
pub fn open_push_record(
    push: &OpenPush,
    now: DateTime<Utc>,
) -> Result<Option<PushRecord>, RecordError> {
    match push {
        OpenPush::Alarm(alarm) => Ok(Some(PushRecord::Alarm(open_push_alarm_event(alarm, now)?))),
        OpenPush::Raw { .. } => Ok(None),
    }
}
