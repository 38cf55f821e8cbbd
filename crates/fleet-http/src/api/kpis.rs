//! `/kpis`: the daily KPIs of `fleet.kpi_daily` through the reporting layer of migration 0015
//! (docs/KPI_FRAMEWORK.md defines every figure), and `/fleet/idle`, the vehicles idling now.
//! Rows are returned with the columns of the views they come from, so the API and SQL
//! reports always agree.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::extract::Query;
use super::{paging, validate};
use crate::auth::Viewer;
use crate::error::FieldError;
use crate::{ApiError, AppState, Problem};

/// Longest date range, days.
pub const MAX_DAYS: i64 = 366;
/// Default page size of the daily rows.
pub const DEFAULT_LIMIT: i64 = 500;
/// Largest page size of the daily rows.
pub const MAX_LIMIT: i64 = 5000;

/// Checks `from ≤ to` and a range of at most [`MAX_DAYS`] days (both ends included).
pub(crate) fn check_range(from: NaiveDate, to: NaiveDate, errors: &mut Vec<FieldError>) {
    validate::days(from, to, MAX_DAYS, errors);
}

/// Rows of a reporting view or function, as JSON objects with its columns.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KpiRows {
    /// One object per row with the view's columns (docs/KPI_FRAMEWORK.md).
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
}

/// One page of daily KPI rows.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct KpiDailyPage {
    /// Rows of `reporting.v_kpi_daily`, by local_date then device_id.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_after: Option<String>,
}

/// Filters of the daily KPI rows.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DailyQuery {
    /// First local day (YYYY-MM-DD).
    pub from: NaiveDate,
    /// Last local day, included; at most 366 days after from.
    pub to: NaiveDate,
    /// Only this device.
    pub device_id: Option<i32>,
    /// Only this cost centre (case does not matter).
    pub cost_centre: Option<String>,
    /// Only this city (case does not matter).
    pub city: Option<String>,
    /// Page size, 1-5000 (default 500).
    pub limit: Option<i64>,
    /// Cursor: the `next_after` of the previous page.
    pub after: Option<String>,
}

/// Daily KPIs per vehicle.
#[utoipa::path(
    get,
    path = "/kpis/daily",
    tag = "kpis",
    description = "Requires role: viewer. Rows of reporting.v_kpi_daily (one per vehicle and local day with data) in the range, by local_date then device_id; keyset pagination: follow `next_after` until it is null.",
    security(("session" = []), ("bearer" = [])),
    params(DailyQuery),
    responses(
        (status = 200, description = "One page of vehicle-days", body = KpiDailyPage),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters (a range over 366 days, to before from)", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn daily(
    State(state): State<AppState>,
    _: Viewer,
    Query(q): Query<DailyQuery>,
) -> Result<Json<KpiDailyPage>, ApiError> {
    let mut errors = Vec::new();
    check_range(q.from, q.to, &mut errors);
    let limit = validate::limit(q.limit, DEFAULT_LIMIT, MAX_LIMIT, &mut errors);
    let cursor: Option<(NaiveDate, i32)> = paging::after(q.after.as_deref(), &mut errors);
    validate::finish(errors)?;
    let rows: Vec<(NaiveDate, i32, Value)> = sqlx::query_as(
        "select v.local_date, v.device_id, to_jsonb(v) from reporting.v_kpi_daily v
         where v.local_date between $1 and $2
           and ($3::int is null or v.device_id = $3)
           and ($4::text is null or lower(v.cost_centre) = lower($4))
           and ($5::text is null or lower(v.city) = lower($5))
           and ($6::date is null or (v.local_date, v.device_id) > ($6, $7))
         order by v.local_date, v.device_id
         limit $8",
    )
    .bind(q.from)
    .bind(q.to)
    .bind(q.device_id)
    .bind(q.cost_centre.as_deref().map(str::trim))
    .bind(q.city.as_deref().map(str::trim))
    .bind(cursor.map(|c| c.0))
    .bind(cursor.map(|c| c.1))
    .bind(limit + 1)
    .fetch_all(&state.pool)
    .await?;
    let mut rows = rows;
    let next_after = paging::next_after(&mut rows, limit, |(date, id, _)| (*date, *id));
    let items = rows.into_iter().map(|(_, _, row)| row).collect();
    Ok(Json(KpiDailyPage { items, next_after }))
}

