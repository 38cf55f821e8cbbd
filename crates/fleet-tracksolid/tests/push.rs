//! Parsing both push interfaces: the documented samples, the tolerated variants, and malformed
//! input, each rejected with its own error and never with a panic.

use chrono::{DateTime, TimeZone, Utc};
use fleet_core::{AlarmClass, FixKind, PositionSource};
use fleet_tracksolid::convert::{
    data_push_alarm_event, gps_push_fix, open_push_alarm_event, RecordError,
};
use fleet_tracksolid::push::{
    parse_data_list, parse_open_push, DataPushKind, OpenPush, PushError, PushItem, SessionEvent,
    DATA_PUSH_REPLY, MAX_DATA_LIST_ITEMS, OPEN_PUSH_REPLY,
};
use fleet_tracksolid::wire::Lenient;
use proptest::prelude::*;
use serde_json::json;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 26, 12, 0, 0).single().expect("valid")
}

const ALARM_SAMPLE: &str = r#"{"imei":"868120145233604","deviceName":"868120145233604","alarmType":"2","alarmName":"Power off alarm","lat":40.65615416521587,"lng":109.89894039833524,"alarmTime":"2017-05-08 12:00:00"}"#;

#[test]
fn the_open_push_alarm_sample_parses_and_becomes_a_pushed_power_alarm() {
    let OpenPush::Alarm(alarm) =
        parse_open_push("jimi.push.device.alarm", ALARM_SAMPLE).expect("parses")
    else {
        panic!("not an alarm");
    };
    assert_eq!(alarm.imei, "868120145233604");
    assert_eq!(alarm.alarm_type.as_deref(), Some("2"));
    assert_eq!(alarm.lat, Lenient::Value(40.65615416521587));
    let event = open_push_alarm_event(&alarm, now()).expect("valid");
    assert_eq!((event.class, event.source), (AlarmClass::Power, PositionSource::Push));
    assert_eq!(event.alarm_name, "Power off alarm");
    assert_eq!(event.alarm_time, Utc.with_ymd_and_hms(2017, 5, 8, 12, 0, 0).single().expect("t"));
    assert_eq!(event.extra.expect("extra")["deviceName"], "868120145233604");
}

#[test]
fn open_push_coordinates_are_read_from_strings_as_the_field_table_says() {
    let data = json!({"imei": "868120145233604", "alarmType": "1", "lat": "40.5", "lng": "109.8",
        "alarmTime": "2017-05-08 12:00:00"});
    let OpenPush::Alarm(alarm) =
        parse_open_push("jimi.push.device.alarm", &data.to_string()).expect("parses")
    else {
        panic!("not an alarm");
    };
    let event = open_push_alarm_event(&alarm, now()).expect("valid");
    assert_eq!(event.location.map(|p| (p.lat(), p.lon())), Some((40.5, 109.8)));
    assert_eq!(event.alarm_name, "1");
}

#[test]
fn the_open_push_raw_sample_parses() {
    let data = r#"{"imei":"868120145233604","deviceName":"868120145233604","raw_data":"0A0C0F01182E0101"}"#;
    let OpenPush::Raw { imei, device_name, raw_data } =
        parse_open_push("jimi.open.instruction.raw.receive", data).expect("parses")
    else {
        panic!("not raw");
    };
    assert_eq!(imei.as_str(), "868120145233604");
    assert_eq!(
        (device_name.as_deref(), raw_data.as_str()),
        (Some("868120145233604"), "0A0C0F01182E0101")
    );
}

