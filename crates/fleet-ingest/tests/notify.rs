//! Notifications from the ingest writer: new alarms, back online and power lost become events
//! in the flush's transaction, routed by the rules to outbox and inbox rows — each once.

use chrono::{DateTime, DurationRound, TimeDelta, Timelike, Utc};
use fleet_core::{AlarmClass, AlarmEvent, FixKind, Imei, LatLon, PositionFix, PositionSource};
use fleet_ingest::{Record, Writer, WriterConfig};
use fleet_testkit::TestDb;
use serde_json::json;
use tokio_util::sync::CancellationToken;

fn imei(n: u32) -> Imei {
    Imei::parse(&format!("8612345678{n:05}")).expect("imei")
}

/// A recent whole second, so events are within the 24 h notification horizon.
fn recent(ago_s: i64) -> DateTime<Utc> {
    (Utc::now() - TimeDelta::seconds(ago_s)).duration_trunc(TimeDelta::seconds(1)).expect("trunc")
}

fn sos(device: u32, t: DateTime<Utc>) -> Record {
    Record::Alarm(AlarmEvent {
        imei: imei(device),
        alarm_time: t,
        alarm_type: "1".into(),
        alarm_name: "SOS alert".into(),
        class: AlarmClass::Safety,
        location: Some(LatLon::new(-1.28, 36.82).expect("valid")),
        speed_kmh: Some(0.0),
        source: PositionSource::Push,
        extra: None,
    })
}

fn fix(device: u32, t: DateTime<Utc>, external_v: f32) -> Record {
    Record::Position(PositionFix {
        imei: imei(device),
        gps_time: t,
        location: LatLon::new(-1.28, 36.82).expect("valid"),
        speed_kmh: Some(0.0),
        course_deg: None,
        altitude_m: None,
        ignition: Some(false),
        satellites: Some(9),
        fix_kind: FixKind::Gps,
        battery_pct: None,
        external_v: Some(external_v),
        odometer_m: None,
        source: PositionSource::Push,
        extra: None,
    })
}

struct Fleet {
    db: TestDb,
    writer: Writer,
    _stop: CancellationToken,
}

impl Fleet {
    async fn new() -> Fleet {
        let db = TestDb::migrated().await;
        // local moments in UTC, so tests can reason about schedules from event times
        exec(&db, "update fleet.analytics_config set timezone = 'UTC' where scope = 'global'")
            .await;
        let stop = CancellationToken::new();
        let (writer, _) = Writer::spawn(db.pool.clone(), WriterConfig::default(), stop.clone());
        Fleet { db, writer, _stop: stop }
    }

    async fn write(&self, records: Vec<Record>) {
        self.writer.write("push.alarm", records).await.expect("stored");
    }

    async fn user(&self, name: &str, email: &str) -> i32 {
        let id: i32 = sqlx::query_scalar(
            "insert into fleet.users (username, password_hash, role) values ($1, 'x', 'operator')
             returning user_id",
        )
        .bind(name)
        .fetch_one(&self.db.pool)
        .await
        .expect("user");
        sqlx::query(
            "insert into fleet.notify_contacts (user_id, channel, address) values ($1, 'email', $2)",
        )
        .bind(id)
        .bind(email)
        .execute(&self.db.pool)
        .await
        .expect("contact");
        id
    }

    /// A rule with `kinds`, users, bare addresses, e-mail + in-app, throttle and schedule.
    async fn rule(
        &self,
        kinds: &[&str],
        users: &[i32],
        throttle_s: i32,
        extra: serde_json::Value,
    ) -> i32 {
        let schedule = extra.get("schedule").cloned();
        let addresses = extra.get("addresses").cloned().unwrap_or(json!([]));
        let severity =
            extra.get("severity").and_then(|s| s.as_str()).unwrap_or("warning").to_owned();
        sqlx::query_scalar(
            "insert into fleet.notify_rules (name, kinds, user_ids, addresses, channels,
                 throttle_s, schedule, severity)
             values ('test rule', $1, $2, $3, '{email,in_app}', $4, $5, $6) returning rule_id",
        )
        .bind(kinds)
        .bind(users)
        .bind(addresses)
        .bind(throttle_s)
        .bind(schedule)
        .bind(severity)
        .fetch_one(&self.db.pool)
        .await
        .expect("rule")
    }

    async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(&self.db.pool).await.expect(sql)
    }
}

async fn exec(db: &TestDb, sql: &str) {
    sqlx::query(sql).execute(&db.pool).await.expect(sql);
}

