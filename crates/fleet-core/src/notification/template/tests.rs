use chrono::{DateTime, Utc};

use super::*;

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-05T20:14:00Z").expect("time").with_timezone(&Utc)
}

fn input(kind: EventKind, facts: &Facts) -> MessageInput<'_> {
    MessageInput {
        event_id: 981,
        kind,
        severity: Severity::Critical,
        rule_name: Some("Night watch".into()),
        facts,
        device_id: 12,
        vehicle_name: "Lorry 7".into(),
        plate: Some("KBX 123A".into()),
        driver: Some("Jane Wanjiku".into()),
        event_time: at(),
        local_time: "Sat 5 Dec 23:14 EAT".into(),
        timezone: "Africa/Nairobi".into(),
        link: event_link("https://fleet.example.com/", 12, at()),
    }
}

fn sos() -> Facts {
    Facts {
        lat: Some(-1.286_389),
        lon: Some(36.817_223),
        speed_kmh: Some(0.0),
        alarm_type: Some("1".into()),
        alarm_name: Some("SOS".into()),
        ..Facts::default()
    }
}

#[test]
fn the_link_points_at_the_moment_in_fleetnow() {
    assert_eq!(
        event_link("https://fleet.example.com/", 12, at()),
        "https://fleet.example.com/now/?device=12&at=2026-12-05T20:14:00Z"
    );
}

#[test]
fn local_times_read_like_people_write_them() {
    let local = chrono::NaiveDate::from_ymd_opt(2026, 12, 5)
        .and_then(|d| d.and_hms_opt(23, 14, 59))
        .expect("time");
    assert_eq!(local_time_text(local, "EAT"), "Sat 5 Dec 23:14 EAT");
    assert_eq!(local_time_text(local, ""), "Sat 5 Dec 23:14");
}

#[test]
fn headlines_say_what_happened_per_kind() {
    let f = |facts: Facts| facts;
    let cases: Vec<(EventKind, Facts, &str)> = vec![
        (EventKind::AlarmSafety, sos(), "SOS alarm"),
        (
            EventKind::AlarmPower,
            f(Facts { alarm_name: Some("Power cut alarm".into()), ..Facts::default() }),
            "Power cut alarm",
        ),
        (EventKind::AlarmSecurity, Facts::default(), "Security alarm"),
        (
            EventKind::AlarmDriving,
            f(Facts {
                alarm_name: Some("Overspeed".into()),
                speed_kmh: Some(97.4),
                ..Facts::default()
            }),
            "Overspeed alarm (97 km/h)",
        ),
        (
            EventKind::GeofenceEnter,
            f(Facts { geofence_name: Some("Depot".into()), ..Facts::default() }),
            "Entered Depot",
        ),
        (
            EventKind::GeofenceExit,
            f(Facts { geofence_id: Some(4), ..Facts::default() }),
            "Left geofence #4",
        ),
        (
            EventKind::Overspeed,
            f(Facts {
                max_speed_kmh: Some(112.2),
                limit_kmh: Some(80.0),
                duration_s: Some(95),
                ..Facts::default()
            }),
            "Overspeed 112 km/h (limit 80) for 1 min",
        ),
        (
            EventKind::Idling,
            f(Facts { duration_s: Some(1500), ..Facts::default() }),
            "Idling for 25 min",
        ),
        (
            EventKind::Offline,
            f(Facts { threshold_s: Some(2700), ..Facts::default() }),
            "Offline for 45 min",
        ),
        (
            EventKind::Online,
            f(Facts { duration_s: Some(7500), ..Facts::default() }),
            "Back online after 2 h 5 min",
        ),
        (
            EventKind::NotMoved,
            f(Facts { threshold_s: Some(9 * 3600), ..Facts::default() }),
            "Not moved by 09:00",
        ),
        (
            EventKind::PowerLost,
            f(Facts { external_v: Some(12.43), ..Facts::default() }),
            "External power lost (was 12.4 V)",
        ),
        (EventKind::AfterHours, Facts::default(), "Moving after hours"),
    ];
    for (kind, facts, want) in cases {
        assert_eq!(headline(kind, &facts), want, "{kind:?}");
    }
}

