//! `/alarms/summary`: alarms of a range of local days counted per class, with how many are
//! still open: the "alarms by class" figure of the operations dashboard.

use axum::extract::State;
use axum::Json;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::Query;
use super::kpis::check_range;
use super::validate;
use crate::auth::Viewer;
use crate::{ApiError, AppState, Problem};

/// A date range of local days and the vehicles to count.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AlarmSummaryQuery {
    /// First local day (YYYY-MM-DD), in each vehicle's time zone.
    pub from: NaiveDate,
    /// Last local day, included; at most 366 days after from.
    pub to: NaiveDate,
    /// Only vehicles of this cost centre (case-insensitive).
    pub cost_centre: Option<String>,
    /// Only vehicles of this city (case-insensitive).
    pub city: Option<String>,
}

/// Alarms of one class.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlarmClassCount {
    /// safety, security, power, driving, geofence, device or other.
    pub alarm_class: String,
    /// Alarms raised in the range.
    pub alarms: i64,
    /// Of those, not acknowledged yet.
    pub open: i64,
}

/// Alarms per class.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AlarmSummary {
    /// One row per class that has alarms, most alarms first.
    pub items: Vec<AlarmClassCount>,
}

/// Count alarms per class.
#[utoipa::path(
    get,
    path = "/alarms/summary",
    tag = "alarms",
    description = "Requires role: viewer. Alarms raised on the local days from..to (each vehicle's time zone, as the daily KPIs count them) per class, with the open ones.",
    security(("session" = []), ("bearer" = [])),
    params(AlarmSummaryQuery),
    responses(
        (status = 200, description = "Alarms per class", body = AlarmSummary),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn alarm_summary(
    State(state): State<AppState>,
    _: Viewer,
    Query(q): Query<AlarmSummaryQuery>,
) -> Result<Json<AlarmSummary>, ApiError> {
    let mut errors = Vec::new();
    check_range(q.from, q.to, &mut errors);
    validate::finish(errors)?;
    let items = fleet_db::alarms::count_by_class(
        &state.pool,
        q.from,
        q.to,
        q.cost_centre.as_deref(),
        q.city.as_deref(),
    )
    .await?
    .into_iter()
    .map(|c| AlarmClassCount { alarm_class: c.alarm_class, alarms: c.alarms, open: c.open })
    .collect();
    Ok(Json(AlarmSummary { items }))
}