/// How rollups group vehicles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    #[default]
    Fleet,
    CostCentre,
    City,
}

impl GroupBy {
    fn as_str(self) -> &'static str {
        match self {
            GroupBy::Fleet => "fleet",
            GroupBy::CostCentre => "cost_centre",
            GroupBy::City => "city",
        }
    }
}

/// A date range and grouping.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RollupQuery {
    /// First local day (YYYY-MM-DD).
    pub from: NaiveDate,
    /// Last local day, included; at most 366 days after from.
    pub to: NaiveDate,
    /// fleet (default), cost_centre or city.
    pub group_by: Option<GroupBy>,
    /// Only vehicles of this cost centre (case-insensitive).
    pub cost_centre: Option<String>,
    /// Only vehicles of this city (case-insensitive).
    pub city: Option<String>,
}

/// KPIs of a date range per fleet, cost centre or city.
#[utoipa::path(
    get,
    path = "/kpis/rollup",
    tag = "kpis",
    description = "Requires role: viewer. Rows of reporting.kpi_rollup(from, to, group_by, cost_centre, city): one per group (group_key; null for vehicles without a cost centre or city) over the vehicles matching the filters, ratios recomputed from summed parts.",
    security(("session" = []), ("bearer" = [])),
    params(RollupQuery),
    responses(
        (status = 200, description = "One row per group", body = KpiRows),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn rollup(
    State(state): State<AppState>,
    _: Viewer,
    Query(q): Query<RollupQuery>,
) -> Result<Json<KpiRows>, ApiError> {
    let mut errors = Vec::new();
    check_range(q.from, q.to, &mut errors);
    validate::finish(errors)?;
    let items = sqlx::query_scalar(
        "select to_jsonb(r) from reporting.kpi_rollup($1, $2, $3, $4, $5) r
         order by r.group_key nulls last",
    )
    .bind(q.from)
    .bind(q.to)
    .bind(q.group_by.unwrap_or_default().as_str())
    .bind(q.cost_centre.as_deref())
    .bind(q.city.as_deref())
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(KpiRows { items }))
}

/// A date range.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RangeQuery {
    /// First local day (YYYY-MM-DD).
    pub from: NaiveDate,
    /// Last local day, included; at most 366 days after from.
    pub to: NaiveDate,
    /// Only vehicles of this cost centre (case-insensitive).
    pub cost_centre: Option<String>,
    /// Only vehicles of this city (case-insensitive).
    pub city: Option<String>,
}

/// Fleet utilisation of one day.
#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct UtilisationDay {
    pub local_date: NaiveDate,
    /// Σ shift_driving_s / Σ shift_s over the fleet; null on days without a shift.
    pub utilisation: Option<f64>,
    pub shift_s: i64,
    pub shift_driving_s: i64,
    pub vehicles: i32,
    pub vehicles_moved: i32,
    pub distance_m: f64,
    pub driving_s: i64,
}