#[test]
fn an_email_names_vehicle_what_where_when_and_links() {
    let facts = sos();
    let r = render(&input(EventKind::AlarmSafety, &facts));
    assert_eq!(r.subject, "CRITICAL: Lorry 7 (KBX 123A): SOS alarm");
    for part in [
        "Vehicle: Lorry 7 (KBX 123A)",
        "Driver: Jane Wanjiku",
        "What: SOS alarm",
        "Where: -1.28639, 36.81722",
        "When: Sat 5 Dec 23:14 EAT (2026-12-05T20:14:00Z)",
        "Rule: Night watch (critical)",
        "https://fleet.example.com/now/?device=12&at=2026-12-05T20:14:00Z",
    ] {
        assert!(r.text.contains(part), "{part:?} not in\n{}", r.text);
    }
    assert!(r.html.contains("<td>Lorry 7 (KBX 123A)</td>"), "{}", r.html);
    assert!(
        r.html.contains(
            "href=\"https://fleet.example.com/now/?device=12&amp;at=2026-12-05T20:14:00Z\""
        ),
        "{}",
        r.html
    );
    // a geofence named in the facts is the place, the coordinates follow
    let facts = Facts { geofence_name: Some("Depot".into()), ..sos() };
    let r = render(&input(EventKind::AlarmSafety, &facts));
    assert!(r.text.contains("Where: Depot (-1.28639, 36.81722)"), "{}", r.text);
    let r = render(&input(EventKind::Offline, &Facts::default()));
    assert!(r.text.contains("Where: position unknown"), "{}", r.text);
}

