//! Every JSON sample of the vendor's documentation decodes, and so do the quirky variants real
//! responses show: numbers as strings and back, `""` for null, `ON`/`OFF` for `1`/`0`, either
//! spelling of the alarm name, payloads in `result` or `data`, string codes.

use chrono::{DateTime, Utc};
use fleet_tracksolid::dto::{
    AlarmItem, DeviceItem, LocationItem, MileageTrip, TokenGrant, TrackPoint,
};
use fleet_tracksolid::wire::{Envelope, Lenient};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};

fn envelope(body: &str) -> Envelope {
    serde_json::from_str(body).expect("envelope decodes")
}

fn rows<T: DeserializeOwned>(body: &str) -> Vec<T> {
    let payload = envelope(body).into_payload().expect("payload");
    serde_json::from_value(payload).expect("rows decode")
}

fn utc(s: &str) -> Lenient<DateTime<Utc>> {
    Lenient::Value(fleet_tracksolid::parse_time(s).expect("time"))
}

const TOKEN_SAMPLE: &str = r#"{
  "code": 0,
  "message": "success",
  "result": {
    "appKey": "8FB345B8693CCD003CC2DAB61EC8791D",
    "account": "jimitest",
    "accessToken": "7da3330ec28e3996b6ef4a7e3390ba71",
    "expiresIn": 60,
    "refreshToken": "7da3330ec28e3996b6ef4a7e3390ba71",
    "time": "2017-06-15 10:00:00"
  }
}"#;

#[test]
fn the_token_sample_decodes_with_its_numeric_lifetime() {
    let e = envelope(TOKEN_SAMPLE);
    assert_eq!(e.code, Lenient::Value(0));
    let grant: TokenGrant =
        serde_json::from_value(e.into_payload().expect("result")).expect("grant");
    assert_eq!(grant.access_token.as_deref(), Some("7da3330ec28e3996b6ef4a7e3390ba71"));
    assert_eq!(grant.refresh_token.as_deref(), Some("7da3330ec28e3996b6ef4a7e3390ba71"));
    assert_eq!(grant.expires_in, Some(60));
    assert_eq!(grant.extra["account"], "jimitest");
    assert_eq!(grant.extra["time"], "2017-06-15 10:00:00");
}

#[test]
fn a_token_whose_lifetime_is_a_string_decodes_and_its_debug_output_hides_the_tokens() {
    let grant: TokenGrant = serde_json::from_value(
        json!({"accessToken": "abc123", "expiresIn": "7200", "refreshToken": "def456"}),
    )
    .expect("grant");
    assert_eq!(grant.expires_in, Some(7200));
    let debug = format!("{grant:?}");
    assert!(!debug.contains("abc123") && !debug.contains("def456"), "{debug}");
}

