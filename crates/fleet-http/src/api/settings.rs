//! `/settings/analytics`: the thresholds trips and KPIs are computed with
//! (`fleet.analytics_config`). One global row holds every value; cost centre, city and device
//! overrides set only some (absent = inherit). Everyone reads them; admins change them. A
//! trigger of `fleet.analytics_config` marks the devices a change applies to for a rebuild.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, NaiveTime, Utc};
use fleet_core::text::excerpt;
use fleet_core::AnalyticsSettings;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::{JsonBody, Path};
use crate::auth::{Admin, Viewer};
use crate::error::FieldError;
use crate::{ApiError, AppState, Problem};

/// Analytics values. In the global row every one is set; in an override, absent or null ones
/// are inherited. docs/ANALYTICS_SETTINGS.md explains each.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsValues {
    /// Speed limit for overspeed counting, km/h (1-300).
    pub speed_limit_kmh: Option<f64>,
    /// Below this speed a fix is stationary, km/h (0.5-30).
    pub moving_speed_kmh: Option<f64>,
    /// Ignition off and stationary this long ends a trip, seconds.
    pub work_stop_min_s: Option<i32>,
    /// No fixes for this long ends a trip, seconds; must exceed work_stop_min_s.
    pub long_gap_s: Option<i32>,
    /// Ignition on and stationary this long counts as idling, seconds.
    pub idle_min_s: Option<i32>,
    /// Shorter trips are discarded, metres.
    pub min_trip_distance_m: Option<f64>,
    /// Shorter trips are discarded, seconds.
    pub min_trip_duration_s: Option<i32>,
    /// Without ignition data, motion is confirmed after this displacement, metres.
    pub motion_confirm_distance_m: Option<f64>,
    /// A device whose newest fix is older is offline, seconds.
    pub offline_after_s: Option<i32>,
    /// Start of the working shift, local time (`08:00:00`).
    #[schema(value_type = Option<String>, example = "08:00:00")]
    pub shift_start: Option<NaiveTime>,
    /// End of the working shift, local time (`17:00:00`).
    #[schema(value_type = Option<String>, example = "17:00:00")]
    pub shift_end: Option<NaiveTime>,
    /// Working days, ISO weekday numbers (1 = Monday … 7 = Sunday).
    pub shift_weekdays: Option<Vec<i16>>,
    /// IANA time zone of day boundaries and shift hours, e.g. Africa/Nairobi.
    pub timezone: Option<String>,
    /// Fuel burnt per hour of idling, litres per hour.
    pub idle_fuel_l_per_h: Option<f64>,
    /// Price of a litre of fuel.
    pub fuel_price_per_l: Option<f64>,
    /// ISO 4217 currency code, e.g. KES.
    pub currency: Option<String>,
}

impl SettingsValues {
    fn is_empty(&self) -> bool {
        *self == SettingsValues::default()
    }

    /// The complete settings, or a 422 naming the first missing value.
    fn complete(&self) -> Result<AnalyticsSettings, ApiError> {
        fn need<T: Clone>(v: &Option<T>, field: &str) -> Result<T, ApiError> {
            v.clone().ok_or_else(|| ApiError::invalid(field, "required in the global settings"))
        }
        Ok(AnalyticsSettings {
            speed_limit_kmh: need(&self.speed_limit_kmh, "speed_limit_kmh")?,
            moving_speed_kmh: need(&self.moving_speed_kmh, "moving_speed_kmh")?,
            work_stop_min_s: need(&self.work_stop_min_s, "work_stop_min_s")?,
            long_gap_s: need(&self.long_gap_s, "long_gap_s")?,
            idle_min_s: need(&self.idle_min_s, "idle_min_s")?,
            min_trip_distance_m: need(&self.min_trip_distance_m, "min_trip_distance_m")?,
            min_trip_duration_s: need(&self.min_trip_duration_s, "min_trip_duration_s")?,
            motion_confirm_distance_m: need(
                &self.motion_confirm_distance_m,
                "motion_confirm_distance_m",
            )?,
            offline_after_s: need(&self.offline_after_s, "offline_after_s")?,
            shift_start: need(&self.shift_start, "shift_start")?,
            shift_end: need(&self.shift_end, "shift_end")?,
            shift_weekdays: need(&self.shift_weekdays, "shift_weekdays")?,
            timezone: need(&self.timezone, "timezone")?,
            idle_fuel_l_per_h: need(&self.idle_fuel_l_per_h, "idle_fuel_l_per_h")?,
            fuel_price_per_l: need(&self.fuel_price_per_l, "fuel_price_per_l")?,
            currency: need(&self.currency, "currency")?,
        })
    }

