use chrono::{DateTime, NaiveTime, Utc};

use super::*;
use crate::notification::Facts;

fn t(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).expect("time")
}

fn at(weekday: u8, h: u32, m: u32) -> LocalMoment {
    LocalMoment { weekday, time: t(h, m) }
}

fn event(kind: EventKind, facts: Facts) -> Event {
    Event {
        key: "k".into(),
        device_id: 7,
        time: DateTime::<Utc>::from_timestamp(1_700_000_000, 0).expect("time"),
        kind,
        facts,
    }
}

fn rule(kinds: &[EventKind]) -> Rule {
    Rule {
        name: "night".into(),
        enabled: true,
        kinds: kinds.to_vec(),
        scope: Scope::default(),
        schedule: None,
        throttle_s: 0,
        params: Params::default(),
        recipients: Recipients { user_ids: vec![1], ..Recipients::default() },
        channels: vec![Channel::Email],
        severity: Severity::Warning,
    }
}

fn van() -> VehicleScope {
    VehicleScope {
        device_id: 7,
        cost_centre: Some("Nairobi-North".into()),
        city: Some("Nairobi".into()),
    }
}

#[test]
fn an_overnight_window_runs_into_the_next_morning() {
    let s = Schedule { days: vec![1, 2, 3, 4, 5], from: t(18, 0), to: t(6, 0) };
    assert!(s.contains(at(1, 18, 0)));
    assert!(s.contains(at(2, 5, 59)), "Monday night spills into Tuesday morning");
    assert!(!s.contains(at(2, 6, 0)));
    assert!(!s.contains(at(3, 12, 0)));
    assert!(s.contains(at(6, 2, 0)), "Friday night spills into Saturday");
    assert!(!s.contains(at(6, 18, 0)), "Saturday is not a day of the window");
    assert!(!s.contains(at(1, 3, 0)), "Sunday night is not in it");
    let day = Schedule { days: vec![3], from: t(8, 0), to: t(17, 0) };
    assert!(day.contains(at(3, 8, 0)) && !day.contains(at(3, 17, 0)) && !day.contains(at(4, 9, 0)));
    let all_day = Schedule { days: vec![7], from: t(0, 0), to: t(0, 0) };
    assert!(all_day.contains(at(7, 23, 59)) && !all_day.contains(at(1, 0, 0)));
}

#[test]
fn a_schedule_that_never_matches_is_refused() {
    let mut r = rule(&[EventKind::GeofenceExit]);
    r.schedule = Some(Schedule { days: vec![], from: t(18, 0), to: t(6, 0) });
    assert_eq!(r.validate().map_err(|e| e.field), Err("schedule.days".to_owned()));
    r.schedule = Some(Schedule { days: vec![0], from: t(18, 0), to: t(6, 0) });
    assert_eq!(r.validate().map_err(|e| e.field), Err("schedule.days".to_owned()));
}

#[test]
fn kind_scope_schedule_and_params_all_decide() {
    let mut r = rule(&[EventKind::GeofenceExit]);
    r.schedule = Some(Schedule { days: (1..=7).collect(), from: t(20, 0), to: t(6, 0) });
    let exit = event(EventKind::GeofenceExit, Facts { geofence_id: Some(3), ..Facts::default() });
    assert!(r.matches(&exit, &van(), at(2, 23, 0)));
    assert!(!r.matches(&exit, &van(), at(2, 12, 0)), "outside the schedule");
    let enter = event(EventKind::GeofenceEnter, exit.facts.clone());
    assert!(!r.matches(&enter, &van(), at(2, 23, 0)), "another kind");

    r.scope.geofence_ids = vec![4];
    assert!(!r.matches(&exit, &van(), at(2, 23, 0)), "another geofence");
    r.scope.geofence_ids = vec![3, 4];
    r.scope.cities = vec!["mombasa".into()];
    assert!(!r.matches(&exit, &van(), at(2, 23, 0)), "another city");
    r.scope.cost_centres = vec!["nairobi-north".into()];
    assert!(r.matches(&exit, &van(), at(2, 23, 0)), "selectors add up; names ignore case");
    r.enabled = false;
    assert!(!r.matches(&exit, &van(), at(2, 23, 0)));
}