#[test]
fn the_token_error_samples_decode_with_their_placeholder_codes() {
    let e = envelope(r#"{ "code":"xxx", "message": "Incorrect user name or password" }"#);
    assert_eq!(e.code, Lenient::Invalid("xxx".to_owned()));
    assert_eq!(e.message_text(), "Incorrect user name or password");
    let e = envelope(r#"{ "code": "xxx", "message": "Illegal request，token is invalid" }"#);
    assert_eq!(e.message_text(), "Illegal request，token is invalid");
    assert!(e.payload().is_none());
}

const DEVICE_LIST_SAMPLE: &str = r#"{
  "code": 0,
  "message": "success",
  "result": [
    {
      "imei": "868120145233604",
      "deviceName": "868120145233604",
      "mcType": "GT300L",
      "mcTypeUseScope": "personal",
      "sim": "415451",
      "expiration": "2037-04-01 23:59:59",
      "activationTime": "2017-04-01 11:02:20",
      "reMark": "test",
      "vehicleName": null,
      "vehicleIcon": "bus",
      "vehicleNumber": "粤 B3604",
      "vehicleModels": null,
      "carFrame": "2235",
      "driverName": "driver",
      "driverPhone": "13825036579",
      "enabledFlag": 1,
      "engineNumber": "8565674",
      "deviceGroupId": "b54ab3c430864e31a64e54de44c79a1d",
      "deviceGroup": "default group"
    }
  ]
}"#;

#[test]
fn the_device_list_sample_decodes_and_keeps_unmapped_fields() {
    let devices: Vec<DeviceItem> = rows(DEVICE_LIST_SAMPLE);
    let d = &devices[0];
    assert_eq!(d.imei.as_deref(), Some("868120145233604"));
    assert_eq!(d.mc_type.as_deref(), Some("GT300L"));
    assert_eq!(d.vehicle_number.as_deref(), Some("粤 B3604"));
    assert_eq!(d.vehicle_icon.as_deref(), Some("bus"));
    assert_eq!(d.device_group.as_deref(), Some("default group"));
    assert_eq!(d.enabled_flag, Lenient::Value(true));
    assert_eq!(d.extra["mcTypeUseScope"], "personal");
    assert_eq!(d.extra["expiration"], "2037-04-01 23:59:59");
    assert_eq!(d.extra["vehicleName"], Value::Null);
    let mut kept: Vec<&str> = d.extra.keys().map(String::as_str).collect();
    kept.sort_unstable();
    let expected = [
        "activationTime",
        "carFrame",
        "deviceGroupId",
        "engineNumber",
        "expiration",
        "mcTypeUseScope",
        "reMark",
        "vehicleModels",
        "vehicleName",
    ];
    assert_eq!(kept, expected);
}

const LOCATION_LIST_SAMPLE_2026: &str = r#"{
  "code": 0,
  "message": "success",
  "result": [
    {
      "imei": "860121060369660",
      "deviceName": "VL802-69660",
      "mcType": "VL802",
      "icon": "other",
      "status": "1",
      "posType": "GPS",
      "lat": 22.576562,
      "lng": 113.943084,
      "hbTime": "2026-03-26 11:25:38",
      "accStatus": "1",
      "gpsSignal": "4",
      "powerValue": null,
      "batteryPowerVal": "0.06",
      "speed": "0",
      "gpsNum": "15",
      "gpsTime": "2026-03-18 10:20:37",
      "direction": "0",
      "activationFlag": "1",
      "expireFlag": "1",
      "electQuantity": "",
      "locDesc": null,
      "distance": "-1",
      "temperature": null,
      "trackerOil": "0.00L",
      "trackerOils": null,
      "currentMileage": "0.6481649691599485",
      "account": "FAETEST",
      "customerName": "FAETEST",
      "state": null,
      "stateTime": null,
      "iccid": "898608401024C0669758",
      "mac": "",
      "chargeStatus": null,
      "shutdown": null,
      "confidence": null
    }
  ],
  "data": null
}"#;

#[test]
fn the_2026_location_list_sample_decodes_with_string_numbers_and_blank_battery() {
    let items: Vec<LocationItem> = rows(LOCATION_LIST_SAMPLE_2026);
    let l = &items[0];
    assert_eq!(l.imei.as_deref(), Some("860121060369660"));
    assert_eq!((l.lat.value(), l.lng.value()), (Some(22.576562), Some(113.943084)));
    assert_eq!(l.gps_time, utc("2026-03-18 10:20:37"));
    assert_eq!(l.speed, Lenient::Value(0.0));
    assert_eq!(l.direction, Lenient::Value(0.0));
    assert_eq!(l.acc_status, Lenient::Value(true));
    assert_eq!(l.gps_num, Lenient::Value(15));
    assert_eq!(l.pos_type.as_deref(), Some("GPS"));
    assert_eq!(l.elect_quantity, Lenient::Missing);
    assert_eq!(l.current_mileage, Lenient::Value(0.6481649691599485));
    assert_eq!(l.extra["trackerOil"], "0.00L");
    assert_eq!(l.extra["hbTime"], "2026-03-26 11:25:38");
    assert_eq!(l.extra["batteryPowerVal"], "0.06");
}

const LOCATION_GET_SAMPLE_2017: &str = r#"{
  "code": 0,
  "message": "success",
  "result": [
    {
      "imei": "868120145233604",
      "deviceName": "868120145233604",
      "icon": "bus",
      "status": "0",
      "posType": "GPS",
      "lat": 22.577282,
      "lng": 113.916604,
      "hbTime": "2017-04-26 09:14:50",
      "accStatus": "0",
      "speed": "0",
      "gpsNum": "11",
      "gpsTime": "2017-04-26 09:17:46",
      "activationFlag": "1",
      "expireFlag": "1",
      "electQuantity": "60",
      "locDesc": null,
      "powerValue": null,
      "temperature": "86.5",
      "trackerOil": null,
      "currentMileage": "86.5"
    }
  ]
}"#;