    /// `base` with these values set over it.
    fn over(&self, base: &AnalyticsSettings) -> AnalyticsSettings {
        let b = base.clone();
        AnalyticsSettings {
            speed_limit_kmh: self.speed_limit_kmh.unwrap_or(b.speed_limit_kmh),
            moving_speed_kmh: self.moving_speed_kmh.unwrap_or(b.moving_speed_kmh),
            work_stop_min_s: self.work_stop_min_s.unwrap_or(b.work_stop_min_s),
            long_gap_s: self.long_gap_s.unwrap_or(b.long_gap_s),
            idle_min_s: self.idle_min_s.unwrap_or(b.idle_min_s),
            min_trip_distance_m: self.min_trip_distance_m.unwrap_or(b.min_trip_distance_m),
            min_trip_duration_s: self.min_trip_duration_s.unwrap_or(b.min_trip_duration_s),
            motion_confirm_distance_m: self
                .motion_confirm_distance_m
                .unwrap_or(b.motion_confirm_distance_m),
            offline_after_s: self.offline_after_s.unwrap_or(b.offline_after_s),
            shift_start: self.shift_start.unwrap_or(b.shift_start),
            shift_end: self.shift_end.unwrap_or(b.shift_end),
            shift_weekdays: self.shift_weekdays.clone().unwrap_or(b.shift_weekdays),
            timezone: self.timezone.clone().unwrap_or(b.timezone),
            idle_fuel_l_per_h: self.idle_fuel_l_per_h.unwrap_or(b.idle_fuel_l_per_h),
            fuel_price_per_l: self.fuel_price_per_l.unwrap_or(b.fuel_price_per_l),
            currency: self.currency.clone().unwrap_or(b.currency),
        }
    }
}

/// Checks the settings with fleet_core's rules, plus a time zone PostgreSQL knows.
async fn check(pool: &sqlx::PgPool, s: &AnalyticsSettings) -> Result<(), ApiError> {
    if let Err(e) = s.validate() {
        return Err(ApiError::invalid(e.field, e.problem));
    }
    let known: bool =
        sqlx::query_scalar("select exists (select from pg_timezone_names where name = $1)")
            .bind(&s.timezone)
            .fetch_one(pool)
            .await?;
    if !known {
        return Err(ApiError::invalid("timezone", "not an IANA time zone PostgreSQL knows"));
    }
    Ok(())
}

/// One row of `fleet.analytics_config`.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct SettingsRow {
    /// global, cost_centre, city or device.
    pub scope: String,
    /// The cost centre or city name, or the device IMEI; empty for the global row.
    pub key: String,
    #[serde(flatten)]
    #[sqlx(flatten)]
    pub values: SettingsValues,
    pub updated_at: DateTime<Utc>,
    /// Id of the user who changed it last; null when set by a migration or that user is gone.
    pub updated_by: Option<i32>,
}

const COLUMNS: &str = "scope, scope_key as key, speed_limit_kmh, moving_speed_kmh, \
     work_stop_min_s, long_gap_s, idle_min_s, min_trip_distance_m, min_trip_duration_s, \
     motion_confirm_distance_m, offline_after_s, shift_start, shift_end, shift_weekdays, \
     timezone, idle_fuel_l_per_h, fuel_price_per_l, currency, updated_at, updated_by";

/// The global settings and every override.
#[derive(Debug, Serialize, ToSchema)]
pub struct AnalyticsConfig {
    pub global: SettingsRow,
    /// Overrides by scope (city, cost_centre, device) and key.
    pub overrides: Vec<SettingsRow>,
}

/// The override scopes.
const SCOPES: [&str; 3] = ["cost_centre", "city", "device"];

async fn global(pool: &sqlx::PgPool) -> Result<SettingsRow, ApiError> {
    sqlx::query_as(&format!("select {COLUMNS} from fleet.analytics_config where scope = 'global'"))
        .fetch_optional(pool)
        .await?
        .ok_or_else(|| ApiError::internal("fleet.analytics_config has no global row"))
}