#[test]
fn per_kind_params_filter_events() {
    let mut r = rule(&[EventKind::AlarmSafety, EventKind::Overspeed, EventKind::Offline]);
    let sos =
        event(EventKind::AlarmSafety, Facts { alarm_type: Some("1".into()), ..Facts::default() });
    let noon = at(3, 12, 0);
    assert!(r.matches(&sos, &van(), noon));
    r.params.alarm_types = vec!["44".into()];
    assert!(!r.matches(&sos, &van(), noon));

    // above the configured limit (80) for 20 s and 45 s
    let over = |s, asked: Option<f64>| {
        event(
            EventKind::Overspeed,
            Facts {
                duration_s: Some(s),
                limit_kmh: Some(asked.unwrap_or(80.0).max(80.0)),
                asked_kmh: asked,
                max_speed_kmh: Some(125.0),
                ..Facts::default()
            },
        )
    };
    assert!(!r.matches(&over(20, None), &van(), noon) && r.matches(&over(45, None), &van(), noon));
    // "above 100 km/h for 30 s": told of the run measured above 100 km/h, not of the run above
    // the configured limit, however fast its top speed
    r.params.overspeed_kmh = Some(100.0);
    assert!(!r.matches(&over(45, None), &van(), noon));
    assert!(r.matches(&over(45, Some(100.0)), &van(), noon));
    assert!(!r.matches(&over(45, Some(120.0)), &van(), noon));
    assert!(!r.matches(&over(20, Some(100.0)), &van(), noon));

    let off = |s| event(EventKind::Offline, Facts { threshold_s: Some(s), ..Facts::default() });
    assert!(r.matches(&off(1_800), &van(), noon) && !r.matches(&off(3_600), &van(), noon));
    r.params.offline_min = Some(60);
    assert!(!r.matches(&off(1_800), &van(), noon) && r.matches(&off(3_600), &van(), noon));
}

#[test]
fn quiet_hours_let_critical_messages_through_unless_asked_not_to() {
    let mut q = QuietHours {
        window: Schedule { days: (1..=7).collect(), from: t(22, 0), to: t(7, 0) },
        except_critical: true,
    };
    assert!(q.holds(at(4, 23, 0), Severity::Warning));
    assert!(!q.holds(at(4, 23, 0), Severity::Critical));
    assert!(!q.holds(at(4, 9, 0), Severity::Info));
    q.except_critical = false;
    assert!(q.holds(at(4, 23, 0), Severity::Critical));
}

#[test]
fn validation_names_the_bad_field() {
    let check = |r: &Rule| r.validate().map_err(|e| e.field);
    let mut r = rule(&[EventKind::AlarmSafety]);
    assert_eq!(check(&r), Ok(()));
    r.kinds.clear();
    assert_eq!(check(&r), Err("kinds".into()));
    let mut r = rule(&[EventKind::AlarmSafety]);
    r.recipients = Recipients::default();
    assert_eq!(check(&r), Err("recipients".into()));
    r.recipients.addresses = vec![Address { channel: Channel::Email, to: "not-an-address".into() }];
    assert_eq!(check(&r), Err("recipients.addresses[0].to".into()));
    r.recipients.addresses = vec![Address { channel: Channel::Sms, to: "+254712345678".into() }];
    assert_eq!(
        check(&r),
        Err("recipients.addresses[0].channel".into()),
        "sms is not a channel of the rule"
    );
    r.channels.push(Channel::Sms);
    assert_eq!(check(&r), Ok(()));
    r.recipients.addresses[0].to = "0712345678".into();
    assert_eq!(check(&r), Err("recipients.addresses[0].to".into()));
    let mut r = rule(&[EventKind::NotMoved]);
    assert_eq!(check(&r), Err("params.not_moved_by".into()));
    r.params.not_moved_by = Some(t(9, 0));
    assert_eq!(check(&r), Ok(()));
    r.channels.push(Channel::Webhook);
    assert_eq!(check(&r), Err("channels".into()));
    r.throttle_s = -1;
    assert_eq!(check(&r), Err("throttle_s".into()));
}
