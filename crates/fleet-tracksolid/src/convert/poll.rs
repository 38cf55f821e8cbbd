//! Records fetched by polling the OpenAPI: locations, track points, alarms, devices, trips.

use chrono::{DateTime, Utc};
use fleet_core::{AlarmEvent, DeviceProfile, Imei, PositionFix, PositionSource, VendorTrip};

use super::{
    alarm_class, course, extra, fix_kind, fix_location, flag, imei, integer, non_negative, number,
    optional_location, satellites, speed, time, RecordError,
};
use crate::dto::{AlarmItem, DeviceItem, LocationItem, MileageTrip, TrackPoint};
use crate::wire::Lenient;

/// A live location (`location.list` / `location.get`) as a fix with source `Poll`.
pub fn location_fix(item: &LocationItem, now: DateTime<Utc>) -> Result<PositionFix, RecordError> {
    Ok(PositionFix {
        imei: imei(item.imei.as_deref(), "imei")?,
        gps_time: time("gpsTime", &item.gps_time, now)?,
        location: fix_location(&item.lat, &item.lng)?,
        speed_kmh: speed("speed", &item.speed)?,
        course_deg: course("direction", &item.direction)?,
        altitude_m: None,
        ignition: flag("accStatus", &item.acc_status)?,
        satellites: satellites("gpsNum", &item.gps_num)?,
        fix_kind: fix_kind(item.pos_type.as_deref())?,
        battery_pct: percent("electQuantity", &item.elect_quantity)?,
        // `powerValue` and `batteryPowerVal` stay in `extra`: the doc and real samples disagree
        // on whether they are volts or percent, and a wrong unit is worse than none
        external_v: None,
        odometer_m: non_negative("currentMileage", &item.current_mileage)?.map(km_to_m),
        source: PositionSource::Poll,
        extra: extra(&item.extra),
    })
}

fn percent(field: &'static str, value: &Lenient<f64>) -> Result<Option<f32>, RecordError> {
    match number(field, value)? {
        Some(pct) if !(0.0..=100.0).contains(&pct) => {
            Err(RecordError::OutOfRange { field, value: pct })
        }
        other => Ok(other.map(|pct| pct as f32)),
    }
}

/// A point of `track.list` for `imei` (points carry none) as a fix with source `Track`.
pub fn track_fix(
    point: &TrackPoint,
    imei: &Imei,
    now: DateTime<Utc>,
) -> Result<PositionFix, RecordError> {
    let ignition = match flag("accStatus", &point.acc_status)? {
        Some(on) => Some(on),
        None => flag("ignition", &point.ignition)?,
    };
    Ok(PositionFix {
        imei: imei.clone(),
        gps_time: time("gpsTime", &point.gps_time, now)?,
        location: fix_location(&point.lat, &point.lng)?,
        speed_kmh: speed("gpsSpeed", &point.gps_speed)?,
        course_deg: course("direction", &point.direction)?,
        altitude_m: None,
        ignition,
        satellites: satellites("satellite", &point.satellite)?,
        fix_kind: fix_kind(point.pos_type.as_deref())?,
        battery_pct: None,
        external_v: None,
        odometer_m: None,
        source: PositionSource::Track,
        extra: extra(&point.extra),
    })
}

/// An alarm of `alarm.list` with source `Poll`. The name falls back to the type code when the
/// vendor sends neither spelling of it.
pub fn alarm_event(item: &AlarmItem, now: DateTime<Utc>) -> Result<AlarmEvent, RecordError> {
    let imei = imei(item.imei.as_deref(), "imei")?;
    let alarm_type =
        item.alert_type_id.clone().ok_or(RecordError::MissingField { field: "alertTypeId" })?;
    let alarm_name = item
        .alarm_type_name
        .clone()
        .or_else(|| item.alert_type_name.clone())
        .unwrap_or_else(|| alarm_type.clone());
    Ok(AlarmEvent {
        imei,
        alarm_time: time("alertTime", &item.alert_time, now)?,
        class: alarm_class(&alarm_type),
        alarm_type,
        alarm_name,
        location: optional_location("lat", &item.lat, "lng", &item.lng)?,
        speed_kmh: speed("speed", &item.speed)?,
        source: PositionSource::Poll,
        extra: extra(&item.extra),
    })
}

/// A device of `device.list`. A device without a name is named by its IMEI; one without
/// `enabledFlag` is taken as enabled, since the account lists it.
pub fn device_profile(item: &DeviceItem) -> Result<DeviceProfile, RecordError> {
    let imei = imei(item.imei.as_deref(), "imei")?;
    Ok(DeviceProfile {
        name: item.device_name.clone().unwrap_or_else(|| imei.to_string()),
        imei,
        plate: item.vehicle_number.clone(),
        driver_name: item.driver_name.clone(),
        driver_phone: item.driver_phone.clone(),
        model: item.mc_type.clone(),
        sim: item.sim.clone(),
        group: item.device_group.clone(),
        vehicle_type: item.vehicle_icon.clone(),
        enabled: flag("enabledFlag", &item.enabled_flag)?.unwrap_or(true),
        extra: extra(&item.extra),
    })
}

/// A trip of `track.mileage`.
///
/// `distance` is documented in metres, but production accounts deliver kilometres; fleetd
/// follows the data and converts kilometres to metres here. Start and
/// end positions of (0, 0) mean "unknown" and become `None`.
pub fn vendor_trip(trip: &MileageTrip, now: DateTime<Utc>) -> Result<VendorTrip, RecordError> {
    let imei = imei(trip.imei.as_deref(), "imei")?;
    let start_time = time("startTime", &trip.start_time, now)?;
    let end_time = time("endTime", &trip.end_time, now)?;
    if end_time < start_time {
        return Err(RecordError::EndsBeforeStart { start: start_time, end: end_time });
    }
    let duration_s = match integer("runTimeSecond", &trip.run_time_second)? {
        Some(s) => Some(s),
        None => integer("elapsed", &trip.elapsed)?,
    };
    if let Some(s) = duration_s.filter(|s| *s < 0) {
        return Err(RecordError::OutOfRange { field: "runTimeSecond", value: s as f64 });
    }
    Ok(VendorTrip {
        imei,
        start_time,
        end_time,
        start: optional_location("startLat", &trip.start_lat, "startLng", &trip.start_lng)?,
        end: optional_location("endLat", &trip.end_lat, "endLng", &trip.end_lng)?,
        distance_m: non_negative("distance", &trip.distance)?.map(km_to_m),
        duration_s,
        avg_speed_kmh: speed("avgSpeed", &trip.avg_speed)?,
        max_speed_kmh: speed("maxSpeed", &trip.max_speed)?,
        extra: extra(&trip.extra),
    })
}

fn km_to_m(km: f64) -> f64 {
    km * 1000.0
}