/// Read the analytics settings.
#[utoipa::path(
    get,
    path = "/settings/analytics",
    tag = "settings",
    description = "Requires role: viewer. The global row (every value) and the overrides (only the values they set; null = inherited). Precedence: device, cost centre, city, global.",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The settings", body = AnalyticsConfig),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn get_settings(
    State(state): State<AppState>,
    _: Viewer,
) -> Result<Json<AnalyticsConfig>, ApiError> {
    let global = global(&state.pool).await?;
    let overrides = sqlx::query_as(&format!(
        "select {COLUMNS} from fleet.analytics_config where scope <> 'global'
         order by scope, scope_key"
    ))
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(AnalyticsConfig { global, overrides }))
}

/// Stores a row and checks the settings every device ends up with (its device, cost centre and
/// city overrides over the global row) in the same transaction: a combination that breaks a
/// rule is refused with a 422 naming the field and the device, and nothing is stored.
async fn upsert(
    state: &AppState,
    scope: &str,
    key: &str,
    v: &SettingsValues,
    by: i32,
) -> Result<SettingsRow, ApiError> {
    let mut tx = state.pool.begin().await?;
    let row = sqlx::query_as(&format!(
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
             updated_by = excluded.updated_by
         returning {COLUMNS}"
    ))
    .bind(scope)
    .bind(key)
    .bind(v.speed_limit_kmh)
    .bind(v.moving_speed_kmh)
    .bind(v.work_stop_min_s)
    .bind(v.long_gap_s)
    .bind(v.idle_min_s)
    .bind(v.min_trip_distance_m)
    .bind(v.min_trip_duration_s)
    .bind(v.motion_confirm_distance_m)
    .bind(v.offline_after_s)
    .bind(v.shift_start)
    .bind(v.shift_end)
    .bind(&v.shift_weekdays)
    .bind(&v.timezone)
    .bind(v.idle_fuel_l_per_h)
    .bind(v.fuel_price_per_l)
    .bind(&v.currency)
    .bind(by)
    .fetch_one(&mut *tx)
    .await?;
    check_effective(&mut tx).await?;
    tx.commit().await?;
    Ok(row)
}

/// Validates each device's effective settings (reporting.v_device_analytics_settings).
async fn check_effective(tx: &mut sqlx::PgConnection) -> Result<(), ApiError> {
    let rows: Vec<(String, SettingsValues)> = sqlx::query_as(
        "select imei, speed_limit_kmh, moving_speed_kmh, work_stop_min_s, long_gap_s, idle_min_s,
                min_trip_distance_m, min_trip_duration_s, motion_confirm_distance_m,
                offline_after_s, shift_start, shift_end, shift_weekdays, timezone,
                idle_fuel_l_per_h, fuel_price_per_l, currency
         from reporting.v_device_analytics_settings order by device_id",
    )
    .fetch_all(tx)
    .await?
    .into_iter()
    .map(|r: EffectiveRow| (r.imei, r.values))
    .collect();
    for (imei, values) in rows {
        let problem = match values.complete() {
            Ok(s) => s.validate().err().map(|e| (e.field.to_owned(), e.problem)),
            Err(e) => e.problem().errors.into_iter().next().map(|f| (f.field, f.message)),
        };
        if let Some((field, message)) = problem {
            return Err(ApiError::invalid(
                field,
                format!("{message} (for device {imei} with its overrides combined)"),
            ));
        }
    }
    Ok(())
}

#[derive(sqlx::FromRow)]
struct EffectiveRow {
    imei: String,
    #[sqlx(flatten)]
    values: SettingsValues,
}

