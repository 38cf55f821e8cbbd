//! The data methods, answering with the vendor's field names and wire types (strings where the
//! vendor sends strings, numbers where it sends numbers) and its limits.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde_json::{json, Value};

use super::wire::{format_time, ok, ok_with_data, parse_time, ApiFault};
use super::SimState;
use crate::model::plan::local_midnight;
use crate::model::{Fix, Vehicle};

/// Most IMEIs one call may name.
pub const MAX_IMEIS: usize = 100;
/// Longest range of one `jimi.device.track.list` call, seconds.
pub const TRACK_MAX_RANGE_S: i64 = 7 * 86_400;
/// Oldest data the service keeps, seconds before now.
pub const HISTORY_KEPT_S: i64 = 90 * 86_400;
/// Longest range of one `jimi.device.alarm.list` call, seconds.
pub const ALARM_MAX_RANGE_S: i64 = 31 * 86_400;
/// Most alarm rows one query returns across its pages.
pub const ALARM_MAX_ROWS: usize = 1000;

type Params = HashMap<String, String>;

pub fn dispatch(state: &SimState, method: &str, p: &Params) -> Result<Value, ApiFault> {
    match method {
        "jimi.user.device.list" => device_list(state, p),
        "jimi.user.device.location.list" => location_list(state, p),
        "jimi.device.location.get" => location_get(state, p),
        "jimi.device.track.list" => track_list(state, p),
        "jimi.device.track.mileage" => track_mileage(state, p),
        "jimi.device.alarm.list" => alarm_list(state, p),
        other => Err(ApiFault::param(format!("Parameter error: method {other} does not exist"))),
    }
}

fn required<'a>(p: &'a Params, name: &str) -> Result<&'a str, ApiFault> {
    p.get(name)
        .map(String::as_str)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiFault::param(format!("Parameter error: {name} is required")))
}

fn check_target(state: &SimState, p: &Params) -> Result<(), ApiFault> {
    if required(p, "target")? != state.config.credentials.user {
        return Err(ApiFault::new(1002, "Account queried doesn’t exist"));
    }
    Ok(())
}

fn time_param(p: &Params, name: &str) -> Result<i64, ApiFault> {
    parse_time(required(p, name)?).ok_or_else(|| {
        ApiFault::param(format!("Parameter error: {name} must be yyyy-MM-dd HH:mm:ss"))
    })
}

fn imei_list<'a>(state: &'a SimState, raw: &str) -> Result<Vec<&'a Vehicle>, ApiFault> {
    let imeis: Vec<&str> = raw.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    if imeis.len() > MAX_IMEIS {
        return Err(ApiFault::param(format!(
            "Parameter error: at most {MAX_IMEIS} IMEIs per call"
        )));
    }
    // unknown IMEIs are left out, as the vendor does; none known at all is an error
    let found: Vec<&Vehicle> = imeis.iter().filter_map(|i| state.fleet.vehicle(i)).collect();
    if found.is_empty() {
        return Err(ApiFault::new(1002, "Illegal device"));
    }
    Ok(found)
}

fn device_item(state: &SimState, v: &Vehicle) -> Value {
    json!({
        "imei": v.imei.as_str(),
        "deviceName": v.name,
        "mcType": v.model,
        "mcTypeUseScope": "automobile",
        "sim": v.sim,
        "expiration": "2036-12-31 23:59:59",
        "activationTime": "2024-01-15 08:30:00",
        "reMark": v.cost_centre,
        "vehicleName": v.name,
        "vehicleIcon": v.kind.icon(),
        "vehicleNumber": v.plate,
        "vehicleModels": null,
        "carFrame": null,
        "driverName": v.driver,
        "driverPhone": v.driver_phone,
        "enabledFlag": 1,
        "engineNumber": "",
        "deviceGroupId": format!("{:032x}", v.city + 1),
        "deviceGroup": crate::model::city::CITIES[v.city].name,
        "account": state.config.credentials.user,
    })
}

fn device_list(state: &SimState, p: &Params) -> Result<Value, ApiFault> {
    check_target(state, p)?;
    Ok(ok(state.fleet.vehicles().iter().map(|v| device_item(state, v)).collect()))
}

fn on_off(b: Option<bool>, on: &str, off: &str) -> Value {
    match b {
        Some(true) => json!(on),
        Some(false) => json!(off),
        None => Value::Null,
    }
}

