//! Pushed items of every kind as domain records: the documented samples and the shapes seen for
//! the undocumented kinds, every way an item is rejected, and lists where one bad item must not
//! cost the good ones.

use chrono::{DateTime, TimeZone, Utc};
use fleet_core::{ImeiError, SensorKind, SessionEventKind};
use fleet_tracksolid::convert::{
    cell_fix, device_event, heartbeat, open_push_record, push_item_record, pushed_trip,
    sensor_reading, PushRecord, RecordError,
};
use fleet_tracksolid::push::{
    parse_data_items, parse_data_list, parse_open_push, DataPushKind, OpaquePush, PushError,
    PushItem, MAX_DATA_LIST_ITEMS,
};
use fleet_tracksolid::wire::Lenient;
use proptest::prelude::*;
use serde_json::{json, Value};

const IMEI: &str = "868120145233604";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 26, 12, 0, 0).single().expect("valid")
}

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 26, h, m, s).single().expect("valid")
}

/// The one item of a single-item list of `kind`.
fn parse_one(kind: DataPushKind, item: Value) -> PushItem {
    let mut items = parse_data_list(kind, &json!([item]).to_string()).expect("parses");
    assert_eq!(items.len(), 1);
    items.remove(0)
}

/// `base` with the fields of `overrides` put over it (a `null` override stays as `null`).
fn with(mut base: Value, overrides: Value) -> Value {
    if let (Value::Object(b), Value::Object(o)) = (&mut base, overrides) {
        b.extend(o);
    }
    base
}

fn heartbeat_item(overrides: Value) -> Value {
    with(
        json!({"deviceImei": IMEI, "gateTime": "2026-03-26 11:00:00", "powerLevel": 5,
            "gsmSign": 80, "acc": 1, "oilEle": 1, "gpsPos": 1, "remoteLock": 0,
            "powerStatus": 1, "fortify": 0}),
        overrides,
    )
}

fn event_item(overrides: Value) -> Value {
    with(
        json!({"deviceImei": IMEI, "type": "LOGIN", "gateTime": "2026-03-26 11:00:00",
            "timezone": "GMT+08:00"}),
        overrides,
    )
}

fn lbs_item(overrides: Value) -> Value {
    with(
        json!({"deviceImei": IMEI, "gateTime": "2026-03-26 11:00:00",
            "lbsJson": r#"{"mcc":724,"mnc":10,"cellList":"LAC1,CI1,RSSI1;LAC2,CI2,RSSI2"}"#,
            "postType": "LBS"}),
        overrides,
    )
}

fn trip_item(overrides: Value) -> Value {
    with(
        json!({"deviceImei": IMEI, "startTime": "2026-03-26 10:00:00",
            "endTime": "2026-03-26 10:30:00", "distance": 12.34, "startLat": -1.2864,
            "startLng": 36.8172, "endLat": -1.3, "endLng": 36.9}),
        overrides,
    )
}

/// The simulator's shape of each kind whose fields the vendor does not document.
fn sensor_item(kind: DataPushKind) -> Value {
    let t = "2026-03-26 11:00:00";
    match kind {
        DataPushKind::Oil => {
            json!({"deviceImei": IMEI, "gateTime": t, "oilValue": 41.5, "unit": "L"})
        }
        DataPushKind::Temperature => {
            json!({"deviceImei": IMEI, "gateTime": t, "temperature": 4.3, "sensorId": 1})
        }
        DataPushKind::Obd => json!({"deviceImei": IMEI, "gateTime": t, "rpm": 1500,
            "coolantTemp": 88, "fuelLevel": 55, "obdSpeed": 0}),
        DataPushKind::FaultInfo => json!({"deviceImei": IMEI, "gateTime": t,
            "faultCode": "P0171", "faultDesc": "System too lean (bank 1)"}),
        other => panic!("{other:?} is not a sensor kind"),
    }
}