/// Replace the global settings.
#[utoipa::path(
    put,
    path = "/settings/analytics/global",
    tag = "settings",
    description = "Requires role: admin. Every value is required; each device's settings with its overrides combined must stay valid. The devices the change applies to (all of them) are marked for a rebuild of trips (when a trip rule changed) or of KPIs.",
    security(("session" = []), ("bearer" = [])),
    request_body = SettingsValues,
    responses(
        (status = 200, description = "The new global settings", body = SettingsRow),
        (status = 400, description = "The body is not valid JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "A missing or invalid value, named", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn put_global(
    State(state): State<AppState>,
    Admin(who): Admin,
    JsonBody(body): JsonBody<SettingsValues>,
) -> Result<Json<SettingsRow>, ApiError> {
    let settings = body.complete()?;
    check(&state.pool, &settings).await?;
    let row = upsert(&state, "global", "", &body, who.user_id).await?;
    tracing::info!(by = %who.username, "global analytics settings changed");
    Ok(Json(row))
}

/// The validated scope and key of an override.
fn scope_key(scope: &str, key: &str) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if !SCOPES.contains(&scope) {
        errors.push(FieldError::new("scope", "must be cost_centre, city or device"));
    }
    let k = key.trim();
    if k.is_empty() || k != key {
        errors.push(FieldError::new("key", "must not be empty or start or end with spaces"));
    } else if let Err(e) = fleet_core::text::check_name(key, 64) {
        // the key is a cost centre or city name, held to the rule of those names
        errors.push(FieldError::new("key", e.to_string()));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// Set an override.
#[utoipa::path(
    put,
    path = "/settings/analytics/{scope}/{key}",
    tag = "settings",
    description = "Requires role: admin. Replaces the override of a cost centre, city or device (by IMEI): the values given are set, the others inherited. The override is validated merged with the global settings, and each device's settings with all its overrides combined must stay valid. The devices it applies to are marked for a rebuild.",
    security(("session" = []), ("bearer" = [])),
    params(
        ("scope" = String, Path, description = "cost_centre, city or device"),
        ("key" = String, Path, description = "The cost centre or city name, or the device IMEI"),
    ),
    request_body = SettingsValues,
    responses(
        (status = 200, description = "The override", body = SettingsRow),
        (status = 400, description = "The body is not valid JSON", body = Problem, content_type = "application/problem+json"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid scope, key or value, named", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn put_override(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path((scope, key)): Path<(String, String)>,
    JsonBody(body): JsonBody<SettingsValues>,
) -> Result<Json<SettingsRow>, ApiError> {
    scope_key(&scope, &key)?;
    if body.is_empty() {
        return Err(ApiError::invalid("body", "set at least one value"));
    }
    if scope == "device" {
        let known: bool =
            sqlx::query_scalar("select exists (select from fleet.devices where imei = $1)")
                .bind(&key)
                .fetch_one(&state.pool)
                .await?;
        if !known {
            return Err(ApiError::invalid("key", "no device has this IMEI"));
        }
    }
    let base = global(&state.pool).await?.values.complete()?;
    check(&state.pool, &body.over(&base)).await?;
    let row = upsert(&state, &scope, &key, &body, who.user_id).await?;
    tracing::info!(scope = %excerpt(&scope), key = %excerpt(&key), by = %who.username, "analytics override set");
    Ok(Json(row))
}

/// Remove an override.
#[utoipa::path(
    delete,
    path = "/settings/analytics/{scope}/{key}",
    tag = "settings",
    description = "Requires role: admin. The scope inherits again; the devices it applied to are marked for a rebuild.",
    security(("session" = []), ("bearer" = [])),
    params(
        ("scope" = String, Path, description = "cost_centre, city or device"),
        ("key" = String, Path, description = "The cost centre or city name, or the device IMEI"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such override", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "An invalid scope", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn delete_override(
    State(state): State<AppState>,
    Admin(who): Admin,
    Path((scope, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    scope_key(&scope, &key)?;
    let deleted =
        sqlx::query("delete from fleet.analytics_config where scope = $1 and scope_key = $2")
            .bind(&scope)
            .bind(&key)
            .execute(&state.pool)
            .await?
            .rows_affected();
    if deleted == 0 {
        return Err(ApiError::NotFound(format!("there is no {scope} override for {key:?}")));
    }
    tracing::info!(scope = %excerpt(&scope), key = %excerpt(&key), by = %who.username, "analytics override removed");
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_merge_over_the_global_values() {
        let v = SettingsValues { long_gap_s: Some(100), ..Default::default() };
        let merged = v.over(&AnalyticsSettings::default());
        assert_eq!(merged.long_gap_s, 100);
        assert_eq!(merged.validate().expect_err("invalid").field, "long_gap_s");
        assert!(SettingsValues::default().is_empty());
        let e = SettingsValues::default().complete().expect_err("incomplete");
        assert_eq!(e.problem().errors[0].field, "speed_limit_kmh");
    }
}