/// A live location in the vendor's location-list shape (numbers as strings, as it sends them).
fn location_item(state: &SimState, v: &Vehicle, f: &Fix, now: i64) -> Value {
    let online = now - f.time < 600;
    json!({
        "imei": v.imei.as_str(),
        "deviceName": v.name,
        "mcType": v.model,
        "icon": v.kind.icon(),
        "status": if online { "1" } else { "0" },
        "posType": "GPS",
        "lat": f.position.lat(),
        "lng": f.position.lon(),
        "hbTime": format_time(now - now % 300),
        "accStatus": on_off(f.ignition, "1", "0"),
        "gpsSignal": "4",
        "powerValue": null,
        "batteryPowerVal": "4.12",
        "speed": format!("{}", f.speed_kmh.round() as i64),
        "gpsNum": f.satellites.to_string(),
        "gpsTime": format_time(f.time),
        "direction": format!("{}", f.course_deg),
        "activationFlag": "1",
        "expireFlag": "1",
        "electQuantity": "",
        "locDesc": null,
        "distance": "-1",
        "temperature": null,
        "trackerOil": null,
        "currentMileage": format!("{}", odometer_km(state, v, f.time)),
        "account": state.config.credentials.user,
        "customerName": state.config.credentials.user,
        "confidence": null,
    })
}

/// Distance a simulated odometer is allowed per local day, km. No simulated day comes near it.
const ODOMETER_DAY_KM: f64 = 400.0;

/// A device odometer (`currentMileage`, km) that tracks the distance driven within a local day
/// (drive by completed drive) and never goes back: a per-vehicle base, a fixed allowance for
/// every day since 2024 (so earlier days need not be generated), and the drives completed
/// today by `at`, capped at the allowance. Across midnight it jumps by the unused allowance: compare readings within a
/// day, as reconciliation per vehicle-day does.
fn odometer_km(state: &SimState, v: &Vehicle, at: i64) -> f64 {
    let base = 20_000.0 + (v.index as f64 * 7_919.0) % 60_000.0;
    let epoch = NaiveDate::from_ymd_opt(2024, 1, 1).map_or(0, local_midnight);
    let today_start = local_midnight(crate::model::local_date(at));
    let past_days = ((today_start - epoch) / 86_400).max(0) as f64;
    let today_m: f64 =
        state.fleet.trips(v.index, today_start, at).iter().map(|t| t.distance_m).sum();
    let km = base + past_days * ODOMETER_DAY_KM + (today_m / 1000.0).min(ODOMETER_DAY_KM);
    (km * 1000.0).round() / 1000.0
}

fn locations(state: &SimState, vehicles: &[&Vehicle]) -> Value {
    let now = state.config.clock.now();
    let items: Vec<Value> = vehicles
        .iter()
        .filter_map(|v| state.fleet.latest(v.index, now).map(|f| location_item(state, v, &f, now)))
        .collect();
    ok(Value::Array(items))
}

fn location_list(state: &SimState, p: &Params) -> Result<Value, ApiFault> {
    check_target(state, p)?;
    let all: Vec<&Vehicle> = state.fleet.vehicles().iter().collect();
    Ok(locations(state, &all))
}

fn location_get(state: &SimState, p: &Params) -> Result<Value, ApiFault> {
    let vehicles = imei_list(state, required(p, "imeis")?)?;
    Ok(locations(state, &vehicles))
}

/// Checks a range against the vendor's limits, which follow the service's wall clock; returns
/// the simulated now, beyond which the fleet has no data yet.
fn check_range(state: &SimState, begin: i64, end: i64, max_s: i64) -> Result<i64, ApiFault> {
    let now = state.config.clock.now();
    // the service's own clock: the wall clock, or simulated time where that runs ahead of it
    let service_now = chrono::Utc::now().timestamp().max(now);
    if begin > end {
        return Err(ApiFault::param("Parameter error: begin_time must be before end_time"));
    }
    if end > service_now + 60 {
        return Err(ApiFault::param(
            "Parameter error: end_time must be earlier than the current time",
        ));
    }
    if end - begin > max_s {
        return Err(ApiFault::param(format!(
            "Parameter error: the time range cannot exceed {} days",
            max_s / 86_400
        )));
    }
    if begin < service_now - HISTORY_KEPT_S {
        return Err(ApiFault::param("Parameter error: only data within 3 months can be queried"));
    }
    Ok(now)
}

fn track_list(state: &SimState, p: &Params) -> Result<Value, ApiFault> {
    let imei = required(p, "imei")?;
    if imei.contains(',') {
        return Err(ApiFault::param("Parameter error: imei takes one IMEI"));
    }
    let v = state
        .fleet
        .vehicle(imei)
        .ok_or_else(|| ApiFault::new(1002, format!("IMEI does not exist{{{imei}}}")))?;
    let (begin, end) = (time_param(p, "begin_time")?, time_param(p, "end_time")?);
    let now = check_range(state, begin, end, TRACK_MAX_RANGE_S)?;
    let fixes = state.fleet.history(v.index, begin, end.min(now));
    let mut mileage_m = 0.0;
    for w in fixes.windows(2) {
        mileage_m += w[0].position.distance_m(&w[1].position);
    }
    let items: Vec<Value> = fixes
        .iter()
        .map(|f| {
            json!({
                "lat": f.position.lat(),
                "lng": f.position.lon(),
                "gpsTime": format_time(f.time),
                "direction": f.course_deg,
                "gpsSpeed": f.speed_kmh,
                "posType": 1,
                "satellite": f.satellites,
                "ignition": on_off(f.ignition, "ON", "OFF"),
                "accStatus": on_off(f.ignition, "ON", "OFF"),
                "gpsMode": 0,
                "confidence": null,
            })
        })
        .collect();
    Ok(ok_with_data(Value::Array(items), json!({ "mileage": (mileage_m / 10.0).round() / 100.0 })))
}