#[test]
fn html_escapes_everything_that_comes_from_data() {
    let facts = Facts { geofence_name: Some("A&B \"yard\"".into()), ..sos() };
    let mut i = input(EventKind::GeofenceEnter, &facts);
    i.vehicle_name = "<script>alert(1)</script>".into();
    i.driver = Some("O'Brien <b>".into());
    i.rule_name = Some("<img src=x onerror=alert(2)>".into());
    let r = render(&i);
    assert!(
        !r.html.contains("<script>") && !r.html.contains("<img") && !r.html.contains("<b>"),
        "{}",
        r.html
    );
    assert!(r.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{}", r.html);
    assert!(r.html.contains("Entered A&amp;B &quot;yard&quot;"), "{}", r.html);
    assert!(r.html.contains("O&#39;Brien &lt;b&gt;"), "{}", r.html);
    // the text forms carry the name as it is
    assert!(r.text.contains("<script>alert(1)</script>"));
}

#[test]
fn typical_messages_fit_one_sms_with_vehicle_what_and_time() {
    let geofence = Facts { geofence_name: Some("Mombasa Road depot".into()), ..sos() };
    let offline =
        Facts { threshold_s: Some(45 * 60), lat: Some(-1.3), lon: Some(36.8), ..Facts::default() };
    for (kind, facts, what) in [
        (EventKind::AlarmSafety, sos(), "SOS alarm"),
        (EventKind::GeofenceExit, geofence, "Left Mombasa Road depot"),
        (EventKind::Offline, offline, "Offline for 45 min"),
    ] {
        let r = render(&input(kind, &facts));
        let n = gsm7_len(&r.short).unwrap_or_else(|| panic!("not GSM-7: {}", r.short));
        assert!(n <= 160, "{n}: {}", r.short);
        for part in ["Lorry 7", what, "Sat 5 Dec 23:14 EAT"] {
            assert!(r.short.contains(part), "{part:?} not in {}", r.short);
        }
    }
    // with room to spare, the SMS carries the place and the link too
    let r = render(&input(EventKind::AlarmSafety, &sos()));
    assert_eq!(
        r.short,
        "Lorry 7 (KBX 123A): SOS alarm, Sat 5 Dec 23:14 EAT, at -1.2864,36.8172 https://fleet.example.com/now/?device=12&at=2026-12-05T20:14:00Z"
    );
}

#[test]
fn a_long_sms_drops_link_place_and_plate_before_cutting_words() {
    let facts =
        Facts { geofence_name: Some("Industrial Area North Gate Loading Bay 4".into()), ..sos() };
    let mut i = input(EventKind::GeofenceEnter, &facts);
    i.link = format!("https://fleet.example.com/{}", "x".repeat(80));
    let r = render(&i);
    assert!(fits_one_sms(&r.short), "{}", r.short);
    assert!(!r.short.contains("https://"), "the link goes first: {}", r.short);
    assert!(r.short.contains("Entered Industrial Area North Gate Loading Bay 4"), "{}", r.short);

    i.vehicle_name = "Long-haul tanker number forty-two of the northern corridor fleet".into();
    let long =
        Facts { alarm_name: Some("Driver fatigue warning: eyes closed ".repeat(5)), ..sos() };
    i.facts = &long;
    i.kind = EventKind::AlarmSafety;
    let r = render(&i);
    assert!(fits_one_sms(&r.short), "{} ({:?})", r.short, gsm7_len(&r.short));
    assert!(r.short.starts_with("Long-haul tanker...: Driver fatigue"), "{}", r.short);
    assert!(r.short.contains("Sat 5 Dec 23:14 EAT"), "the time stays: {}", r.short);
}

#[test]
fn unicode_names_fit_the_shorter_unicode_sms() {
    let facts = Facts { alarm_name: Some("SOS".into()), ..Facts::default() };
    let mut i = input(EventKind::AlarmSafety, &facts);
    i.vehicle_name = "Лорри 7".into();
    i.plate = None;
    let r = render(&i);
    assert!(gsm7_len(&r.short).is_none());
    assert!(fits_one_sms(&r.short), "{}", r.short);
    assert!(r.short.starts_with("Лорри 7: SOS alarm, Sat 5 Dec 23:14 EAT"), "{}", r.short);
}

#[test]
fn gsm7_counts_extension_characters_twice() {
    assert_eq!(gsm7_len("abc"), Some(3));
    assert_eq!(gsm7_len("a€[b]"), Some(8));
    assert_eq!(gsm7_len("é à"), Some(3));
    assert_eq!(gsm7_len("—"), None);
}

#[test]
fn the_webhook_payload_carries_the_event_in_json() {
    let facts = sos();
    let r = render(&input(EventKind::AlarmSafety, &facts));
    let json = serde_json::to_value(&r.webhook).expect("json");
    assert_eq!(json["test"], false);
    assert_eq!(json["event_id"], 981);
    assert_eq!(json["kind"], "alarm.safety");
    assert_eq!(json["severity"], "critical");
    assert_eq!(json["title"], "SOS alarm");
    assert_eq!(json["device"]["id"], 12);
    assert_eq!(json["device"]["name"], "Lorry 7");
    assert_eq!(json["device"]["plate"], "KBX 123A");
    assert_eq!(json["device"]["driver"], "Jane Wanjiku");
    assert_eq!(json["time"], "2026-12-05T20:14:00Z");
    assert_eq!(json["local_time"], "Sat 5 Dec 23:14 EAT");
    assert_eq!(json["timezone"], "Africa/Nairobi");
    assert_eq!(json["facts"]["alarm_name"], "SOS");
    assert_eq!(json["rule"], "Night watch");
    assert_eq!(json["link"], "https://fleet.example.com/now/?device=12&at=2026-12-05T20:14:00Z");
    let back: WebhookPayload = serde_json::from_value(json).expect("reads back");
    assert_eq!(back, r.webhook);
}

#[test]
fn a_test_message_says_who_sent_it_on_which_channel() {
    let r = render_test(
        Channel::Sms,
        "Amina (admin)",
        at(),
        "Sat 5 Dec 23:14 EAT",
        "Africa/Nairobi",
        "https://fleet.example.com/ops/",
    );
    assert_eq!(r.subject, "fleetd test message");
    assert!(r.text.contains("test of the sms channel, sent by Amina (admin)"), "{}", r.text);
    assert!(
        fits_one_sms(&r.short) && r.short.contains("test message from Amina (admin)"),
        "{}",
        r.short
    );
    assert!(r.webhook.test && r.webhook.kind.is_none() && r.webhook.device.is_none());
    let r = render_test(Channel::Email, "<i>x</i>", at(), "now", "UTC", "https://f/");
    assert!(r.html.contains("&lt;i&gt;x&lt;/i&gt;") && !r.html.contains("<i>"), "{}", r.html);
}
