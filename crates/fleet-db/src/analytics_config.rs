//! `fleet.analytics_config`: the global analytics values and the cost centre, city and
//! device overrides, and each device's values with its overrides combined
//! (`reporting.v_device_analytics_settings`). A trigger of the table marks the devices a
//! change applies to for a rebuild.

use chrono::{DateTime, Utc};
use fleet_core::SettingsValues;
use serde::Serialize;
use sqlx::{PgConnection, PgPool};

/// One row of `fleet.analytics_config`.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SettingsRow {
    /// global, cost_centre, city or device.
    pub scope: String,
    /// The cost centre or city name, or the device IMEI; empty for the global row.
    pub key: String,
    #[serde(flatten)]
    pub values: SettingsValues,
    pub updated_at: DateTime<Utc>,
    /// Id of the user who changed it last; null when set by a migration or that user is gone.
    pub updated_by: Option<i32>,
}

/// Which rows to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows<'a> {
    Global,
    /// Every override, by scope and key.
    Overrides,
    One {
        scope: &'a str,
        key: &'a str,
    },
}

/// The rows asked for: the one column list of the table.
pub async fn rows(db: &mut PgConnection, which: Rows<'_>) -> Result<Vec<SettingsRow>, sqlx::Error> {
    let (global, scope, key) = match which {
        Rows::Global => (Some(true), None, None),
        Rows::Overrides => (Some(false), None, None),
        Rows::One { scope, key } => (None, Some(scope), Some(key)),
    };
    sqlx::query!(
        "select scope, scope_key, speed_limit_kmh, moving_speed_kmh, work_stop_min_s, long_gap_s,
                idle_min_s, min_trip_distance_m, min_trip_duration_s, motion_confirm_distance_m,
                offline_after_s, shift_start, shift_end, shift_weekdays, timezone,
                idle_fuel_l_per_h, fuel_price_per_l, currency, updated_at, updated_by
         from fleet.analytics_config
         where ($1::bool is null or (scope = 'global') = $1)
           and ($2::text is null or scope = $2)
           and ($3::text is null or scope_key = $3)
         order by scope, scope_key",
        global,
        scope,
        key
    )
    .map(|r| SettingsRow {
        scope: r.scope,
        key: r.scope_key,
        values: SettingsValues {
            speed_limit_kmh: r.speed_limit_kmh,
            moving_speed_kmh: r.moving_speed_kmh,
            work_stop_min_s: r.work_stop_min_s,
            long_gap_s: r.long_gap_s,
            idle_min_s: r.idle_min_s,
            min_trip_distance_m: r.min_trip_distance_m,
            min_trip_duration_s: r.min_trip_duration_s,
            motion_confirm_distance_m: r.motion_confirm_distance_m,
            offline_after_s: r.offline_after_s,
            shift_start: r.shift_start,
            shift_end: r.shift_end,
            shift_weekdays: r.shift_weekdays,
            timezone: r.timezone,
            idle_fuel_l_per_h: r.idle_fuel_l_per_h,
            fuel_price_per_l: r.fuel_price_per_l,
            currency: r.currency,
        },
        updated_at: r.updated_at,
        updated_by: r.updated_by,
    })
    .fetch_all(db)
    .await
}

