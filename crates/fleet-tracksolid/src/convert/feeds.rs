//! Records of the Data Push kinds that are neither positions nor alarms: heartbeats, gateway
//! sessions, cell-tower fixes, sensor readings and the vendor's trip reports.

use chrono::{DateTime, Utc};
use fleet_core::{
    CellFix, DeviceEvent, Heartbeat, SensorKind, SensorReading, SessionEventKind, VendorTrip,
};
use serde_json::Value;

use super::{
    extra, flag, imei, integer, non_negative, number, optional_location, time, RecordError,
};
use crate::push::{DataPushKind, EventPush, HeartbeatPush, LbsPush, OpaquePush, SessionEvent};
use crate::wire::{Lenient, WireScalar};

/// A `/pushhb` item as a heartbeat, timed by the gateway.
pub fn heartbeat(item: &HeartbeatPush, now: DateTime<Utc>) -> Result<Heartbeat, RecordError> {
    let gsm_signal = match integer("gsmSign", &item.gsm_sign)? {
        Some(n) if !(0..=100).contains(&n) => {
            return Err(RecordError::OutOfRange { field: "gsmSign", value: n as f64 })
        }
        other => other.map(|n| n as i16),
    };
    Ok(Heartbeat {
        imei: imei(Some(&item.imei), "deviceImei")?,
        gate_time: time("gateTime", &item.gate_time, now)?,
        power_level: power_level(&item.power_level)?,
        gsm_signal,
        ignition: flag("acc", &item.acc)?,
        extra: extra(&item.extra),
    })
}

/// The battery level: a 0–6 scale on most Jimi firmware, a percentage on some, so anything whole
/// within 0–100 is kept as sent; a fraction or a larger number is a garbled reading.
fn power_level(value: &Lenient<f64>) -> Result<Option<i16>, RecordError> {
    match number("powerLevel", value)? {
        None => Ok(None),
        Some(v) if v.fract() == 0.0 && (0.0..=100.0).contains(&v) => Ok(Some(v as i16)),
        Some(v) => Err(RecordError::OutOfRange { field: "powerLevel", value: v }),
    }
}

/// A `/pushevent` item as a login or logout, timed by the gateway. A `type` other than
/// `LOGIN`/`LOGOUT` is kept as `Other` with the text in `extra`, since the vendor may add kinds.
pub fn device_event(item: &EventPush, now: DateTime<Utc>) -> Result<DeviceEvent, RecordError> {
    let imei = imei(Some(&item.imei), "deviceImei")?;
    let mut fields = item.extra.clone();
    let kind = match &item.event {
        None => return Err(RecordError::MissingField { field: "type" }),
        Some(SessionEvent::Login) => SessionEventKind::Login,
        Some(SessionEvent::Logout) => SessionEventKind::Logout,
        Some(SessionEvent::Other(text)) => {
            fields.insert("type".to_owned(), text.clone().into());
            SessionEventKind::Other
        }
    };
    Ok(DeviceEvent {
        imei,
        time: time("gateTime", &item.gate_time, now)?,
        kind,
        timezone: item.timezone.clone(),
        extra: extra(&fields),
    })
}

/// A `/pushlbs` item as the towers or access points a device saw. `lbsJson` is JSON text by the
/// doc and stored as the JSON it holds; text that is not JSON is kept as a string rather than
/// lost, since resolving towers to places happens later and may cope with it.
pub fn cell_fix(item: &LbsPush, now: DateTime<Utc>) -> Result<CellFix, RecordError> {
    let cells = item.lbs_json.as_ref().map(|text| {
        serde_json::from_str::<Value>(text).unwrap_or_else(|_| Value::String(text.clone()))
    });
    Ok(CellFix {
        imei: imei(Some(&item.imei), "deviceImei")?,
        gate_time: time("gateTime", &item.gate_time, now)?,
        fix_kind: item.post_type.clone(),
        cells,
        extra: extra(&item.extra),
    })
}

/// An oil, temperature, OBD or fault item as a sensor reading, kept whole since its fields are
/// not documented. It is timed by `gateTime`; an item without a readable one is rejected, as a
/// reading at an invented time would mislead more than a missing one.
pub fn sensor_reading(push: &OpaquePush, now: DateTime<Utc>) -> Result<SensorReading, RecordError> {
    let kind = match push.kind {
        DataPushKind::Oil => SensorKind::Fuel,
        DataPushKind::Temperature => SensorKind::Temperature,
        DataPushKind::Obd => SensorKind::Obd,
        DataPushKind::FaultInfo => SensorKind::Fault,
        other => return Err(RecordError::WrongKind { kind: other, expected: "sensor reading" }),
    };
    Ok(SensorReading {
        imei: imei(push.imei.as_deref(), "deviceImei")?,
        time: time("gateTime", &push.gate_time, now)?,
        kind,
        item: push.item.clone(),
    })
}

/// A `/pushtripreport` item as a vendor trip. Its fields are not documented; the shape read is
/// `startTime`, `endTime` (both required), `distance` in kilometres (converted to metres, as
/// for the polled trips) and optional start and end coordinates. The whole item is kept in
/// `extra`.
pub fn pushed_trip(push: &OpaquePush, now: DateTime<Utc>) -> Result<VendorTrip, RecordError> {
    if push.kind != DataPushKind::TripReport {
        return Err(RecordError::WrongKind { kind: push.kind, expected: "trip report" });
    }
    let item = &push.item;
    let imei = imei(push.imei.as_deref(), "deviceImei")?;
    let start_time = time("startTime", &field(item, "startTime"), now)?;
    let end_time = time("endTime", &field(item, "endTime"), now)?;
    if end_time < start_time {
        return Err(RecordError::EndsBeforeStart { start: start_time, end: end_time });
    }
    let (start_lat, start_lng) = (field(item, "startLat"), field(item, "startLng"));
    let (end_lat, end_lng) = (field(item, "endLat"), field(item, "endLng"));
    Ok(VendorTrip {
        imei,
        start_time,
        end_time,
        start: optional_location("startLat", &start_lat, "startLng", &start_lng)?,
        end: optional_location("endLat", &end_lat, "endLng", &end_lng)?,
        distance_m: non_negative("distance", &field(item, "distance"))?.map(|km| km * 1000.0),
        duration_s: Some((end_time - start_time).num_seconds()),
        avg_speed_kmh: None,
        max_speed_kmh: None,
        extra: Some(item.clone()),
    })
}

fn field<T: WireScalar>(item: &Value, key: &str) -> Lenient<T> {
    item.get(key).map_or(Lenient::Missing, Lenient::from_json)
}
