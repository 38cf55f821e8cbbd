//! `/health`: ingest health for the operations panels, read through `fleet_db::ingest_health`
//! (docs/SCHEMA.md, "Ingest health"): each ingest job, and each active device's freshness.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::extract::Query;
use super::kpis::KpiRows;
use crate::auth::Viewer;
use crate::{ApiError, AppState, Problem};

/// Default page size of the device list.
pub const DEFAULT_LIMIT: i64 = 100;
/// Largest page size of the device list.
pub const MAX_LIMIT: i64 = 1000;

/// Device statuses of `reporting.v_ingest_health_devices`.
pub const DEVICE_STATUSES: [&str; 4] = fleet_db::ingest_health::DEVICE_STATUSES;

/// Ingest health of each job.
#[utoipa::path(
    get,
    path = "/health/ingest",
    tag = "health",
    description = "Requires role: viewer. Rows of reporting.v_ingest_health_jobs (one per ingest job: last run, last success, consecutive failures, throughput, duplicate and reject rates, lag, status ok / failing / stale / never), by job.",
    security(("session" = []), ("bearer" = [])),
    responses(
        (status = 200, description = "One row per job", body = KpiRows),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn ingest(
    State(state): State<AppState>,
    _: Viewer,
) -> Result<Json<KpiRows>, ApiError> {
    let items = fleet_db::ingest_health::jobs(&state.pool).await?;
    Ok(Json(KpiRows { items }))
}

/// One page of device health rows.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DeviceHealthPage {
    /// Rows of reporting.v_ingest_health_devices, by device id.
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
    /// Pass as `after` for the next page; null on the last page.
    pub next_after: Option<i32>,
}

/// Filter and paging of device health.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeviceHealthQuery {
    /// Only this status: live, stale, offline or never_seen.
    pub status: Option<String>,
    /// Page size, 1-1000 (default 100).
    pub limit: Option<i64>,
    /// Cursor: the `next_after` of the previous page (devices with a greater id).
    pub after: Option<i32>,
}

/// Ingest health of each active device.
#[utoipa::path(
    get,
    path = "/health/devices",
    tag = "health",
    description = "Requires role: viewer. Rows of reporting.v_ingest_health_devices (newest fix, delivery delay percentiles over 24 h, status live / stale / offline / never_seen); keyset pagination by device id.",
    security(("session" = []), ("bearer" = [])),
    params(DeviceHealthQuery),
    responses(
        (status = 200, description = "One page of devices", body = DeviceHealthPage),
        (status = 401, description = "Not authenticated", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn devices(
    State(state): State<AppState>,
    _: Viewer,
    Query(q): Query<DeviceHealthQuery>,
) -> Result<Json<DeviceHealthPage>, ApiError> {
    let mut errors = Vec::new();
    let limit = super::validate::limit(q.limit, DEFAULT_LIMIT, MAX_LIMIT, &mut errors);
    if let Some(status) = q.status.as_deref() {
        super::validate::choice("status", status, &DEVICE_STATUSES, &mut errors);
    }
    super::validate::finish(errors)?;
    let rows =
        fleet_db::ingest_health::devices(&state.pool, q.status.as_deref(), q.after, limit + 1)
            .await?;
    let more = rows.len() as i64 > limit;
    let mut items = Vec::with_capacity(rows.len());
    let mut last = None;
    for (id, row) in rows.into_iter().take(limit as usize) {
        last = Some(id);
        items.push(row);
    }
    Ok(Json(DeviceHealthPage { items, next_after: last.filter(|_| more) }))
}