/// Sets the row of (scope, key) to `v` (the global row: scope `global`, key empty), by user
/// `by`, and returns it.
pub async fn upsert(
    tx: &mut PgConnection,
    scope: &str,
    key: &str,
    v: &SettingsValues,
    by: i32,
) -> Result<SettingsRow, sqlx::Error> {
    sqlx::query!(
        "insert into fleet.analytics_config (scope, scope_key, speed_limit_kmh, moving_speed_kmh,
             work_stop_min_s, long_gap_s, idle_min_s, min_trip_distance_m, min_trip_duration_s,
             motion_confirm_distance_m, offline_after_s, shift_start, shift_end, shift_weekdays,
             timezone, idle_fuel_l_per_h, fuel_price_per_l, currency, updated_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
         on conflict (scope, scope_key) do update set
             speed_limit_kmh = excluded.speed_limit_kmh,
             moving_speed_kmh = excluded.moving_speed_kmh,
             work_stop_min_s = excluded.work_stop_min_s,
             long_gap_s = excluded.long_gap_s,
             idle_min_s = excluded.idle_min_s,
             min_trip_distance_m = excluded.min_trip_distance_m,
             min_trip_duration_s = excluded.min_trip_duration_s,
             motion_confirm_distance_m = excluded.motion_confirm_distance_m,
             offline_after_s = excluded.offline_after_s,
             shift_start = excluded.shift_start,
             shift_end = excluded.shift_end,
             shift_weekdays = excluded.shift_weekdays,
             timezone = excluded.timezone,
             idle_fuel_l_per_h = excluded.idle_fuel_l_per_h,
             fuel_price_per_l = excluded.fuel_price_per_l,
             currency = excluded.currency,
             updated_by = excluded.updated_by",
        scope,
        key,
        v.speed_limit_kmh,
        v.moving_speed_kmh,
        v.work_stop_min_s,
        v.long_gap_s,
        v.idle_min_s,
        v.min_trip_distance_m,
        v.min_trip_duration_s,
        v.motion_confirm_distance_m,
        v.offline_after_s,
        v.shift_start,
        v.shift_end,
        v.shift_weekdays.as_deref(),
        v.timezone.as_deref(),
        v.idle_fuel_l_per_h,
        v.fuel_price_per_l,
        v.currency.as_deref(),
        by
    )
    .execute(&mut *tx)
    .await?;
    rows(tx, Rows::One { scope, key }).await?.pop().ok_or(sqlx::Error::RowNotFound)
}

/// Deletes the override of (scope, key); false when there was none.
pub async fn delete(pool: &PgPool, scope: &str, key: &str) -> Result<bool, sqlx::Error> {
    let deleted = sqlx::query!(
        "delete from fleet.analytics_config where scope = $1 and scope_key = $2",
        scope,
        key
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(deleted > 0)
}

/// Each device's IMEI and values with its overrides combined, by device id (a value is null
/// only when no row sets it).
pub async fn effective(
    tx: &mut PgConnection,
) -> Result<Vec<(String, SettingsValues)>, sqlx::Error> {
    sqlx::query!(
        r#"select imei as "imei!", speed_limit_kmh, moving_speed_kmh, work_stop_min_s,
                  long_gap_s, idle_min_s, min_trip_distance_m, min_trip_duration_s,
                  motion_confirm_distance_m, offline_after_s, shift_start, shift_end,
                  shift_weekdays, timezone, idle_fuel_l_per_h, fuel_price_per_l, currency
           from reporting.v_device_analytics_settings order by device_id"#
    )
    .map(|r| {
        let values = SettingsValues {
            speed_limit_kmh: r.speed_limit_kmh,
            moving_speed_kmh: r.moving_speed_kmh,
            work_stop_min_s: r.work_stop_min_s,
            long_gap_s: r.long_gap_s,
            idle_min_s: r.idle_min_s,
            min_trip_distance_m: r.min_trip_distance_m,
            min_trip_duration_s: r.min_trip_duration_s,
            motion_confirm_distance_m: r.motion_confirm_distance_m,
            offline_after_s: r.offline_after_s,
            shift_start: r.shift_start,
            shift_end: r.shift_end,
            shift_weekdays: r.shift_weekdays,
            timezone: r.timezone,
            idle_fuel_l_per_h: r.idle_fuel_l_per_h,
            fuel_price_per_l: r.fuel_price_per_l,
            currency: r.currency,
        };
        (r.imei, values)
    })
    .fetch_all(tx)
    .await
}

/// Whether PostgreSQL knows the IANA time zone `name`.
pub async fn timezone_known(pool: &PgPool, name: &str) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar!(
        r#"select exists (select from pg_timezone_names where name = $1) as "known!""#,
        name
    )
    .fetch_one(pool)
    .await
}