#[test]
fn the_2017_location_get_sample_decodes() {
    let items: Vec<LocationItem> = rows(LOCATION_GET_SAMPLE_2017);
    let l = &items[0];
    assert_eq!(l.gps_time, utc("2017-04-26 09:17:46"));
    assert_eq!(l.acc_status, Lenient::Value(false));
    assert_eq!(l.gps_num, Lenient::Value(11));
    assert_eq!(l.elect_quantity, Lenient::Value(60.0));
    assert_eq!(l.current_mileage, Lenient::Value(86.5));
    assert_eq!(l.extra["temperature"], "86.5");
}

const TRACK_LIST_SAMPLE: &str = r#"{
  "code": 0,
  "message": "success",
  "result": [
    {
      "lat": 22.576607,
      "lng": 113.943084,
      "gpsTime": "2026-03-18 09:40:46",
      "direction": 0,
      "gpsSpeed": 0.0,
      "posType": 1,
      "satellite": 0,
      "ignition": "ON",
      "accStatus": "ON",
      "gpsMode": 0,
      "confidence": null
    }
  ],
  "data": {
    "mileage": 0
  }
}"#;

#[test]
fn the_track_list_sample_decodes_from_result_though_data_is_filled_too() {
    let points: Vec<TrackPoint> = rows(TRACK_LIST_SAMPLE);
    let p = &points[0];
    assert_eq!(p.gps_time, utc("2026-03-18 09:40:46"));
    assert_eq!(p.pos_type.as_deref(), Some("1"));
    assert_eq!(
        (p.acc_status.clone(), p.ignition.clone()),
        (Lenient::Value(true), Lenient::Value(true))
    );
    assert_eq!(p.satellite, Lenient::Value(0));
    assert_eq!(p.gps_speed, Lenient::Value(0.0));
    assert_eq!(p.extra["gpsMode"], 0);
    assert_eq!(p.extra["confidence"], Value::Null);
}

const TRACK_MILEAGE_SAMPLE: &str = r#"{
  "code": 0,
  "message": "success",
  "result": [
    {
      "imei": "3505831983422342",
      "startTime": "2017-04-26 00:00:58",
      "endTime": "2017-04-26 00:03:58",
      "startLat": 22.577144898887813,
      "startLng": 113.91674845964586,
      "endLat": 22.677144898887813,
      "endLng": 113.92674845964586,
      "elapsed": 2130,
      "distance": 25000,
      "avgSpeed": 90
    }
  ],
  "data": [
    {
      "imei": "3505831983422342",
      "totalMileage": 60000
    }
  ]
}"#;

#[test]
fn the_track_mileage_sample_decodes_with_elapsed_in_place_of_run_time_second() {
    let trips: Vec<MileageTrip> = rows(TRACK_MILEAGE_SAMPLE);
    let t = &trips[0];
    assert_eq!(t.start_time, utc("2017-04-26 00:00:58"));
    assert_eq!(t.end_time, utc("2017-04-26 00:03:58"));
    assert_eq!(
        (t.elapsed.clone(), t.run_time_second.clone()),
        (Lenient::Value(2130), Lenient::Missing)
    );
    assert_eq!(t.distance, Lenient::Value(25000.0));
    assert_eq!(t.avg_speed, Lenient::Value(90.0));
    assert!(t.extra.is_empty());
}

const ALARM_LIST_SAMPLE: &str = r#"{
  "code": 0,
  "message": "success",
  "result": [
    {
      "deviceName": "ABC-34352",
      "imei": "343503422910345",
      "model": "GT06N",
      "account": "test1234",
      "alertTypeId": "1002",
      "alarmTypeName": "ACC On",
      "alertTime": "2019-03-14 14:02:03",
      "positioningTime": "2019-03-14 14:02:03",
      "lat": 22.577144898887813,
      "lng": 113.91674845964586,
      "speed": "10",
      "geoid": "se8yg081p0qh5vnniqrakr1nr0tdh6a0"
    }
  ]
}"#;

#[test]
fn the_alarm_list_sample_decodes() {
    let alarms: Vec<AlarmItem> = rows(ALARM_LIST_SAMPLE);
    let a = &alarms[0];
    assert_eq!(a.alert_type_id.as_deref(), Some("1002"));
    assert_eq!(a.alarm_type_name.as_deref(), Some("ACC On"));
    assert_eq!(a.alert_time, utc("2019-03-14 14:02:03"));
    assert_eq!(a.speed, Lenient::Value(10.0));
    assert_eq!(a.extra["geoid"], "se8yg081p0qh5vnniqrakr1nr0tdh6a0");
}