/// A valid item of every kind, as documented or as the simulator sends it.
fn valid_item(kind: DataPushKind) -> Value {
    match kind {
        DataPushKind::Gps => json!({"deviceImei": IMEI, "gpsTime": "2026-03-26 11:59:00",
            "gateTime": "2026-03-26 11:59:02", "lat": -1.2864, "lng": 36.8172, "gpsSpeed": 48,
            "direction": 270, "acc": 1, "postType": 1, "satelliteNum": 9}),
        DataPushKind::Alarm => json!({"type": "DEVICE", "msgClass": 0,
            "gateTime": "2026-03-26 11:00:02", "msg": {"deviceImei": IMEI, "alertType": "6",
            "alarmTime": "2026-03-26 11:00:00", "lat": -1.2864, "lng": 36.8172, "gpsSpeed": 120}}),
        DataPushKind::Heartbeat => heartbeat_item(json!({})),
        DataPushKind::Event => event_item(json!({})),
        DataPushKind::Lbs => lbs_item(json!({})),
        DataPushKind::TripReport => trip_item(json!({})),
        sensor => sensor_item(sensor),
    }
}

fn heartbeat_of(item: Value) -> Result<fleet_core::Heartbeat, RecordError> {
    let PushItem::Heartbeat(hb) = parse_one(DataPushKind::Heartbeat, item) else {
        panic!("not a heartbeat")
    };
    heartbeat(&hb, now())
}

fn event_of(item: Value) -> Result<fleet_core::DeviceEvent, RecordError> {
    let PushItem::Event(event) = parse_one(DataPushKind::Event, item) else {
        panic!("not an event")
    };
    device_event(&event, now())
}

fn cell_of(item: Value) -> Result<fleet_core::CellFix, RecordError> {
    let PushItem::Lbs(lbs) = parse_one(DataPushKind::Lbs, item) else { panic!("not lbs") };
    cell_fix(&lbs, now())
}

fn opaque(kind: DataPushKind, item: Value) -> OpaquePush {
    let PushItem::Opaque(push) = parse_one(kind, item) else { panic!("not opaque") };
    push
}

fn trip_of(item: Value) -> Result<fleet_core::VendorTrip, RecordError> {
    pushed_trip(&opaque(DataPushKind::TripReport, item), now())
}

#[test]
fn the_documented_heartbeat_becomes_a_heartbeat_with_the_unmapped_fields_in_extra() {
    let hb = heartbeat_of(heartbeat_item(json!({}))).expect("valid");
    assert_eq!((hb.imei.as_str(), hb.gate_time), (IMEI, at(11, 0, 0)));
    assert_eq!((hb.power_level, hb.gsm_signal, hb.ignition), (Some(5), Some(80), Some(true)));
    let extra = hb.extra.expect("extra");
    assert_eq!(
        extra,
        json!({"oilEle": 1, "gpsPos": 1, "remoteLock": 0, "powerStatus": 1,
        "fortify": 0})
    );
}

#[test]
fn a_bare_heartbeat_with_numbers_as_text_and_no_acc_wiring_converts() {
    let item = json!({"deviceImei": IMEI, "gateTime": "2026-03-26 11:00:00", "powerLevel": "6",
        "gsmSign": "75", "acc": null});
    let hb = heartbeat_of(item).expect("valid");
    assert_eq!((hb.power_level, hb.gsm_signal, hb.ignition), (Some(6), Some(75), None));
    assert_eq!(hb.extra, None);
}