fn page(
    p: &Params,
    size_name: &str,
    default_size: usize,
    max_size: usize,
) -> Result<(usize, usize), ApiFault> {
    let size = match p.get(size_name) {
        None => default_size,
        Some(s) => {
            s.parse::<usize>().ok().filter(|n| (1..=max_size).contains(n)).ok_or_else(|| {
                ApiFault::param(format!(
                    "Parameter error: {size_name} must be between 1 and {max_size}"
                ))
            })?
        }
    };
    Ok((size, default_size))
}

fn track_mileage(state: &SimState, p: &Params) -> Result<Value, ApiFault> {
    let vehicles = imei_list(state, required(p, "imeis")?)?;
    let (begin, end) = (time_param(p, "begin_time")?, time_param(p, "end_time")?);
    let now = check_range(state, begin, end, 366 * 86_400)?;
    let (size, _) = page(p, "page_size", 100, 1000)?;
    let start_row: usize = p.get("start_row").and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut trips = Vec::new();
    let mut totals = Vec::new();
    for v in vehicles {
        let list = state.fleet.trips(v.index, begin, end.min(now));
        totals.push(json!({ "imei": v.imei.as_str(), "totalMileage": list.iter().map(|t| t.distance_m).sum::<f64>() / 1000.0 }));
        for t in list {
            let elapsed = t.end - t.start;
            // the vendor reports trip distance in kilometres although its documentation says metres
            trips.push(json!({
                "imei": v.imei.as_str(),
                "startTime": format_time(t.start),
                "endTime": format_time(t.end),
                "startLat": t.from.lat(),
                "startLng": t.from.lon(),
                "endLat": t.to.lat(),
                "endLng": t.to.lon(),
                "elapsed": elapsed,
                "distance": (t.distance_m / 10.0).round() / 100.0,
                "avgSpeed": ((t.distance_m / elapsed.max(1) as f64) * 36.0).round() / 10.0,
                "maxSpeed": t.max_speed_kmh.round(),
            }));
        }
    }
    let page: Vec<Value> = trips.into_iter().skip(start_row).take(size).collect();
    Ok(ok_with_data(Value::Array(page), Value::Array(totals)))
}

fn alarm_list(state: &SimState, p: &Params) -> Result<Value, ApiFault> {
    let raw = match (p.get("imeis"), p.get("imei")) {
        (Some(list), _) => list.as_str(),
        (None, Some(one)) => one.as_str(),
        (None, None) => return Err(ApiFault::param("Parameter error: imei or imeis is required")),
    };
    let vehicles = imei_list(state, raw)?;
    let now = state.config.clock.now();
    let (begin, end, latest_only) = match (p.contains_key("begin_time"), p.contains_key("end_time"))
    {
        (false, false) => (now - 30 * 86_400, now, true),
        _ => (time_param(p, "begin_time")?, time_param(p, "end_time")?, false),
    };
    check_range(state, begin, end, ALARM_MAX_RANGE_S)?;
    let (size, _) = page(p, "page_size", 50, 100)?;
    let page_no: usize = match p.get("page_no") {
        None => 1,
        Some(s) => s
            .parse()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| ApiFault::param("Parameter error: page_no must be 1 or more"))?,
    };
    let type_filter = p.get("alertTypeId");
    let mut rows: Vec<(i64, Value)> = Vec::new();
    for v in vehicles {
        for a in state.fleet.alarms(v.index, begin, end.min(now)) {
            if type_filter.is_some_and(|t| t != a.code) {
                continue;
            }
            let geoid = if a.code == "in" || a.code == "out" {
                json!(format!("depot{:08x}", v.index))
            } else {
                Value::Null
            };
            rows.push((
                a.time,
                json!({
                    "deviceName": v.name,
                    "imei": v.imei.as_str(),
                    "model": v.model,
                    "account": state.config.credentials.user,
                    "alertTypeId": a.code,
                    "alarmTypeName": a.name,
                    "alertTime": format_time(a.time),
                    "positioningTime": format_time(a.time),
                    "lat": a.position.lat(),
                    "lng": a.position.lon(),
                    "speed": format!("{}", a.speed_kmh.round() as i64),
                    "geoid": geoid,
                }),
            ));
        }
    }
    rows.sort_by_key(|(t, _)| *t);
    if latest_only {
        let keep = rows.len().saturating_sub(50);
        rows.drain(..keep);
    }
    rows.truncate(ALARM_MAX_ROWS);
    let page: Vec<Value> =
        rows.into_iter().map(|(_, v)| v).skip((page_no - 1) * size).take(size).collect();
    Ok(ok(Value::Array(page)))
}