#[tokio::test]
async fn a_new_sos_alarm_writes_one_outbox_row_per_address_and_an_inbox_row_once() {
    let f = Fleet::new().await;
    let ann = f.user("ann", "ann@example.com").await;
    f.rule(
        &["alarm.safety"],
        &[ann],
        0,
        json!({
            "addresses": [{"channel": "email", "to": " Control@Example.COM "}]
        }),
    )
    .await;
    let mut changes = sqlx::postgres::PgListener::connect_with(&f.db.pool).await.expect("listener");
    changes.listen(fleet_ingest::CHANGES_CHANNEL).await.expect("listen");
    let t = recent(60);
    f.write(vec![sos(1, t)]).await;
    assert_eq!(f.count("select count(*) from fleet.notify_events").await, 1);
    // the flush's change notice announces the in-app notification
    let key = fleet_db::notify::NotifyKey::load(&f.db.pool).await.expect("key");
    let signed = changes.recv().await.expect("notice");
    let verified = key.verify(fleet_ingest::CHANGES_CHANNEL, signed.payload()).expect("signed");
    let notice = fleet_db::changes::ChangeNotice::parse(verified.payload).expect("notice");
    let id: i64 = sqlx::query_scalar("select notification_id from fleet.notify_inbox")
        .fetch_one(&f.db.pool)
        .await
        .expect("inbox id");
    assert_eq!(notice.inbox, [(ann, id)]);
    let rows: Vec<(String, String, Option<i32>)> = sqlx::query_as(
        "select channel, address, user_id from fleet.notify_outbox
         where state = 'pending' order by address",
    )
    .fetch_all(&f.db.pool)
    .await
    .expect("outbox");
    assert_eq!(
        rows,
        [
            ("email".to_owned(), "Control@example.com".to_owned(), None),
            ("email".to_owned(), "ann@example.com".to_owned(), Some(ann)),
        ]
    );
    let (user, title): (i32, String) =
        sqlx::query_as("select user_id, title from fleet.notify_inbox")
            .fetch_one(&f.db.pool)
            .await
            .expect("inbox");
    assert_eq!(user, ann);
    assert!(title.contains("SOS alert"), "{title}");
    let key: String = sqlx::query_scalar("select event_key from fleet.notify_events")
        .fetch_one(&f.db.pool)
        .await
        .expect("key");
    assert!(key.starts_with("alarm:") && key.ends_with(":1"), "{key}");

    // the same alarm pushed again: nothing new
    f.write(vec![sos(1, t)]).await;
    assert_eq!(f.count("select count(*) from fleet.notify_events").await, 1);
    assert_eq!(f.count("select count(*) from fleet.notify_outbox").await, 2);
    assert_eq!(f.count("select count(*) from fleet.notify_inbox").await, 1);
}

#[tokio::test]
async fn the_throttle_tells_one_alarm_of_a_burst() {
    let f = Fleet::new().await;
    let ann = f.user("ann", "ann@example.com").await;
    f.rule(&["alarm.safety"], &[ann], 300, json!({})).await;
    f.write(vec![sos(1, recent(60))]).await;
    f.write(vec![sos(1, recent(50))]).await;
    assert_eq!(f.count("select count(*) from fleet.notify_events").await, 2, "both stored");
    assert_eq!(f.count("select count(*) from fleet.notify_outbox").await, 1, "one told");
    assert_eq!(f.count("select count(*) from fleet.notify_inbox").await, 1);
    // another vehicle has a throttle of its own
    f.write(vec![sos(2, recent(40))]).await;
    assert_eq!(f.count("select count(*) from fleet.notify_outbox").await, 2);
}

#[tokio::test]
async fn quiet_hours_suppress_external_messages_and_mutes_silence_a_rule() {
    let f = Fleet::new().await;
    let ann = f.user("ann", "ann@example.com").await;
    let bob = f.user("bob", "bob@example.com").await;
    let cat = f.user("cat", "cat@example.com").await;
    let rule = f.rule(&["alarm.safety"], &[ann, bob, cat], 0, json!({})).await;
    let t = recent(60);
    let h = t.hour();
    // ann is in her quiet hours at the alarm's local hour; bob muted the rule
    sqlx::query(
        "insert into fleet.notify_prefs (user_id, quiet_from, quiet_to)
         values ($1, make_time($2, 0, 0), make_time($3, 0, 0))",
    )
    .bind(ann)
    .bind(h as i32)
    .bind(((h + 1) % 24) as i32)
    .execute(&f.db.pool)
    .await
    .expect("prefs");
    sqlx::query("insert into fleet.notify_mutes (user_id, rule_id) values ($1, $2)")
        .bind(bob)
        .bind(rule)
        .execute(&f.db.pool)
        .await
        .expect("mute");
    f.write(vec![sos(1, t)]).await;
    let rows: Vec<(i32, String)> =
        sqlx::query_as("select user_id, state from fleet.notify_outbox order by user_id")
            .fetch_all(&f.db.pool)
            .await
            .expect("outbox");
    assert_eq!(rows, [(ann, "suppressed".to_owned()), (cat, "pending".to_owned())]);
    let inbox: Vec<i32> =
        sqlx::query_scalar("select user_id from fleet.notify_inbox order by user_id")
            .fetch_all(&f.db.pool)
            .await
            .expect("inbox");
    assert_eq!(inbox, [ann, cat], "the bell rings in quiet hours; a mute silences it");
}

