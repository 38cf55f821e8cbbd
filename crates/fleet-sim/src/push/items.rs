//! What the simulated vendor pushes for a span of simulated time, in the Data Push item shapes
//! (and the Open API alarm shape). Fields the vendor documents are filled as documented; for the
//! kinds it does not document (fuel, temperature, OBD, trip report, fault) plausible fields are
//! invented and receivers are expected to keep them verbatim.

use serde_json::{json, Value};

use crate::model::plan::Activity;
use crate::model::rng::{hash, tag, unit};
use crate::model::{Fleet, Vehicle};
use crate::server::wire::{format_time, parse_time};

/// The kind of a pushed item: which Data Push path it goes to (the client's own type, so the
/// paths are defined once).
pub use fleet_tracksolid::DataPushKind as PushKind;

/// One item to push: its kind, the event time it is about (simulated unix seconds), the device,
/// and the JSON the vendor would send.
#[derive(Debug, Clone, PartialEq)]
pub struct PushItem {
    pub kind: PushKind,
    pub time: i64,
    pub imei: String,
    pub body: Value,
    /// The Open API push form of the same alarm (`data` field), for alarms only.
    pub open_api: Option<Value>,
}

/// Heartbeats are sent this often per device, seconds; trackers without GPS send a cell-tower
/// fix, and sensors (fuel, temperature, OBD) a reading while the ignition is on, as often.
pub const HEARTBEAT_EVERY_S: i64 = 600;

fn every(from: i64, to: i64, step: i64) -> impl Iterator<Item = i64> {
    let first = from - from.rem_euclid(step) + if from.rem_euclid(step) == 0 { 0 } else { step };
    (0..).map(move |k| first + k * step).take_while(move |t| *t <= to)
}

/// Which optional sensors a vehicle carries (deterministic per vehicle).
fn sensors(fleet: &Fleet, v: &Vehicle) -> (bool, bool, bool) {
    let h = hash(&[fleet.seed(), tag::VEHICLE, v.index as u64, 0x5E45]);
    (unit(h) < 0.3, unit(h.rotate_left(17)) < 0.1, unit(h.rotate_left(33)) < 0.2)
}

