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
pub use fleet_db::kpis::{LeaderboardRow, UtilisationDay};

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
    let filter = fleet_db::kpis::DailyFilter {
        from: q.from,
        to: q.to,
        device_id: q.device_id,
        cost_centre: q.cost_centre,
        city: q.city,
        after: cursor,
        limit: limit + 1,
    };
    let mut rows = fleet_db::kpis::daily(&state.pool, &filter).await?;
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
    let items = fleet_db::kpis::rollup(
        &state.pool,
        q.from,
        q.to,
        q.group_by.unwrap_or_default().as_str(),
        q.cost_centre.as_deref(),
        q.city.as_deref(),
    )
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
    let rows = fleet_db::kpis::utilisation_trend(
        &state.pool,
        q.from,
        q.to,
        q.cost_centre.as_deref(),
        q.city.as_deref(),
    )
    .await?;
    Ok(Json(rows))
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
    let rows = fleet_db::kpis::leaderboard(
        &state.pool,
        q.from,
        q.to,
        q.cost_centre.as_deref(),
        q.city.as_deref(),
    )
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
    let items = fleet_db::kpis::not_moved_today(&state.pool).await?;
    Ok(Json(KpiRows { items }))
}

/// A vehicle idling now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
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
    description = "Requires role: viewer. Active vehicles whose newest fix (fleet.device_latest) has the status idling (fleet.device_status: ignition on, stationary, and not older than their offline_after_s), longest idling first.",
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
    let rows = fleet_db::live::idling(&state.pool).await?;
    Ok(Json(rows.into_iter().map(IdleVehicle::from).collect()))
}

impl From<fleet_db::live::IdleRecord> for IdleVehicle {
    fn from(r: fleet_db::live::IdleRecord) -> Self {
        Self {
            device_id: r.device_id,
            imei: r.imei,
            name: r.name,
            plate: r.plate,
            driver_name: r.driver_name,
            cost_centre: r.cost_centre,
            city: r.city,
            lat: r.lat,
            lon: r.lon,
            gps_time: r.gps_time,
            since: r.since,
            duration_s: r.duration_s,
        }
    }
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