#[test]
fn heartbeats_with_broken_values_are_rejected_each_with_its_reason() {
    assert!(matches!(
        heartbeat_of(heartbeat_item(json!({"deviceImei": "12345"}))),
        Err(RecordError::BadImei(ImeiError::BadLength(_, 5)))
    ));
    assert_eq!(
        heartbeat_of(heartbeat_item(json!({"gateTime": null}))),
        Err(RecordError::MissingField { field: "gateTime" })
    );
    assert_eq!(
        heartbeat_of(heartbeat_item(json!({"gateTime": "26/03/2026 11:00"}))),
        Err(RecordError::BadTime { field: "gateTime", value: "26/03/2026 11:00".into() })
    );
    assert_eq!(
        heartbeat_of(heartbeat_item(json!({"gateTime": "2026-03-26 12:30:00"}))),
        Err(RecordError::FutureTime { field: "gateTime", time: at(12, 30, 0), now: now() })
    );
    assert_eq!(
        heartbeat_of(heartbeat_item(json!({"gsmSign": "strong"}))),
        Err(RecordError::BadNumber { field: "gsmSign", value: "strong".into() })
    );
    assert_eq!(
        heartbeat_of(heartbeat_item(json!({"gsmSign": 150}))),
        Err(RecordError::OutOfRange { field: "gsmSign", value: 150.0 })
    );
    assert_eq!(
        heartbeat_of(heartbeat_item(json!({"powerLevel": "full"}))),
        Err(RecordError::BadNumber { field: "powerLevel", value: "full".into() })
    );
    assert_eq!(
        heartbeat_of(heartbeat_item(json!({"powerLevel": 2.5}))),
        Err(RecordError::OutOfRange { field: "powerLevel", value: 2.5 })
    );
    assert_eq!(
        heartbeat_of(heartbeat_item(json!({"acc": "maybe"}))),
        Err(RecordError::BadFlag { field: "acc", value: "maybe".into() })
    );
}

#[test]
fn login_logout_and_other_gateway_events_become_device_events_timed_by_the_gateway() {
    let login = event_of(event_item(json!({}))).expect("valid");
    assert_eq!((login.kind, login.time), (SessionEventKind::Login, at(11, 0, 0)));
    assert_eq!((login.timezone.as_deref(), login.extra), (Some("GMT+08:00"), None));

    let logout = event_of(event_item(json!({"type": "logout", "timezone": "GMT+03:00"})));
    assert_eq!(logout.expect("valid").kind, SessionEventKind::Logout);

    let other = event_of(event_item(json!({"type": "REBOOT"}))).expect("valid");
    assert_eq!(other.kind, SessionEventKind::Other);
    assert_eq!(other.extra, Some(json!({"type": "REBOOT"})));
}

#[test]
fn gateway_events_with_broken_values_are_rejected_each_with_its_reason() {
    assert!(matches!(
        event_of(event_item(json!({"deviceImei": "86812014523360X"}))),
        Err(RecordError::BadImei(ImeiError::NotDigits(_)))
    ));
    assert_eq!(
        event_of(event_item(json!({"type": ""}))),
        Err(RecordError::MissingField { field: "type" })
    );
    assert_eq!(
        event_of(event_item(json!({"gateTime": null}))),
        Err(RecordError::MissingField { field: "gateTime" })
    );
    assert_eq!(
        event_of(event_item(json!({"gateTime": 1774522800}))),
        Err(RecordError::BadTime { field: "gateTime", value: "1774522800".into() })
    );
    assert_eq!(
        event_of(event_item(json!({"gateTime": "2027-01-01 00:00:00"}))),
        Err(RecordError::FutureTime {
            field: "gateTime",
            time: Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).single().expect("valid"),
            now: now()
        })
    );
}

#[test]
fn the_documented_lbs_item_becomes_a_cell_fix_with_its_towers_as_json() {
    let fix = cell_of(lbs_item(json!({}))).expect("valid");
    assert_eq!((fix.imei.as_str(), fix.gate_time), (IMEI, at(11, 0, 0)));
    assert_eq!(fix.fix_kind.as_deref(), Some("LBS"));
    assert_eq!(
        fix.cells,
        Some(json!({"mcc": 724, "mnc": 10, "cellList": "LAC1,CI1,RSSI1;LAC2,CI2,RSSI2"}))
    );
    assert_eq!(fix.extra, None);
}