#[test]
fn the_alarm_name_is_read_under_either_spelling_even_both_at_once() {
    let a: AlarmItem = serde_json::from_value(json!({"alertTypeName": "SOS alert"})).expect("a");
    assert_eq!((a.alarm_type_name, a.alert_type_name.as_deref()), (None, Some("SOS alert")));
    let both: AlarmItem =
        serde_json::from_value(json!({"alarmTypeName": "A", "alertTypeName": "B"})).expect("b");
    assert_eq!(both.alarm_type_name.as_deref(), Some("A"));
    assert_eq!(both.alert_type_name.as_deref(), Some("B"));
}

#[test]
fn numbers_and_strings_swap_places_without_breaking_decoding() {
    let l: LocationItem = serde_json::from_value(json!({
        "imei": 868120145233604u64, "lat": "22.5", "lng": "113.9", "speed": 42,
        "direction": 100.12, "gpsNum": 9, "accStatus": 1, "currentMileage": 12,
    }))
    .expect("location");
    assert_eq!(l.imei.as_deref(), Some("868120145233604"));
    assert_eq!((l.lat.value(), l.lng.value()), (Some(22.5), Some(113.9)));
    assert_eq!((l.speed.value(), l.direction.value()), (Some(42.0), Some(100.12)));
    assert_eq!((l.gps_num.value(), l.acc_status.value()), (Some(9), Some(true)));
    let p: TrackPoint = serde_json::from_value(json!({
        "lat": 1.5, "lng": 2.5, "gpsSpeed": "36.5", "direction": "-1", "posType": "2",
        "satellite": "7", "accStatus": "0", "ignition": 0,
    }))
    .expect("track point");
    assert_eq!((p.gps_speed.value(), p.direction.value()), (Some(36.5), Some(-1.0)));
    assert_eq!((p.satellite.value(), p.acc_status.value()), (Some(7), Some(false)));
    assert_eq!(p.ignition, Lenient::Value(false));
}

#[test]
fn blank_strings_and_nulls_both_read_as_missing() {
    let blank: LocationItem = serde_json::from_value(
        json!({"imei": "", "speed": "", "electQuantity": " ", "posType": "", "gpsTime": ""}),
    )
    .expect("blank");
    let null: LocationItem = serde_json::from_value(
        json!({"imei": null, "speed": null, "electQuantity": null, "posType": null, "gpsTime": null}),
    )
    .expect("null");
    assert_eq!(blank, null);
    assert_eq!(blank, LocationItem::default());
}

#[test]
fn unreadable_values_are_kept_for_conversion_to_reject_not_fatal_to_decoding() {
    let l: LocationItem = serde_json::from_value(
        json!({"speed": "fast", "gpsTime": "yesterday", "accStatus": "maybe", "lat": {}}),
    )
    .expect("decodes anyway");
    assert_eq!(l.speed, Lenient::Invalid("fast".to_owned()));
    assert_eq!(l.gps_time, Lenient::Invalid("yesterday".to_owned()));
    assert_eq!(l.acc_status, Lenient::Invalid("maybe".to_owned()));
    assert_eq!(l.lat, Lenient::Invalid("{}".to_owned()));
}

#[test]
fn a_payload_in_data_with_a_null_result_and_a_string_code_is_found() {
    let e = envelope(
        r#"{"code": "0", "message": "ok", "result": null, "data": [{"imei": "868120145233604"}]}"#,
    );
    assert_eq!(e.code, Lenient::Value(0));
    let devices: Vec<DeviceItem> =
        serde_json::from_value(e.into_payload().expect("data")).expect("rows");
    assert_eq!(devices[0].imei.as_deref(), Some("868120145233604"));
    assert_eq!(devices[0].enabled_flag, Lenient::Missing);
}

#[test]
fn on_off_and_one_zero_flags_decode_alike_in_every_record() {
    for (on, off) in
        [(json!("ON"), json!("OFF")), (json!("1"), json!("0")), (json!(true), json!(false))]
    {
        let a: TrackPoint = serde_json::from_value(json!({"accStatus": on})).expect("on");
        let b: TrackPoint = serde_json::from_value(json!({"accStatus": off})).expect("off");
        assert_eq!((a.acc_status, b.acc_status), (Lenient::Value(true), Lenient::Value(false)));
    }
    let d: DeviceItem = serde_json::from_value(json!({"enabledFlag": "0"})).expect("device");
    assert_eq!(d.enabled_flag, Lenient::Value(false));
}