/// Fleet utilisation per day.
#[utoipa::path(
    get,
    path = "/kpis/utilisation-trend",
    tag = "kpis",
    description = "Requires role: viewer. One row per local day of the range that lies between the first and last day with KPIs (reporting.kpi_rollup of each day, as reporting.v_kpi_fleet_daily, over the vehicles matching the filters), by date.",
    security(("session" = []), ("bearer" = [])),
    params(RangeQuery),
    responses(
        (status = 200, description = "Utilisation per day", body = Vec<UtilisationDay>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn utilisation_trend(
    State(state): State<AppState>,
    _: Viewer,
    Query(q): Query<RangeQuery>,
) -> Result<Json<Vec<UtilisationDay>>, ApiError> {
    let mut errors = Vec::new();
    check_range(q.from, q.to, &mut errors);
    validate::finish(errors)?;
    let rows = sqlx::query_as(
        "select g.d::date as local_date, r.utilisation, r.shift_s, r.shift_driving_s, r.vehicles,
                r.vehicles_moved, r.distance_m, r.driving_s
         from (select min(local_date) as lo, max(local_date) as hi from fleet.kpi_daily) b
         cross join generate_series(greatest($1::date, b.lo), least($2::date, b.hi), '1 day') g (d)
         cross join lateral reporting.kpi_rollup(g.d::date, g.d::date, 'fleet', $3, $4) r
         order by local_date",
    )
    .bind(q.from)
    .bind(q.to)
    .bind(q.cost_centre.as_deref())
    .bind(q.city.as_deref())
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows))
}

/// A vehicle's driving figures over a range, ranked.
#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct LeaderboardRow {
    /// 1 = best driving score; vehicles without a score (under 1 km) rank last.
    pub rank: i64,
    pub device_id: i32,
    pub name: String,
    pub plate: Option<String>,
    pub driver_name: Option<String>,
    pub cost_centre: Option<String>,
    pub city: Option<String>,
    pub days: i64,
    pub distance_m: f64,
    pub driving_s: i64,
    pub overspeed_count: i64,
    pub overspeed_s: i64,
    pub harsh_events: i64,
    /// Overspeed runs per 100 km; null without distance.
    pub overspeed_per_100km: Option<f64>,
    /// Harsh events per 100 km; null without distance.
    pub harsh_per_100km: Option<f64>,
    /// fleet.kpi_driving_score of the summed figures (0-100); null under 1 km.
    pub driving_score: Option<f64>,
}

/// Vehicles ranked by driving score.
#[utoipa::path(
    get,
    path = "/kpis/leaderboard",
    tag = "kpis",
    description = "Requires role: viewer. Every vehicle with KPI rows in the range, its figures summed and the score and rates recomputed from the sums (fleet.kpi_driving_score, fleet.kpi_per_100km); ranked by driving score (best first), then distance.",
    security(("session" = []), ("bearer" = [])),
    params(RangeQuery),
    responses(
        (status = 200, description = "Vehicles, best first", body = Vec<LeaderboardRow>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn leaderboard(
    State(state): State<AppState>,
    _: Viewer,
    Query(q): Query<RangeQuery>,
) -> Result<Json<Vec<LeaderboardRow>>, ApiError> {
    let mut errors = Vec::new();
    check_range(q.from, q.to, &mut errors);
    validate::finish(errors)?;
    let rows = sqlx::query_as(
        "with s as (
             select k.device_id, count(*) as days, sum(k.distance_m) as distance_m,
                    sum(k.driving_s)::bigint as driving_s,
                    sum(k.overspeed_count)::bigint as overspeed_count,
                    sum(k.overspeed_s)::bigint as overspeed_s,
                    sum(k.harsh_events)::bigint as harsh_events
             from fleet.kpi_daily k
             join fleet.devices d on d.device_id = k.device_id
             where k.local_date between $1 and $2
               and ($3::text is null or lower(d.cost_centre) = lower(btrim($3)))
               and ($4::text is null or lower(d.city) = lower(btrim($4)))
             group by k.device_id
         ), scored as (
             select s.*,
                    fleet.kpi_per_100km(s.overspeed_count, s.distance_m) as overspeed_per_100km,
                    fleet.kpi_per_100km(s.harsh_events, s.distance_m) as harsh_per_100km,
                    fleet.kpi_driving_score(s.overspeed_count, s.harsh_events, s.distance_m,
                                            s.overspeed_s, s.driving_s) as driving_score
             from s
         )
         select rank() over (order by sc.driving_score desc nulls last, sc.distance_m desc) as rank,
                sc.device_id, d.name, d.plate, d.driver_name, d.cost_centre, d.city, sc.days,
                sc.distance_m, sc.driving_s, sc.overspeed_count, sc.overspeed_s, sc.harsh_events,
                sc.overspeed_per_100km, sc.harsh_per_100km, sc.driving_score
         from scored sc
         join fleet.devices d on d.device_id = sc.device_id
         order by rank, sc.device_id",
    )
    .bind(q.from)
    .bind(q.to)
    .bind(q.cost_centre.as_deref())
    .bind(q.city.as_deref())
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows))
}

