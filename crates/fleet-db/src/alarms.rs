//! Alarms, `fleet.alarms`, as people read and handle them: the newest-first list with its
//! filters and keyset, one alarm, its acknowledgement, and counts per class over local days.
//! The ingest writer stores them here too; the live stream reads new ones through
//! [`crate::live`].

use chrono::{DateTime, NaiveDate, Utc};
use fleet_core::{AlarmEvent, PositionSource};
use sqlx::{PgConnection, PgPool};

/// An alarm, with the vehicle it came from and its acknowledgement.
#[derive(Debug, Clone, PartialEq)]
pub struct AlarmRecord {
    pub device_id: i32,
    pub alarm_time: DateTime<Utc>,
    pub alarm_type: String,
    pub alarm_name: String,
    pub alarm_class: String,
    pub lat: Option<f64>,
    pub lon: Option<f64>,
    pub speed_kmh: Option<f32>,
    pub source: String,
    pub received_at: DateTime<Utc>,
    pub device_name: String,
    pub plate: Option<String>,
    pub acknowledged: bool,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<i32>,
    /// Null once that user is deleted.
    pub acknowledged_by_username: Option<String>,
    pub ack_note: Option<String>,
}

/// The position in the list after which a page starts: (alarm_time, device_id, alarm_type) of
/// the last alarm of the previous page.
pub type AlarmPosition = (DateTime<Utc>, i32, String);

/// Filters of the alarm list; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct AlarmFilter<'a> {
    pub device_id: Option<i32>,
    pub alarm_type: Option<&'a str>,
    pub class: Option<&'a str>,
    /// Alarms at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Alarms before this time.
    pub to: Option<DateTime<Utc>>,
    pub acknowledged: Option<bool>,
}

/// Up to `limit` alarms matching `filter` after `after`, newest first (then by device id and
/// alarm type).
pub async fn list(
    pool: &PgPool,
    filter: &AlarmFilter<'_>,
    after: Option<AlarmPosition>,
    limit: i64,
) -> Result<Vec<AlarmRecord>, sqlx::Error> {
    let (c_time, c_device, c_type) = match after {
        Some((t, d, ty)) => (Some(t), Some(d), Some(ty)),
        None => (None, None, None),
    };
    sqlx::query_as!(
        AlarmRecord,
        r#"select a.device_id, a.alarm_time, a.alarm_type, a.alarm_name, a.alarm_class,
                a.lat, a.lon, a.speed_kmh, a.source, a.received_at, d.name as device_name, d.plate,
                a.acknowledged_at is not null as "acknowledged!", a.acknowledged_at,
                a.acknowledged_by, u.username as "acknowledged_by_username?", a.ack_note
         from fleet.alarms a
         join fleet.devices d on d.device_id = a.device_id
         left join fleet.users u on u.user_id = a.acknowledged_by
         where ($1::int is null or a.device_id = $1)
           and ($2::text is null or a.alarm_type = $2)
           and ($3::text is null or a.alarm_class = $3)
           and ($4::timestamptz is null or a.alarm_time >= $4)
           and ($5::timestamptz is null or a.alarm_time < $5)
           and ($6::bool is null or (a.acknowledged_at is not null) = $6)
           and ($7::timestamptz is null
                or a.alarm_time < $7
                or (a.alarm_time = $7 and (a.device_id, a.alarm_type) > ($8, $9)))
         order by a.alarm_time desc, a.device_id, a.alarm_type
         limit $10"#,
        filter.device_id,
        filter.alarm_type,
        filter.class,
        filter.from,
        filter.to,
        filter.acknowledged,
        c_time,
        c_device,
        c_type,
        limit,
    )
    .fetch_all(pool)
    .await
}

/// The alarm with this key.
pub async fn get(
    pool: &PgPool,
    device_id: i32,
    alarm_time: DateTime<Utc>,
    alarm_type: &str,
) -> Result<Option<AlarmRecord>, sqlx::Error> {
    sqlx::query_as!(
        AlarmRecord,
        r#"select a.device_id, a.alarm_time, a.alarm_type, a.alarm_name, a.alarm_class,
                a.lat, a.lon, a.speed_kmh, a.source, a.received_at, d.name as device_name, d.plate,
                a.acknowledged_at is not null as "acknowledged!", a.acknowledged_at,
                a.acknowledged_by, u.username as "acknowledged_by_username?", a.ack_note
         from fleet.alarms a
         join fleet.devices d on d.device_id = a.device_id
         left join fleet.users u on u.user_id = a.acknowledged_by
         where a.device_id = $1 and a.alarm_time = $2 and a.alarm_type = $3"#,
        device_id,
        alarm_time,
        alarm_type,
    )
    .fetch_optional(pool)
    .await
}