#[test]
fn malformed_open_pushes_are_rejected_each_with_its_own_error() {
    let alarm = "jimi.push.device.alarm";
    assert_eq!(
        parse_open_push("jimi.open.push.gps", ALARM_SAMPLE),
        Err(PushError::UnknownMsgType { msg_type: "jimi.open.push.gps".into() })
    );
    assert!(matches!(parse_open_push(alarm, "imei=1"), Err(PushError::NotJson { .. })));
    assert_eq!(parse_open_push(alarm, "[]"), Err(PushError::NotAnObject { found: "an array" }));
    assert_eq!(
        parse_open_push(alarm, r#"{"imei":"","alarmType":"1"}"#),
        Err(PushError::MissingField { field: "imei" })
    );
    assert_eq!(
        parse_open_push("jimi.open.instruction.raw.receive", r#"{"imei":"868120145233604"}"#),
        Err(PushError::MissingField { field: "raw_data" })
    );
    assert!(matches!(
        parse_open_push("jimi.open.instruction.raw.receive", r#"{"imei":"abc","raw_data":"00"}"#),
        Err(PushError::Malformed { field: "imei", .. })
    ));
}

#[test]
fn an_open_push_alarm_with_a_broken_time_parses_but_does_not_convert() {
    let data = r#"{"imei":"868120145233604","alarmType":"2","alarmTime":"08/05/2017"}"#;
    let OpenPush::Alarm(alarm) = parse_open_push("jimi.push.device.alarm", data).expect("parses")
    else {
        panic!("not an alarm");
    };
    assert_eq!(
        open_push_alarm_event(&alarm, now()),
        Err(RecordError::BadTime { field: "alarmTime", value: "08/05/2017".into() })
    );
}

#[test]
fn the_reply_bodies_are_the_ones_each_interface_expects() {
    assert_eq!(OPEN_PUSH_REPLY, r#"{"code":0,"message":"success"}"#);
    assert_eq!(DATA_PUSH_REPLY, r#"{"code":0,"msg":"success"}"#);
}

#[test]
fn every_data_push_path_maps_to_its_kind_and_back() {
    for kind in DataPushKind::ALL {
        assert_eq!(DataPushKind::from_path(kind.path()), Some(*kind));
    }
    assert_eq!(DataPushKind::from_path("/pushtem"), Some(DataPushKind::Temperature));
    assert_eq!(DataPushKind::from_path("/hooks/jimi/pushgps/"), Some(DataPushKind::Gps));
    assert_eq!(DataPushKind::from_path("/pushrfid"), None);
    assert_eq!(DataPushKind::from_path(""), None);
}

#[test]
fn a_gps_data_push_parses_and_becomes_a_pushed_fix() {
    let list = json!([{
        "deviceImei": "868120145233604", "gpsTime": "2026-03-26 11:59:00",
        "gateTime": "2026-03-26 11:59:02", "satelliteNum": 9, "lng": 36.8172, "lat": -1.2864,
        "gpsMode": 0, "gpsSpeed": 48, "direction": 270, "acc": 1, "postType": 1,
        "altitude": 1661, "distance": 123456,
    }]);
    let items = parse_data_list(DataPushKind::Gps, &list.to_string()).expect("parses");
    let [PushItem::Gps(gps)] = items.as_slice() else { panic!("{items:?}") };
    let fix = gps_push_fix(gps, now()).expect("valid");
    assert_eq!((fix.source, fix.fix_kind), (PositionSource::Push, FixKind::Gps));
    assert_eq!(
        (fix.speed_kmh, fix.course_deg, fix.ignition),
        (Some(48.0), Some(270.0), Some(true))
    );
    assert_eq!(
        (fix.satellites, fix.altitude_m, fix.odometer_m),
        (Some(9), Some(1661.0), Some(123456.0))
    );
    assert_eq!(fix.extra.expect("extra")["gateTime"], "2026-03-26 11:59:02");
}

#[test]
fn a_gps_item_filed_under_imei_instead_of_device_imei_is_accepted() {
    let list = r#"[{"imei":"868120145233604","gpsTime":"2026-03-26 11:59:00","lat":"1.5","lng":"2.5","postType":"2"}]"#;
    let items = parse_data_list(DataPushKind::Gps, list).expect("parses");
    let [PushItem::Gps(gps)] = items.as_slice() else { panic!("{items:?}") };
    assert_eq!(gps.imei, "868120145233604");
    assert_eq!(gps_push_fix(gps, now()).expect("valid").fix_kind, FixKind::Lbs);
}

#[test]
fn heartbeat_event_and_lbs_items_parse_with_their_fields() {
    let hb = r#"[{"deviceImei":"868120145233604","gateTime":"2026-03-26 11:00:00","powerLevel":"5","gsmSign":80,"acc":"0","oilEle":1,"fortify":0}]"#;
    let items = parse_data_list(DataPushKind::Heartbeat, hb).expect("hb");
    let [PushItem::Heartbeat(hb)] = items.as_slice() else { panic!("{items:?}") };
    assert_eq!(
        (hb.gsm_sign.value(), hb.acc.value(), hb.power_level.value()),
        (Some(80), Some(false), Some(5.0))
    );
    assert_eq!(hb.extra["oilEle"], 1);

    let ev = r#"[{"deviceImei":"868120145233604","type":"LOGIN","gateTime":"2026-03-26 11:00:00","timezone":"GMT+08:00"},
                 {"deviceImei":"868120145233605","type":"LOGOUT","gateTime":"2026-03-26 11:05:00"},
                 {"deviceImei":"868120145233606","type":"REBOOT"}]"#;
    let items = parse_data_list(DataPushKind::Event, ev).expect("events");
    let events: Vec<_> = items
        .iter()
        .map(|i| match i {
            PushItem::Event(e) => e.event.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        events,
        vec![
            Some(SessionEvent::Login),
            Some(SessionEvent::Logout),
            Some(SessionEvent::Other("REBOOT".into()))
        ]
    );

    let lbs = r#"[{"deviceImei":"868120145233604","gateTime":"2026-03-26 11:00:00","lbsJson":"{\"mcc\":724,\"mnc\":10,\"cellList\":\"1,2,3\"}","postType":"LBS"}]"#;
    let items = parse_data_list(DataPushKind::Lbs, lbs).expect("lbs");
    let [PushItem::Lbs(lbs)] = items.as_slice() else { panic!("{items:?}") };
    assert_eq!(lbs.post_type.as_deref(), Some("LBS"));
    assert!(lbs.lbs_json.as_deref().is_some_and(|j| j.contains("cellList")));
}

#[test]
fn a_nested_alarm_data_push_parses_and_becomes_a_pushed_alarm() {
    let list = json!([{
        "type": "DEVICE", "msgClass": 0, "gateTime": "2026-03-26 11:00:02",
        "msg": {"deviceImei": "868120145233604", "alertType": "6", "alarmTime": "2026-03-26 11:00:00",
                "lat": -1.2864, "lng": 36.8172, "gpsSpeed": 120, "alertValue": "120", "file": null},
    }]);
    let items = parse_data_list(DataPushKind::Alarm, &list.to_string()).expect("parses");
    let [PushItem::Alarm(alarm)] = items.as_slice() else { panic!("{items:?}") };
    assert_eq!((alarm.target_type.as_deref(), alarm.msg_class.value()), (Some("DEVICE"), Some(0)));
    let event = data_push_alarm_event(alarm, now()).expect("valid");
    assert_eq!(
        (event.class, event.source, event.speed_kmh),
        (AlarmClass::Driving, PositionSource::Push, Some(120.0))
    );
    let extra = event.extra.expect("extra");
    assert_eq!(extra["msg"]["alertValue"], "120");
    assert_eq!(extra["type"], "DEVICE");
    assert_eq!(extra["gateTime"], "2026-03-26 11:00:02");
}

#[test]
fn a_flat_open_api_style_alarm_data_push_parses_too() {
    let list = format!("[{ALARM_SAMPLE}]");
    let items = parse_data_list(DataPushKind::Alarm, &list).expect("parses");
    let [PushItem::Alarm(alarm)] = items.as_slice() else { panic!("{items:?}") };
    assert_eq!((alarm.imei.as_str(), alarm.alarm_type.as_deref()), ("868120145233604", Some("2")));
    assert_eq!(alarm.alarm_name.as_deref(), Some("Power off alarm"));
    let event = data_push_alarm_event(alarm, now()).expect("valid");
    assert_eq!(event.class, AlarmClass::Power);
    assert_eq!(event.extra.expect("extra")["deviceName"], "868120145233604");
}

#[test]
fn undocumented_kinds_are_kept_whole_with_their_imei_and_gateway_time() {
    let list = r#"[{"deviceImei":"868120145233604","gateTime":"2026-03-26 11:00:00","oil":"12.5","x":{"y":1}},{"sensor":1}]"#;
    let items = parse_data_list(DataPushKind::Oil, list).expect("parses");
    let [PushItem::Opaque(first), PushItem::Opaque(second)] = items.as_slice() else {
        panic!("{items:?}")
    };
    assert_eq!(first.kind, DataPushKind::Oil);
    assert_eq!(first.imei.as_deref(), Some("868120145233604"));
    assert!(first.gate_time.value().is_some());
    assert_eq!(first.item["x"]["y"], 1);
    assert_eq!((second.imei.clone(), second.gate_time.is_missing()), (None, true));
}

#[test]
fn malformed_data_lists_are_rejected_each_with_its_own_error() {
    let gps = DataPushKind::Gps;
    assert!(matches!(parse_data_list(gps, "garbage"), Err(PushError::NotJson { .. })));
    assert!(matches!(parse_data_list(gps, ""), Err(PushError::NotJson { .. })));
    assert_eq!(
        parse_data_list(gps, r#"{"deviceImei":"868120145233604"}"#),
        Err(PushError::NotAnArray { found: "an object" })
    );
    assert_eq!(parse_data_list(gps, "42"), Err(PushError::NotAnArray { found: "a number" }));
    assert_eq!(
        parse_data_list(gps, r#"[{"deviceImei":"868120145233604"}, "text"]"#),
        Err(PushError::InvalidItem {
            index: 1,
            reason: Box::new(PushError::NotAnObject { found: "a string" })
        })
    );
    assert_eq!(
        parse_data_list(gps, r#"[{"gpsTime":"2026-03-26 11:59:00","lat":1,"lng":2}]"#),
        Err(PushError::InvalidItem {
            index: 0,
            reason: Box::new(PushError::MissingField { field: "deviceImei" })
        })
    );
    assert_eq!(
        parse_data_list(DataPushKind::Alarm, r#"[{"type":"DEVICE","msg":{"alertType":"1"}}]"#),
        Err(PushError::InvalidItem {
            index: 0,
            reason: Box::new(PushError::MissingField { field: "deviceImei" })
        })
    );
    assert!(matches!(
        parse_data_list(DataPushKind::Alarm, r#"[{"type":"DEVICE","msg":[1,2]}]"#),
        Err(PushError::InvalidItem { index: 0, reason }) if matches!(*reason, PushError::Malformed { field: "msg", .. })
    ));
    let huge = format!("[{}]", vec!["{}"; MAX_DATA_LIST_ITEMS + 1].join(","));
    assert_eq!(
        parse_data_list(gps, &huge),
        Err(PushError::TooManyItems { count: MAX_DATA_LIST_ITEMS + 1, max: MAX_DATA_LIST_ITEMS })
    );
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    // the list is an array; its one item nests past the JSON parser's depth limit
    assert!(matches!(
        parse_data_list(gps, &deep),
        Err(PushError::InvalidItem { index: 0, reason }) if matches!(*reason, PushError::NotJson { .. })
    ));
    let deep_object = format!("{}{}", "{\"a\":".repeat(100_000), "}".repeat(100_000));
    assert!(matches!(parse_data_list(gps, &deep_object), Err(PushError::NotJson { .. })));
}

#[test]
fn wrongly_typed_gps_values_parse_but_the_fix_is_rejected_with_the_reason() {
    let list =
        r#"[{"deviceImei":"868120145233604","gpsTime":"2026-03-26 11:59:00","lat":true,"lng":2}]"#;
    let items = parse_data_list(DataPushKind::Gps, list).expect("parses");
    let [PushItem::Gps(gps)] = items.as_slice() else { panic!("{items:?}") };
    assert_eq!(
        gps_push_fix(gps, now()),
        Err(RecordError::BadNumber { field: "lat", value: "true".into() })
    );
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics_either_parser(text in ".{0,400}", msg_type in ".{0,40}") {
        for kind in DataPushKind::ALL {
            let _ = parse_data_list(*kind, &text);
        }
        let _ = parse_open_push(&msg_type, &text);
        let _ = parse_open_push("jimi.push.device.alarm", &text);
        let _ = parse_open_push("jimi.open.instruction.raw.receive", &text);
    }

    #[test]
    fn arbitrary_json_items_never_panic_parsing_or_converting(
        imei in prop_oneof![Just(json!("868120145233604")), Just(json!(null)), any::<i64>().prop_map(|n| json!(n)), ".{0,20}".prop_map(|s| json!(s))],
        time in prop_oneof![Just(json!("2026-03-26 11:59:00")), ".{0,25}".prop_map(|s| json!(s)), any::<f64>().prop_map(|n| json!(n))],
        number in prop_oneof![any::<f64>().prop_map(|n| json!(n)), ".{0,12}".prop_map(|s| json!(s)), any::<bool>().prop_map(|b| json!(b))],
        nested in any::<bool>(),
    ) {
        let flat = json!({"deviceImei": imei, "imei": imei, "gpsTime": time, "alarmTime": time,
            "lat": number, "lng": number, "gpsSpeed": number, "direction": number,
            "acc": number, "postType": number, "alertType": number, "alarmType": number});
        let item = if nested { json!({"type": "DEVICE", "msg": flat}) } else { flat.clone() };
        let list = json!([item]).to_string();
        for kind in DataPushKind::ALL {
            if let Ok(items) = parse_data_list(*kind, &list) {
                for item in &items {
                    match item {
                        PushItem::Gps(g) => { let _ = gps_push_fix(g, now()); }
                        PushItem::Alarm(a) => { let _ = data_push_alarm_event(a, now()); }
                        _ => {}
                    }
                }
            }
        }
        if let Ok(OpenPush::Alarm(a)) = parse_open_push("jimi.push.device.alarm", &flat.to_string()) {
            let _ = open_push_alarm_event(&a, now());
        }
    }
}