/// Active vehicles that have not moved today.
#[utoipa::path(
    get,
    path = "/kpis/not-moved-today",
    tag = "kpis",
    description = "Requires role: viewer. Rows of reporting.v_vehicles_not_moved_today (no trip starting or running today in the vehicle's time zone; `offline` tells a silent tracker from a parked vehicle), by device id.",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The vehicles", body = KpiRows),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn not_moved_today(
    State(state): State<AppState>,
    _: Viewer,
) -> Result<Json<KpiRows>, ApiError> {
    let items = sqlx::query_scalar(
        "select to_jsonb(v) from reporting.v_vehicles_not_moved_today v order by v.device_id",
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(KpiRows { items }))
}

/// A vehicle idling now.
#[derive(Debug, Serialize, Deserialize, sqlx::FromRow, ToSchema)]
pub struct IdleVehicle {
    pub device_id: i32,
    pub imei: String,
    pub name: String,
    pub plate: Option<String>,
    pub driver_name: Option<String>,
    pub cost_centre: Option<String>,
    pub city: Option<String>,
    pub lat: f64,
    pub lon: f64,
    /// GPS time of the newest fix.
    pub gps_time: DateTime<Utc>,
    /// When the vehicle started idling.
    pub since: DateTime<Utc>,
    /// Seconds idling so far (now - since).
    pub duration_s: i64,
}

/// Vehicles idling now.
#[utoipa::path(
    get,
    path = "/fleet/idle",
    tag = "kpis",
    description = "Requires role: viewer. Active vehicles whose newest fix (fleet.device_latest) has motion_state idling (ignition on, stationary) and is not older than their offline_after_s, longest idling first.",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "The idling vehicles", body = Vec<IdleVehicle>),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn idle(
    State(state): State<AppState>,
    _: Viewer,
) -> Result<Json<Vec<IdleVehicle>>, ApiError> {
    let rows = sqlx::query_as(
        "select d.device_id, d.imei, d.name, d.plate, d.driver_name, d.cost_centre, d.city,
                l.lat, l.lon, l.gps_time, l.state_since as since,
                greatest(0, extract(epoch from now() - l.state_since))::bigint as duration_s
         from fleet.device_latest l
         join fleet.devices d on d.device_id = l.device_id
         join reporting.v_device_analytics_settings s on s.device_id = l.device_id
         where d.active and l.motion_state = 'idling'
           and now() - l.gps_time <= make_interval(secs => s.offline_after_s)
         order by l.state_since, d.device_id",
    )
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn ranges_are_at_most_366_days_and_ordered() {
        let mut e = Vec::new();
        check_range(date("2024-01-01"), date("2024-12-31"), &mut e);
        assert!(e.is_empty(), "366 days of a leap year");
        check_range(date("2025-01-01"), date("2026-01-02"), &mut e);
        check_range(date("2025-01-02"), date("2025-01-01"), &mut e);
        assert_eq!(e.len(), 2);
        let cursor = paging::encode(&(date("2026-11-01"), 7));
        assert_eq!(paging::decode(&cursor), Some((date("2026-11-01"), 7)));
    }
}