#[tokio::test]
async fn schedules_choose_the_rule_active_at_the_events_local_time() {
    let f = Fleet::new().await;
    let ann = f.user("ann", "ann@example.com").await;
    let bob = f.user("bob", "bob@example.com").await;
    let t = recent(60);
    let h = t.hour();
    let window = |from: u32| {
        json!({"schedule": {"days": [1,2,3,4,5,6,7],
            "from": format!("{:02}:00:00", from % 24), "to": format!("{:02}:00:00", (from + 1) % 24)}})
    };
    f.rule(&["alarm.safety"], &[ann], 0, window(h)).await;
    f.rule(&["alarm.safety"], &[bob], 0, window(h + 12)).await;
    f.write(vec![sos(1, t)]).await;
    let users: Vec<i32> = sqlx::query_scalar("select user_id from fleet.notify_outbox")
        .fetch_all(&f.db.pool)
        .await
        .expect("outbox");
    assert_eq!(users, [ann]);
}

#[tokio::test]
async fn old_events_disabled_rules_and_later_rules_tell_nobody() {
    let f = Fleet::new().await;
    let ann = f.user("ann", "ann@example.com").await;
    // a disabled rule
    let rule = f.rule(&["alarm.safety"], &[ann], 0, json!({})).await;
    exec(&f.db, "update fleet.notify_rules set enabled = false").await;
    let t = recent(60);
    f.write(vec![sos(1, t)]).await;
    assert_eq!(f.count("select count(*) from fleet.notify_outbox").await, 0);
    // enabled later: the alarm pushed again is not new, so nothing is sent for it
    sqlx::query("update fleet.notify_rules set enabled = true where rule_id = $1")
        .bind(rule)
        .execute(&f.db.pool)
        .await
        .expect("enable");
    f.write(vec![sos(1, t)]).await;
    assert_eq!(f.count("select count(*) from fleet.notify_outbox").await, 0);
    // nor does a rule created after the alarm reach back to it
    let bob = f.user("bob", "bob@example.com").await;
    f.rule(&["alarm.safety"], &[bob], 0, json!({})).await;
    f.write(vec![sos(1, t)]).await;
    assert_eq!(f.count("select count(*) from fleet.notify_outbox").await, 0);
    assert_eq!(f.count("select count(*) from fleet.notify_inbox").await, 0);
    // an alarm older than a day (a tracker's buffered history) pages nobody
    f.write(vec![sos(1, recent(25 * 3600))]).await;
    assert_eq!(f.count("select count(*) from fleet.alarms").await, 2);
    assert_eq!(f.count("select count(*) from fleet.notify_outbox").await, 0);
    assert_eq!(f.count("select count(*) from fleet.notify_inbox").await, 0);
    // a fresh one does, to both rules' users
    f.write(vec![sos(1, recent(30))]).await;
    assert_eq!(f.count("select count(*) from fleet.notify_outbox").await, 2);
}

#[tokio::test]
async fn a_cut_supply_is_told_once_and_a_silent_tracker_back_online_once() {
    let f = Fleet::new().await;
    let ann = f.user("ann", "ann@example.com").await;
    f.rule(&["power_lost", "online"], &[ann], 0, json!({})).await;
    f.write(vec![fix(1, recent(300), 12.6), fix(1, recent(290), 12.5)]).await;
    f.write(vec![fix(1, recent(280), 0.2), fix(1, recent(270), 0.1)]).await;
    let kinds: Vec<String> = sqlx::query_scalar("select kind from fleet.notify_events")
        .fetch_all(&f.db.pool)
        .await
        .expect("events");
    assert_eq!(kinds, ["power_lost"]);
    let v: f64 =
        sqlx::query_scalar("select (facts->>'external_v')::float8 from fleet.notify_events")
            .fetch_one(&f.db.pool)
            .await
            .expect("facts");
    assert!((v - 12.5).abs() < 0.01, "{v}");

    // the offline sweep marked the tracker silent since its last fix; its next fix is told
    let last = recent(270);
    sqlx::query(
        "insert into fleet.notify_device_state (device_id, offline_since, offline_thresholds)
                 select device_id, $1, '{60}' from fleet.devices",
    )
    .bind(last)
    .execute(&f.db.pool)
    .await
    .expect("state");
    f.write(vec![fix(1, recent(10), 0.1)]).await;
    f.write(vec![fix(1, recent(5), 0.1)]).await;
    assert_eq!(f.count("select count(*) from fleet.notify_events where kind = 'online'").await, 1);
    assert_eq!(
        f.count("select count(*) from fleet.notify_device_state where offline_since is null").await,
        1
    );
    assert_eq!(f.count("select count(*) from fleet.notify_inbox").await, 2);
}

