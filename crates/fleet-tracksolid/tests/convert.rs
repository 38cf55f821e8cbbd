//! Conversion of vendor records into domain records: what is mapped, and every way a record is
//! rejected.

use chrono::{DateTime, TimeDelta, TimeZone, Utc};
use fleet_core::{AlarmClass, CoordinateError, FixKind, Imei, ImeiError, PositionSource};
use fleet_tracksolid::convert::{
    alarm_event, device_profile, location_fix, track_fix, vendor_trip, RecordError,
};
use fleet_tracksolid::dto::{AlarmItem, DeviceItem, LocationItem, MileageTrip, TrackPoint};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 26, 12, 0, 0).single().expect("valid")
}

fn item<T: DeserializeOwned>(value: Value) -> T {
    serde_json::from_value(value).expect("decodes")
}

fn location(overrides: Value) -> LocationItem {
    let mut base = json!({
        "imei": "860121060369660", "deviceName": "VL802-69660", "posType": "GPS",
        "lat": 22.576562, "lng": 113.943084, "gpsTime": "2026-03-18 10:20:37",
        "speed": "35", "direction": "90", "accStatus": "1", "gpsNum": "15",
        "electQuantity": "80", "currentMileage": "1.5", "hbTime": "2026-03-26 11:25:38",
    });
    merge(&mut base, overrides);
    item(base)
}

fn merge(base: &mut Value, overrides: Value) {
    if let (Value::Object(b), Value::Object(o)) = (base, overrides) {
        b.extend(o);
    }
}

fn location_error(overrides: Value) -> RecordError {
    location_fix(&location(overrides), now()).expect_err("rejected")
}

#[test]
fn a_live_location_becomes_a_polled_fix_with_units_converted_and_extras_kept() {
    let fix = location_fix(&location(json!({})), now()).expect("valid");
    assert_eq!(fix.imei.as_str(), "860121060369660");
    assert_eq!(fix.gps_time, Utc.with_ymd_and_hms(2026, 3, 18, 10, 20, 37).single().expect("t"));
    assert_eq!((fix.location.lat(), fix.location.lon()), (22.576562, 113.943084));
    assert_eq!((fix.speed_kmh, fix.course_deg), (Some(35.0), Some(90.0)));
    assert_eq!((fix.ignition, fix.satellites), (Some(true), Some(15)));
    assert_eq!((fix.fix_kind, fix.source), (FixKind::Gps, PositionSource::Poll));
    assert_eq!(fix.battery_pct, Some(80.0));
    assert_eq!(fix.odometer_m, Some(1500.0));
    let extra = fix.extra.expect("extra");
    assert_eq!(extra["deviceName"], "VL802-69660");
    assert_eq!(extra["hbTime"], "2026-03-26 11:25:38");
}

#[test]
fn a_course_of_minus_one_is_unknown_and_lbs_positions_keep_their_kind() {
    let fix = location_fix(&location(json!({"direction": "-1", "posType": "LBS"})), now())
        .expect("valid");
    assert_eq!((fix.course_deg, fix.fix_kind), (None, FixKind::Lbs));
}

#[test]
fn the_zero_zero_fix_of_an_expired_device_is_rejected() {
    let err = location_error(json!({"lat": 0, "lng": 0, "expireFlag": "0"}));
    assert_eq!(
        err,
        RecordError::BadCoordinates { lat: 0.0, lon: 0.0, reason: CoordinateError::NullIsland }
    );
}

#[test]
fn each_way_a_location_can_be_wrong_has_its_own_error() {
    let cases = [
        (json!({"imei": null}), RecordError::MissingField { field: "imei" }),
        (
            json!({"imei": "86012106036966X"}),
            RecordError::BadImei(ImeiError::NotDigits("86012106036966X".into())),
        ),
        (
            json!({"lat": 95.0}),
            RecordError::BadCoordinates {
                lat: 95.0,
                lon: 113.943084,
                reason: CoordinateError::LatitudeOutOfRange(95.0),
            },
        ),
        (json!({"lng": ""}), RecordError::MissingField { field: "lng" }),
        (json!({"gpsTime": null}), RecordError::MissingField { field: "gpsTime" }),
        (
            json!({"gpsTime": "2026-03-18T10:20:37Z"}),
            RecordError::BadTime { field: "gpsTime", value: "2026-03-18T10:20:37Z".into() },
        ),
        (
            json!({"speed": "12 km/h"}),
            RecordError::BadNumber { field: "speed", value: "12 km/h".into() },
        ),
        (json!({"speed": "-3"}), RecordError::BadSpeed { field: "speed", kmh: -3.0 }),
        (json!({"speed": 401}), RecordError::BadSpeed { field: "speed", kmh: 401.0 }),
        (json!({"direction": "370"}), RecordError::BadCourse { deg: 370.0 }),
        (json!({"accStatus": "2"}), RecordError::BadFlag { field: "accStatus", value: "2".into() }),
        (json!({"gpsNum": "-1"}), RecordError::OutOfRange { field: "gpsNum", value: -1.0 }),
        (
            json!({"electQuantity": "140"}),
            RecordError::OutOfRange { field: "electQuantity", value: 140.0 },
        ),
        (
            json!({"posType": "SATELLITE"}),
            RecordError::UnknownFixKind { value: "SATELLITE".into() },
        ),
    ];
    for (overrides, expected) in cases {
        let shown = overrides.to_string();
        assert_eq!(location_error(overrides), expected, "{shown}");
    }
}