/// Marks the alarm acknowledged by `user_id` now, with `note`; `false` when there is no such
/// alarm or it was already acknowledged (an alarm is acknowledged once).
pub async fn acknowledge(
    pool: &PgPool,
    (device_id, alarm_time, alarm_type): (i32, DateTime<Utc>, &str),
    user_id: i32,
    note: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let updated = sqlx::query!(
        "update fleet.alarms set acknowledged_at = now(), acknowledged_by = $4, ack_note = $5
         where device_id = $1 and alarm_time = $2 and alarm_type = $3 and acknowledged_at is null",
        device_id,
        alarm_time,
        alarm_type,
        user_id,
        note,
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(updated > 0)
}

/// How an alarm reached fleetd, as `fleet.alarms.source` spells it.
fn source(a: &AlarmEvent) -> &'static str {
    match a.source {
        PositionSource::Push => "push",
        PositionSource::Gt06 => "gt06",
        PositionSource::Poll | PositionSource::Track => "poll",
    }
}

/// Stores an alarm of device `device_id` (inside the ingest writer's flush); `false` when it
/// was stored before (the same device, time and type).
pub async fn store(
    conn: &mut PgConnection,
    device_id: i32,
    a: &AlarmEvent,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query!(
        "insert into fleet.alarms (device_id, alarm_time, alarm_type, alarm_name, alarm_class,
                     lat, lon, speed_kmh, source, extra)
                 values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) on conflict do nothing",
        device_id,
        a.alarm_time,
        &a.alarm_type,
        &a.alarm_name,
        a.class.as_str(),
        a.location.map(|l| l.lat()),
        a.location.map(|l| l.lon()),
        a.speed_kmh,
        source(a),
        a.extra.as_ref(),
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}

/// Alarms of one class.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassCount {
    pub alarm_class: String,
    /// Alarms raised in the range.
    pub alarms: i64,
    /// Of those, not acknowledged yet.
    pub open: i64,
}

/// Alarms raised on the local days `from..=to` (each vehicle's time zone, as the daily KPIs
/// count them) per class, most alarms first; only vehicles of `cost_centre` and `city` when
/// given (case and surrounding spaces do not matter).
pub async fn count_by_class(
    pool: &PgPool,
    from: NaiveDate,
    to: NaiveDate,
    cost_centre: Option<&str>,
    city: Option<&str>,
) -> Result<Vec<ClassCount>, sqlx::Error> {
    // the outer time bounds (a day of slack for any time zone) let the time index narrow the
    // scan before each alarm's local date is computed
    sqlx::query_as!(
        ClassCount,
        r#"select a.alarm_class, count(*) as "alarms!",
                count(*) filter (where a.acknowledged_at is null) as "open!"
         from fleet.alarms a
         join fleet.devices d on d.device_id = a.device_id
         join reporting.v_device_analytics_settings s on s.device_id = a.device_id
         where a.alarm_time >= ($1::date - 1)::timestamptz
           and a.alarm_time < ($2::date + 2)::timestamptz
           and (a.alarm_time at time zone s.timezone)::date between $1 and $2
           and ($3::text is null or lower(d.cost_centre) = lower(btrim($3)))
           and ($4::text is null or lower(d.city) = lower(btrim($4)))
         group by a.alarm_class
         order by count(*) desc, a.alarm_class"#,
        from,
        to,
        cost_centre,
        city,
    )
    .fetch_all(pool)
    .await
}

/// Whether any alarm is older than `cut` (retention should have removed it).
pub async fn any_before(pool: &PgPool, cut: DateTime<Utc>) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists (select from fleet.alarms where alarm_time < $1) as "found!""#,
        cut
    )
    .fetch_one(pool)
    .await
}