#[tokio::test]
async fn a_backlog_arriving_after_a_live_alarm_is_throttled_like_live_data() {
    let f = Fleet::new().await;
    let ann = f.user("ann", "ann@example.com").await;
    f.rule(&["alarm.safety"], &[ann], 1800, json!({})).await;
    // a live alarm, then the tracker's buffer: alarms from an hour to ten minutes before it
    let live = recent(60);
    f.write(vec![sos(1, live)]).await;
    let backlog: Vec<Record> =
        (1..=6).rev().map(|i| sos(1, live - TimeDelta::minutes(10 * i))).collect();
    f.write(backlog).await;
    assert_eq!(f.count("select count(*) from fleet.notify_events").await, 7, "all stored");
    // told: the live one, and the one an hour before it (30 min and more from every told
    // alarm); 11:10–11:50 fall within 30 min of one told
    let told: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "select e.event_time from fleet.notify_outbox o join fleet.notify_events e using (event_id)
         order by e.event_time",
    )
    .fetch_all(&f.db.pool)
    .await
    .expect("told");
    assert_eq!(told, [live - TimeDelta::minutes(60), live]);
}

/// The latest `h:m` UTC at least a minute ago.
fn last_utc(h: u32, m: u32) -> DateTime<Utc> {
    let now = Utc::now() - TimeDelta::minutes(1);
    let today = now.date_naive().and_hms_opt(h, m, 0).expect("time").and_utc();
    if today <= now {
        today
    } else {
        today - TimeDelta::days(1)
    }
}

/// The latest of two times of day (an hour apart, alike for the test) that is less than 23
/// hours old: an alarm a day old is not told at all, so a time of day that has only just
/// passed (yesterday's is nearly 24 hours ago) would drop out of the test.
fn recent_utc(first: (u32, u32), other: (u32, u32)) -> DateTime<Utc> {
    let t = last_utc(first.0, first.1);
    if Utc::now() - t < TimeDelta::hours(23) {
        t
    } else {
        last_utc(other.0, other.1)
    }
}

#[tokio::test]
async fn a_night_schedule_is_read_in_the_fleets_timezone_across_local_midnight() {
    let f = Fleet::new().await;
    exec(
        &f.db,
        "update fleet.analytics_config set timezone = 'Africa/Nairobi' where scope = 'global'",
    )
    .await;
    let ann = f.user("ann", "ann@example.com").await;
    // nights, 22:00–06:00 in Nairobi (UTC+3)
    f.rule(
        &["alarm.safety"],
        &[ann],
        0,
        json!({"schedule": {"days": [1,2,3,4,5,6,7], "from": "22:00:00", "to": "06:00:00"}}),
    )
    .await;
    // 20:30 UTC = 23:30 EAT and 02:00 UTC = 05:00 EAT are in it; 18:00 UTC = 21:00 EAT and
    // 03:30 UTC = 06:30 EAT are not (read in UTC, 20:30 would be out and 03:30 in); each has an
    // alternative an hour earlier with the same answers for when it has only just passed
    let (in_late, in_early) = (recent_utc((20, 30), (19, 30)), recent_utc((2, 0), (1, 0)));
    let (out_evening, out_morning) = (recent_utc((18, 0), (17, 0)), recent_utc((3, 30), (4, 30)));
    f.write(vec![sos(1, in_late), sos(1, in_early), sos(1, out_evening), sos(1, out_morning)])
        .await;
    assert_eq!(f.count("select count(*) from fleet.notify_events").await, 4);
    let mut told: Vec<DateTime<Utc>> = sqlx::query_scalar(
        "select e.event_time from fleet.notify_outbox o join fleet.notify_events e using (event_id)",
    )
    .fetch_all(&f.db.pool)
    .await
    .expect("told");
    told.sort();
    let mut expected = vec![in_late, in_early];
    expected.sort();
    assert_eq!(told, expected);
}