/// Everything vehicle `v` pushes about the span `(from, to]`, in event-time order.
pub fn items_between(fleet: &Fleet, v: &Vehicle, from: i64, to: i64) -> Vec<PushItem> {
    let imei = v.imei.to_string();
    let mut out = Vec::new();
    let mut push = |kind, time, body: Value, open_api: Option<Value>| {
        out.push(PushItem { kind, time, imei: imei.clone(), body, open_api });
    };
    for f in fleet.history(v.index, from + 1, to) {
        push(
            PushKind::Gps,
            f.time,
            json!({
                "deviceImei": v.imei.as_str(),
                "gpsTime": format_time(f.time),
                "gateTime": format_time(f.time + 1),
                "satelliteNum": f.satellites,
                "lat": f.position.lat(),
                "lng": f.position.lon(),
                "gpsMode": 0,
                "gpsSpeed": f.speed_kmh.round() as i64,
                "direction": f.course_deg.round() as i64,
                "acc": f.ignition.map(i32::from),
                "postType": 1,
                "altitude": 1650,
            }),
            None,
        );
    }
    for a in fleet.alarms(v.index, from + 1, to) {
        let body = json!({
            "type": "DEVICE",
            "msgClass": 0,
            "gateTime": format_time(a.time + 1),
            "msg": {
                "deviceImei": v.imei.as_str(),
                "alertType": a.code,
                "alarmName": a.name,
                "alarmTime": format_time(a.time),
                "lat": a.position.lat(),
                "lng": a.position.lon(),
                "gpsSpeed": a.speed_kmh.round() as i64,
            }
        });
        let open = json!({
            "imei": v.imei.as_str(),
            "deviceName": v.name,
            "alarmType": a.code,
            "alarmName": a.name,
            "lat": a.position.lat().to_string(),
            "lng": a.position.lon().to_string(),
            "alarmTime": format_time(a.time),
        });
        push(PushKind::Alarm, a.time, body, Some(open));
    }
    let (fuel, reefer, obd) = sensors(fleet, v);
    for t in every(from + 1, to, HEARTBEAT_EVERY_S) {
        let plan = fleet.plan(v.index, crate::model::local_date(t));
        if plan.is_silent(t) {
            continue;
        }
        let ignition = plan.segment_at(t).is_some_and(|s| s.ignition());
        push(
            PushKind::Heartbeat,
            t,
            json!({
                "deviceImei": v.imei.as_str(),
                "gateTime": format_time(t),
                "powerLevel": 5,
                "gsmSign": 60 + (t / HEARTBEAT_EVERY_S % 30),
                "acc": if v.has_acc { json!(i32::from(ignition)) } else { Value::Null },
                "oilEle": 1,
                "gpsPos": i32::from(v.reports_gps),
                "remoteLock": 0,
                "powerStatus": 1,
                "fortify": i32::from(!ignition),
            }),
            None,
        );
        if !v.reports_gps {
            push(
                PushKind::Lbs,
                t,
                json!({
                    "deviceImei": v.imei.as_str(),
                    "gateTime": format_time(t),
                    "lbsJson": format!("{{\"mcc\":639,\"mnc\":2,\"cellList\":\"{},{},-71\"}}", 100 + v.index % 50, 20_000 + v.index),
                    "postType": "LBS",
                }),
                None,
            );
        }
        if ignition {
            if fuel {
                let litres =
                    30.0 + 40.0 * unit(hash(&[fleet.seed(), v.index as u64, t as u64 / 3600]));
                push(
                    PushKind::Oil,
                    t,
                    json!({ "deviceImei": v.imei.as_str(), "gateTime": format_time(t), "oilValue": (litres * 10.0).round() / 10.0, "unit": "L" }),
                    None,
                );
            }
            if reefer {
                push(
                    PushKind::Temperature,
                    t,
                    json!({ "deviceImei": v.imei.as_str(), "gateTime": format_time(t), "temperature": 4.0 + (t % 7) as f64 * 0.3, "sensorId": 1 }),
                    None,
                );
            }
            if obd {
                push(
                    PushKind::Obd,
                    t,
                    json!({ "deviceImei": v.imei.as_str(), "gateTime": format_time(t), "rpm": 900 + t % 1800, "coolantTemp": 88, "fuelLevel": 55, "obdSpeed": 0 }),
                    None,
                );
            }
        }
    }
    let (first, last) = (crate::model::local_date(from), crate::model::local_date(to));
    for day in first.iter_days().take_while(|d| *d <= last) {
        let plan = fleet.plan(v.index, day);
        for &(a, b) in &plan.silent {
            if b - a >= 3600 {
                for (t, kind) in [(a, "LOGOUT"), (b, "LOGIN")] {
                    if t > from && t <= to {
                        push(
                            PushKind::Event,
                            t,
                            json!({ "deviceImei": v.imei.as_str(), "type": kind, "gateTime": format_time(t), "timezone": "GMT+03:00" }),
                            None,
                        );
                    }
                }
            }
        }
        for seg in &plan.segments {
            let Activity::Drive(legs) = &seg.activity else { continue };
            if seg.end > from && seg.end <= to {
                let km: f64 = legs.iter().map(|l| l.length_m).sum::<f64>() / 1000.0;
                push(
                    PushKind::TripReport,
                    seg.end,
                    json!({
                        "deviceImei": v.imei.as_str(),
                        "startTime": format_time(seg.start),
                        "endTime": format_time(seg.end),
                        "distance": (km * 100.0).round() / 100.0,
                        "startLat": seg.at.lat(), "startLng": seg.at.lon(),
                        "endLat": legs.last().map(|l| l.to.lat()), "endLng": legs.last().map(|l| l.to.lon()),
                    }),
                    None,
                );
                if obd && unit(hash(&[fleet.seed(), v.index as u64, seg.start as u64, 0xFA])) < 0.02
                {
                    push(
                        PushKind::FaultInfo,
                        seg.end,
                        json!({ "deviceImei": v.imei.as_str(), "gateTime": format_time(seg.end), "faultCode": "P0171", "faultDesc": "System too lean (bank 1)" }),
                        None,
                    );
                }
            }
        }
    }
    out.sort_by_key(|i| (i.time, i.kind));
    out.dedup();
    out
}

/// `body` with every vendor time in it (`yyyy-MM-dd HH:mm:ss` strings, at any depth) moved by
/// `shift_s` seconds; unchanged when `shift_s` is 0.
pub fn shift_times(body: Value, shift_s: i64) -> Value {
    if shift_s == 0 {
        return body;
    }
    match body {
        Value::String(s) => match parse_time(&s) {
            Some(t) if s.len() == 19 => Value::String(format_time(t + shift_s)),
            _ => Value::String(s),
        },
        Value::Array(a) => Value::Array(a.into_iter().map(|v| shift_times(v, shift_s)).collect()),
        Value::Object(o) => {
            Value::Object(o.into_iter().map(|(k, v)| (k, shift_times(v, shift_s))).collect())
        }
        other => other,
    }
}