#[test]
fn a_time_more_than_ten_minutes_ahead_is_rejected_and_one_just_inside_is_kept() {
    let ahead =
        |minutes| (now() + TimeDelta::minutes(minutes)).format("%Y-%m-%d %H:%M:%S").to_string();
    let err = location_error(json!({"gpsTime": ahead(11)}));
    assert_eq!(
        err,
        RecordError::FutureTime {
            field: "gpsTime",
            time: now() + TimeDelta::minutes(11),
            now: now()
        }
    );
    assert!(location_fix(&location(json!({"gpsTime": ahead(10)})), now()).is_ok());
}

#[test]
fn a_track_point_becomes_a_track_fix_of_the_imei_it_was_asked_for() {
    let imei = Imei::parse("860121060369660").expect("imei");
    let point: TrackPoint = item(json!({
        "lat": 22.576607, "lng": 113.943084, "gpsTime": "2026-03-18 09:40:46", "direction": 0,
        "gpsSpeed": 0.0, "posType": 3, "satellite": 0, "ignition": "ON", "accStatus": "OFF",
        "gpsMode": 1, "confidence": null,
    }));
    let fix = track_fix(&point, &imei, now()).expect("valid");
    assert_eq!(
        (fix.imei, fix.source, fix.fix_kind),
        (imei.clone(), PositionSource::Track, FixKind::Wifi)
    );
    // accStatus wins over ignition when both are there
    assert_eq!(fix.ignition, Some(false));
    assert_eq!(fix.extra.expect("extra")["gpsMode"], 1);
    let ignition_only: TrackPoint = item(json!({
        "lat": 1.0, "lng": 1.0, "gpsTime": "2026-03-18 09:40:46", "ignition": "ON", "posType": 2,
    }));
    let fix = track_fix(&ignition_only, &imei, now()).expect("valid");
    assert_eq!((fix.ignition, fix.fix_kind), (Some(true), FixKind::Lbs));
    let unknown: TrackPoint = item(json!({
        "lat": 1.0, "lng": 1.0, "gpsTime": "2026-03-18 09:40:46", "posType": 7,
    }));
    assert_eq!(
        track_fix(&unknown, &imei, now()),
        Err(RecordError::UnknownFixKind { value: "7".into() })
    );
}

#[test]
fn an_alarm_maps_its_code_to_a_class_and_accepts_either_name_spelling() {
    let alarm: AlarmItem = item(json!({
        "deviceName": "ABC-34352", "imei": "343503422910345", "alertTypeId": "1",
        "alertTypeName": "SOS alert", "alertTime": "2019-03-14 14:02:03",
        "lat": 22.577144898887813, "lng": 113.91674845964586, "speed": "10", "geoid": "g1",
    }));
    let event = alarm_event(&alarm, now()).expect("valid");
    assert_eq!((event.alarm_type.as_str(), event.alarm_name.as_str()), ("1", "SOS alert"));
    assert_eq!((event.class, event.source), (AlarmClass::Safety, PositionSource::Poll));
    assert_eq!(event.speed_kmh, Some(10.0));
    assert!(event.location.is_some());
    assert_eq!(event.extra.expect("extra")["geoid"], "g1");
}

#[test]
fn an_alarm_without_a_position_is_kept_without_one_but_impossible_coordinates_are_not() {
    let base = json!({"imei": "343503422910345", "alertTypeId": "overSpeed", "alertTime": "2019-03-14 14:02:03"});
    let mut zero = base.clone();
    merge(&mut zero, json!({"lat": 0, "lng": 0}));
    let event = alarm_event(&item(zero), now()).expect("valid");
    assert_eq!(
        (event.location, event.class, event.alarm_name.as_str()),
        (None, AlarmClass::Driving, "overSpeed")
    );
    let mut bad = base.clone();
    merge(&mut bad, json!({"lat": 10, "lng": 200}));
    assert!(matches!(
        alarm_event(&item(bad), now()),
        Err(RecordError::BadCoordinates { reason: CoordinateError::LongitudeOutOfRange(_), .. })
    ));
    let mut untyped = base;
    merge(&mut untyped, json!({"alertTypeId": ""}));
    assert_eq!(
        alarm_event(&item(untyped), now()),
        Err(RecordError::MissingField { field: "alertTypeId" })
    );
}