#[test]
fn the_simulators_cell_fix_and_wifi_or_non_json_tower_lists_are_kept() {
    let sim =
        cell_of(lbs_item(json!({"lbsJson": r#"{"mcc":639,"mnc":2,"cellList":"101,20001,-71"}"#})))
            .expect("valid");
    assert_eq!(sim.cells.expect("cells")["mcc"], 639);

    let wifi = cell_of(lbs_item(json!({"postType": "WIFI", "lbsJson": "aa:bb:cc:dd:ee:ff,-60"})))
        .expect("valid");
    assert_eq!(wifi.fix_kind.as_deref(), Some("WIFI"));
    assert_eq!(wifi.cells, Some(json!("aa:bb:cc:dd:ee:ff,-60")));

    let bare =
        cell_of(json!({"deviceImei": IMEI, "gateTime": "2026-03-26 11:00:00"})).expect("valid");
    assert_eq!((bare.cells, bare.fix_kind), (None, None));
}

#[test]
fn cell_fixes_with_broken_values_are_rejected_each_with_its_reason() {
    assert!(matches!(
        cell_of(lbs_item(json!({"deviceImei": 12}))),
        Err(RecordError::BadImei(ImeiError::BadLength(_, 2)))
    ));
    assert_eq!(
        cell_of(lbs_item(json!({"gateTime": ""}))),
        Err(RecordError::MissingField { field: "gateTime" })
    );
    assert_eq!(
        cell_of(lbs_item(json!({"gateTime": "yesterday"}))),
        Err(RecordError::BadTime { field: "gateTime", value: "yesterday".into() })
    );
    assert_eq!(
        cell_of(lbs_item(json!({"gateTime": "2026-03-26 12:11:00"}))),
        Err(RecordError::FutureTime { field: "gateTime", time: at(12, 11, 0), now: now() })
    );
}

#[test]
fn the_simulators_oil_temperature_obd_and_fault_items_become_sensor_readings_kept_whole() {
    let cases = [
        (DataPushKind::Oil, SensorKind::Fuel),
        (DataPushKind::Temperature, SensorKind::Temperature),
        (DataPushKind::Obd, SensorKind::Obd),
        (DataPushKind::FaultInfo, SensorKind::Fault),
    ];
    for (kind, sensor) in cases {
        let item = sensor_item(kind);
        let reading = sensor_reading(&opaque(kind, item.clone()), now()).expect("valid");
        assert_eq!(
            (reading.imei.as_str(), reading.time, reading.kind),
            (IMEI, at(11, 0, 0), sensor)
        );
        assert_eq!(reading.item, item, "{kind:?}");
    }
}

#[test]
fn a_sensor_item_filed_under_imei_with_a_numeric_value_converts() {
    let item =
        json!({"imei": 868120145233604_u64, "gateTime": "2026-03-26 11:00:00", "oil": "12.5"});
    let reading = sensor_reading(&opaque(DataPushKind::Oil, item), now()).expect("valid");
    assert_eq!(reading.imei.as_str(), IMEI);
}

#[test]
fn sensor_items_without_a_readable_gateway_time_or_imei_are_rejected_not_retimed() {
    let oil = DataPushKind::Oil;
    let base = sensor_item(oil);
    let reject = |overrides: Value| {
        sensor_reading(&opaque(oil, with(base.clone(), overrides)), now()).expect_err("rejected")
    };
    assert_eq!(reject(json!({"gateTime": null})), RecordError::MissingField { field: "gateTime" });
    assert_eq!(
        reject(json!({"gateTime": "2026-03-26T11:00:00Z"})),
        RecordError::BadTime { field: "gateTime", value: "2026-03-26T11:00:00Z".into() }
    );
    assert_eq!(
        reject(json!({"gateTime": "2026-03-26 13:00:00"})),
        RecordError::FutureTime { field: "gateTime", time: at(13, 0, 0), now: now() }
    );
    assert_eq!(
        reject(json!({"deviceImei": null})),
        RecordError::MissingField { field: "deviceImei" }
    );
    assert!(matches!(reject(json!({"deviceImei": "imei"})), RecordError::BadImei(_)));
}

#[test]
fn an_item_of_another_kind_is_not_a_sensor_reading_nor_a_trip() {
    let trip = opaque(DataPushKind::TripReport, trip_item(json!({})));
    assert_eq!(
        sensor_reading(&trip, now()),
        Err(RecordError::WrongKind { kind: DataPushKind::TripReport, expected: "sensor reading" })
    );
    let oil = opaque(DataPushKind::Oil, sensor_item(DataPushKind::Oil));
    assert_eq!(
        pushed_trip(&oil, now()),
        Err(RecordError::WrongKind { kind: DataPushKind::Oil, expected: "trip report" })
    );
}

#[test]
fn the_simulators_trip_report_becomes_a_vendor_trip_in_metres_with_its_duration() {
    let item = trip_item(json!({}));
    let trip = trip_of(item.clone()).expect("valid");
    assert_eq!(
        (trip.imei.as_str(), trip.start_time, trip.end_time),
        (IMEI, at(10, 0, 0), at(10, 30, 0))
    );
    assert_eq!((trip.distance_m, trip.duration_s), (Some(12_340.0), Some(1800)));
    assert_eq!(trip.start.map(|p| (p.lat(), p.lon())), Some((-1.2864, 36.8172)));
    assert_eq!(trip.end.map(|p| (p.lat(), p.lon())), Some((-1.3, 36.9)));
    assert_eq!((trip.avg_speed_kmh, trip.max_speed_kmh), (None, None));
    assert_eq!(trip.extra, Some(item));
}

#[test]
fn trip_report_coordinates_that_are_absent_or_zero_are_unknown() {
    let trip = trip_of(trip_item(json!({"startLat": 0, "startLng": 0, "endLat": null,
        "endLng": null, "distance": "0"})))
    .expect("valid");
    assert_eq!((trip.start, trip.end, trip.distance_m), (None, None, Some(0.0)));
    let bare = trip_of(json!({"deviceImei": IMEI, "startTime": "2026-03-26 10:00:00",
        "endTime": "2026-03-26 10:00:00"}))
    .expect("valid");
    assert_eq!(
        (bare.start, bare.end, bare.distance_m, bare.duration_s),
        (None, None, None, Some(0))
    );
}

#[test]
fn trip_reports_with_broken_values_are_rejected_each_with_its_reason() {
    let reject = |overrides: Value| trip_of(trip_item(overrides)).expect_err("rejected");
    assert!(matches!(
        reject(json!({"deviceImei": ""})),
        RecordError::MissingField { field: "deviceImei" }
    ));
    assert!(matches!(
        reject(json!({"deviceImei": "1234567890123456789"})),
        RecordError::BadImei(_)
    ));
    assert_eq!(
        reject(json!({"startTime": null})),
        RecordError::MissingField { field: "startTime" }
    );
    assert_eq!(reject(json!({"endTime": null})), RecordError::MissingField { field: "endTime" });
    assert_eq!(
        reject(json!({"endTime": "10:30"})),
        RecordError::BadTime { field: "endTime", value: "10:30".into() }
    );
    assert_eq!(
        reject(json!({"endTime": "2026-03-26 12:20:00"})),
        RecordError::FutureTime { field: "endTime", time: at(12, 20, 0), now: now() }
    );
    assert_eq!(
        reject(json!({"endTime": "2026-03-26 09:00:00"})),
        RecordError::EndsBeforeStart { start: at(10, 0, 0), end: at(9, 0, 0) }
    );
    assert_eq!(
        reject(json!({"distance": "12,5 km"})),
        RecordError::BadNumber { field: "distance", value: "12,5 km".into() }
    );
    assert_eq!(
        reject(json!({"distance": -1})),
        RecordError::OutOfRange { field: "distance", value: -1.0 }
    );
    assert!(matches!(
        reject(json!({"endLat": 95.0})),
        RecordError::BadCoordinates { lat, lon, .. } if lat == 95.0 && lon == 36.9
    ));
    assert_eq!(
        reject(json!({"startLng": "east"})),
        RecordError::BadNumber { field: "startLng", value: "east".into() }
    );
}

#[test]
fn a_list_with_one_garbage_item_keeps_the_good_ones_and_reports_the_bad_one() {
    let list = json!([
        heartbeat_item(json!({})),
        {"imei": "868120145233605", "gateTime": 42, "gsmSign": {}},
        "garbage",
        {"powerLevel": 5},
        heartbeat_item(json!({"deviceImei": "868120145233606"})),
    ]);
    let outcomes = parse_data_items(DataPushKind::Heartbeat, &list.to_string()).expect("a list");
    assert_eq!(outcomes.iter().map(|o| o.index).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4]);
    let imeis: Vec<_> = outcomes.iter().map(|o| o.imei.as_deref()).collect();
    assert_eq!(
        imeis,
        vec![Some(IMEI), Some("868120145233605"), None, None, Some("868120145233606")]
    );
    let good: Vec<_> = outcomes.iter().filter_map(|o| o.parsed.as_ref().ok()).collect();
    assert_eq!(good.len(), 3, "a wrongly typed value parses; conversion judges it");
    assert!(heartbeat(
        match good[1] {
            PushItem::Heartbeat(hb) => hb,
            other => panic!("{other:?}"),
        },
        now()
    )
    .is_err());

    assert_eq!(outcomes[2].raw, r#""garbage""#);
    assert_eq!(outcomes[2].parsed, Err(PushError::NotAnObject { found: "a string" }));
    assert_eq!(outcomes[3].raw, r#"{"powerLevel":5}"#);
    assert_eq!(outcomes[3].parsed, Err(PushError::MissingField { field: "deviceImei" }));
    let first: Value = serde_json::from_str(&outcomes[0].raw).expect("raw is JSON");
    assert_eq!(first, heartbeat_item(json!({})));
    // the text as received, spacing and number forms included, not a re-serialisation
    let spaced =
        parse_data_items(DataPushKind::Heartbeat, r#"[ {"powerLevel" : 5.50} ]"#).expect("a list");
    assert_eq!(spaced[0].raw, r#"{"powerLevel" : 5.50}"#);

    assert_eq!(
        parse_data_list(DataPushKind::Heartbeat, &list.to_string()),
        Err(PushError::InvalidItem {
            index: 2,
            reason: Box::new(PushError::NotAnObject { found: "a string" })
        })
    );
}

#[test]
fn a_rejected_nested_alarm_still_names_the_device_in_its_msg() {
    let list = json!([
        {"type": "DEVICE", "msg": {"deviceImei": IMEI}},
        {"type": "DEVICE", "msg": format!(r#"{{"deviceImei":"{IMEI}","alertType":"1"}}"#)},
        {"type": "DEVICE", "msg": [IMEI]},
    ]);
    let outcomes = parse_data_items(DataPushKind::Alarm, &list.to_string()).expect("a list");
    assert_eq!(
        outcomes.iter().map(|o| o.imei.as_deref()).collect::<Vec<_>>(),
        vec![Some(IMEI), Some(IMEI), None]
    );
    assert!(outcomes[0].parsed.is_ok() && outcomes[1].parsed.is_ok());
    assert!(matches!(outcomes[2].parsed, Err(PushError::Malformed { field: "msg", .. })));
}

#[test]
fn lists_that_cannot_be_read_as_a_whole_are_still_errors() {
    let hb = DataPushKind::Heartbeat;
    assert!(matches!(parse_data_items(hb, "not json"), Err(PushError::NotJson { .. })));
    assert_eq!(parse_data_items(hb, "{}"), Err(PushError::NotAnArray { found: "an object" }));
    let huge = format!("[{}]", vec!["1"; MAX_DATA_LIST_ITEMS + 1].join(","));
    assert_eq!(
        parse_data_items(hb, &huge),
        Err(PushError::TooManyItems { count: MAX_DATA_LIST_ITEMS + 1, max: MAX_DATA_LIST_ITEMS })
    );
    assert_eq!(parse_data_items(hb, "[]"), Ok(vec![]));
}

#[test]
fn every_data_push_kind_dispatches_to_its_record() {
    for kind in DataPushKind::ALL {
        let item = parse_one(*kind, valid_item(*kind));
        let record = push_item_record(&item, now()).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
        let expected = match (kind, &record) {
            (DataPushKind::Gps, PushRecord::Position(_))
            | (DataPushKind::Alarm, PushRecord::Alarm(_))
            | (DataPushKind::Heartbeat, PushRecord::Heartbeat(_))
            | (DataPushKind::Event, PushRecord::Event(_))
            | (DataPushKind::Lbs, PushRecord::Cell(_))
            | (DataPushKind::TripReport, PushRecord::Trip(_)) => true,
            (_, PushRecord::Sensor(reading)) => {
                sensor_item(*kind) == reading.item && reading.imei.as_str() == IMEI
            }
            _ => false,
        };
        assert!(expected, "{kind:?} became {record:?}");
    }
}

#[test]
fn the_dispatcher_passes_on_the_conversions_rejection() {
    let item = parse_one(DataPushKind::Obd, json!({"deviceImei": IMEI, "rpm": 900}));
    assert_eq!(
        push_item_record(&item, now()),
        Err(RecordError::MissingField { field: "gateTime" })
    );
    let item =
        parse_one(DataPushKind::Gps, with(valid_item(DataPushKind::Gps), json!({"lat": "north"})));
    assert_eq!(
        push_item_record(&item, now()),
        Err(RecordError::BadNumber { field: "lat", value: "north".into() })
    );
}

#[test]
fn an_open_push_alarm_is_a_record_and_raw_device_data_is_none() {
    let alarm = parse_open_push(
        "jimi.push.device.alarm",
        r#"{"imei":"868120145233604","alarmType":"2","alarmName":"Power off alarm","lat":"40.6","lng":"109.9","alarmTime":"2026-03-26 11:00:00"}"#,
    )
    .expect("parses");
    let Ok(Some(PushRecord::Alarm(event))) = open_push_record(&alarm, now()) else {
        panic!("not an alarm record")
    };
    assert_eq!((event.alarm_type.as_str(), event.alarm_time), ("2", at(11, 0, 0)));

    let raw = parse_open_push(
        "jimi.open.instruction.raw.receive",
        r#"{"imei":"868120145233604","raw_data":"0A0C0F01182E0101"}"#,
    )
    .expect("parses");
    assert_eq!(open_push_record(&raw, now()), Ok(None));

    let late = parse_open_push(
        "jimi.push.device.alarm",
        r#"{"imei":"868120145233604","alarmType":"2","alarmTime":"2026-03-27 11:00:00"}"#,
    )
    .expect("parses");
    assert!(matches!(open_push_record(&late, now()), Err(RecordError::FutureTime { .. })));
}

#[test]
fn an_opaque_item_with_a_missing_gateway_time_is_lenient_until_converted() {
    let push = opaque(DataPushKind::Temperature, json!({"deviceImei": IMEI, "temperature": 4}));
    assert_eq!(push.gate_time, Lenient::Missing);
    assert_eq!(sensor_reading(&push, now()), Err(RecordError::MissingField { field: "gateTime" }));
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,20}".prop_map(Value::from),
        Just(json!(IMEI)),
        Just(json!("2026-03-26 11:00:00")),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    let keys = prop_oneof![
        Just("deviceImei".to_owned()),
        Just("imei".to_owned()),
        Just("gateTime".to_owned()),
        Just("gpsTime".to_owned()),
        Just("alarmTime".to_owned()),
        Just("startTime".to_owned()),
        Just("endTime".to_owned()),
        Just("lat".to_owned()),
        Just("lng".to_owned()),
        Just("distance".to_owned()),
        Just("type".to_owned()),
        Just("msg".to_owned()),
        Just("lbsJson".to_owned()),
        Just("gsmSign".to_owned()),
        Just("powerLevel".to_owned()),
        "[a-zA-Z]{1,8}",
    ];
    json_leaf().prop_recursive(3, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(keys.clone(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_json_arrays_never_panic_item_parsing_or_dispatch(
        items in prop::collection::vec(json_value(), 0..6),
    ) {
        let list = Value::Array(items).to_string();
        for kind in DataPushKind::ALL {
            let outcomes = parse_data_items(*kind, &list).expect("an array of few items");
            for outcome in outcomes {
                if let Ok(item) = &outcome.parsed {
                    let _ = push_item_record(item, now());
                }
            }
        }
    }
}
