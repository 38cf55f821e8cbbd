//! `/kpis/reconciliation`: fleetd's daily distance beside the vendor's trip report and the
//! odometer (reporting.v_distance_reconciliation), the check to run when distances are
//! questioned.

use axum::extract::State;
use axum::Json;
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::Query;
use super::kpis::{check_range, KpiRows, DEFAULT_LIMIT, MAX_LIMIT};
use super::validate;
use crate::auth::Viewer;
use crate::{ApiError, AppState, Problem};

/// Days, vehicles and which rows to return.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReconciliationQuery {
    /// First local day (YYYY-MM-DD).
    pub from: NaiveDate,
    /// Last local day, included; at most 366 days after from.
    pub to: NaiveDate,
    /// Only vehicles of this cost centre (case-insensitive).
    pub cost_centre: Option<String>,
    /// Only vehicles of this city (case-insensitive).
    pub city: Option<String>,
    /// Only vehicle-days where a source disagrees (`true`).
    pub flagged: Option<bool>,
    /// Rows, 1-5000 (default 500).
    pub limit: Option<i64>,
}

/// Distances per vehicle-day from the three sources.
#[utoipa::path(
    get,
    path = "/kpis/reconciliation",
    tag = "kpis",
    description = "Requires role: viewer. Rows of reporting.v_distance_reconciliation (docs/KPI_FRAMEWORK.md): flagged vehicle-days first, then newest day, then device id.",
    security(("session" = []), ("bearer" = [])),
    params(ReconciliationQuery),
    responses(
        (status = 200, description = "One row per vehicle-day with a distance", body = KpiRows),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn reconciliation(
    State(state): State<AppState>,
    _: Viewer,
    Query(q): Query<ReconciliationQuery>,
) -> Result<Json<KpiRows>, ApiError> {
    let mut errors = Vec::new();
    check_range(q.from, q.to, &mut errors);
    let limit = validate::limit(q.limit, DEFAULT_LIMIT, MAX_LIMIT, &mut errors);
    validate::finish(errors)?;
    let items = fleet_db::kpis::reconciliation(
        &state.pool,
        q.from,
        q.to,
        q.cost_centre.as_deref(),
        q.city.as_deref(),
        q.flagged,
        limit,
    )
    .await?;
    Ok(Json(KpiRows { items }))
}