#[test]
fn a_listed_device_becomes_a_profile_named_by_its_imei_when_unnamed() {
    let device: DeviceItem = item(json!({
        "imei": "868120145233604", "mcType": "GT300L", "vehicleIcon": "bus",
        "vehicleNumber": "KDA 123A", "driverName": "driver", "driverPhone": "0700",
        "deviceGroup": "Nairobi", "sim": 415451, "expiration": "2037-04-01 23:59:59",
    }));
    let profile = device_profile(&device).expect("valid");
    assert_eq!(profile.name, "868120145233604");
    assert_eq!(profile.plate.as_deref(), Some("KDA 123A"));
    assert_eq!(profile.model.as_deref(), Some("GT300L"));
    assert_eq!(profile.sim.as_deref(), Some("415451"));
    assert_eq!(profile.group.as_deref(), Some("Nairobi"));
    assert_eq!(profile.vehicle_type.as_deref(), Some("bus"));
    assert!(profile.enabled);
    assert_eq!(profile.extra.expect("extra")["expiration"], "2037-04-01 23:59:59");
    let disabled: DeviceItem = item(json!({"imei": "868120145233604", "enabledFlag": 0}));
    assert!(!device_profile(&disabled).expect("valid").enabled);
    let garbled: DeviceItem = item(json!({"imei": "868120145233604", "enabledFlag": "yes"}));
    assert_eq!(
        device_profile(&garbled),
        Err(RecordError::BadFlag { field: "enabledFlag", value: "yes".into() })
    );
    let short: DeviceItem = item(json!({"imei": "1234"}));
    assert_eq!(
        device_profile(&short),
        Err(RecordError::BadImei(ImeiError::BadLength("1234".into(), 4)))
    );
}

fn trip(overrides: Value) -> MileageTrip {
    let mut base = json!({
        "imei": "868120145233604", "startTime": "2026-03-20 08:00:00",
        "endTime": "2026-03-20 08:30:00", "startLat": -1.2864, "startLng": 36.8172,
        "endLat": "-1.30", "endLng": "36.85", "runTimeSecond": 1800, "distance": 12.5,
        "avgSpeed": 25, "maxSpeed": "62",
    });
    merge(&mut base, overrides);
    item(base)
}

#[test]
fn a_vendor_trip_converts_its_kilometres_to_metres() {
    let t = vendor_trip(&trip(json!({})), now()).expect("valid");
    assert_eq!(t.distance_m, Some(12_500.0));
    assert_eq!(
        (t.duration_s, t.avg_speed_kmh, t.max_speed_kmh),
        (Some(1800), Some(25.0), Some(62.0))
    );
    assert_eq!(t.end.map(|p| (p.lat(), p.lon())), Some((-1.30, 36.85)));
    let sample =
        vendor_trip(&trip(json!({"runTimeSecond": null, "elapsed": 2130})), now()).expect("valid");
    assert_eq!(sample.duration_s, Some(2130));
}

#[test]
fn each_way_a_trip_can_be_wrong_has_its_own_error() {
    let start = Utc.with_ymd_and_hms(2026, 3, 20, 8, 0, 0).single().expect("t");
    let cases = [
        (
            json!({"endTime": "2026-03-20 07:00:00"}),
            RecordError::EndsBeforeStart { start, end: start - TimeDelta::hours(1) },
        ),
        (json!({"distance": -1}), RecordError::OutOfRange { field: "distance", value: -1.0 }),
        (
            json!({"runTimeSecond": -5}),
            RecordError::OutOfRange { field: "runTimeSecond", value: -5.0 },
        ),
        (
            json!({"elapsed": "x", "runTimeSecond": null}),
            RecordError::BadNumber { field: "elapsed", value: "x".into() },
        ),
        (json!({"maxSpeed": 900}), RecordError::BadSpeed { field: "maxSpeed", kmh: 900.0 }),
        (
            json!({"startTime": "yesterday"}),
            RecordError::BadTime { field: "startTime", value: "yesterday".into() },
        ),
    ];
    for (overrides, expected) in cases {
        let shown = overrides.to_string();
        assert_eq!(vendor_trip(&trip(overrides), now()), Err(expected), "{shown}");
    }
}
